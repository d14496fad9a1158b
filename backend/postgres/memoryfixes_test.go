package postgres

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
)

// The memory backend's fixes, ported to the SQL (the two backends run the
// same arithmetic): each test here is the memory backend's of the same
// name, on the database clock.

// pgClock steps the database clock of a backend with one connection.
type pgClock struct {
	t   *testing.T
	b   *Backend
	now int64
}

func newPGClock(t *testing.T, b *Backend) *pgClock {
	c := &pgClock{t: t, b: b, now: 1_800_000_000_000_000_000}
	setNow(t, b, c.now)
	return c
}

func (c *pgClock) set(ns int64) {
	c.now = ns
	setNow(c.t, c.b, ns)
}

// grants acquires n times with no bound on the wait and returns the slots.
func (c *pgClock) grants(key string, n int, defaults ...srl.Limit) []int64 {
	c.t.Helper()
	var at []int64
	for range n {
		r, err := c.b.Acquire(ctxT(c.t), req(key, srl.Forever, defaults...))
		require.NoError(c.t, err)
		require.True(c.t, r.OK)
		require.Equal(c.t, c.now+int64(r.Wait), r.At)
		at = append(at, r.At)
	}
	return at
}

// TestRealignKeepsReservedSlots: a report whose window ends before slots
// already handed out does not move the local window's end before them
// (neither the first report of a limit, which takes over the defaults'
// window, nor a later one; nor when the count carries past that end):
// their units would count in no window, and the window after would take
// the limit on top of them (4 of 3 in the server's window).
func TestRealignKeepsReservedSlots(t *testing.T) {
	for i, learnedBefore := range []bool{false, true, false, true, false, true} {
		remaining := []float64{2, 2, 1, 1, 1, 1}[i]
		resetIn := []time.Duration{1321, 1321, 1321, 1321, 600, 600}[i] * time.Second
		b, _, _ := newTest(t, withTestClock(), WithPoolSize(1))
		c := newPGClock(t, b)
		const key = "https://realign.example:443"
		lim := srl.PerHour(3)
		server := srl.Limit{Name: "q", Limit: 3, Window: time.Hour}
		report := func(remaining float64, resetIn time.Duration, seq uint64) {
			t.Helper()
			require.NoError(t, b.Observe(ctxT(t), key, srl.Update{SentSeq: seq, SentAgo: time.Millisecond,
				Quotas: []srl.QuotaUpdate{{Limit: server, Remaining: remaining, HasRemaining: true, ResetIn: resetIn, HasReset: true}}}))
		}
		// Three now, three paced in the defaults' next window.
		grants := c.grants(key, 6, lim)
		span := lim.Span()
		require.Equal(t, c.now+span+2*span/3, grants[5])
		if learnedBefore {
			report(2, 1321*time.Second+time.Duration(span), 1)
		}
		// At the first paced slot, the server says its window ends in 22
		// (or 10) minutes: before the slots reserved after it.
		c.set(grants[3])
		end := c.now + int64(resetIn)
		report(remaining, resetIn, 4)
		c.set(end + int64(time.Minute))
		grants = append(grants, c.grants(key, 3, lim)...)
		n := 0 // in the server's window after its end
		for _, g := range grants {
			if g >= end && g < end+int64(time.Hour) {
				n++
			}
		}
		assert.LessOrEqual(t, n, 3, "learned before: %v, remaining %v, reset in %v; grants %v", learnedBefore, remaining, resetIn, grants)
	}
}
