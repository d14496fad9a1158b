package postgres

import (
	"fmt"
	"math"
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

// TestCancelGivesTheSlotBack: a waiter that gives up while it is the
// latest grant gives its slot back, so the next caller gets that slot,
// however many times callers come and give up, and waiters giving up
// newest first are all taken back; also when another limit decided the
// slot (a grant paced behind another limit counts the slots before it as
// spent and may carry into the next window: taking back only its units
// left those behind, and each caller that gave up pushed the queue a
// window further: 20 acquire-and-cancel cycles pushed the slot 20 s
// later; of 10 waiters giving up newest first, 1 or 2 were taken back).
func TestCancelGivesTheSlotBack(t *testing.T) {
	b, _, _ := newTest(t, withTestClock(), WithPoolSize(1))
	c := newPGClock(t, b)
	ctx := ctxT(t)
	for i, defs := range [][]srl.Limit{
		{srl.PerSecond(1), srl.PerHour(100)},
		{srl.Every(1, time.Second), srl.Every(2, 3*time.Second)},
		{srl.PerSecond(10), srl.PerMinute(300), srl.PerHour(10_000)},
		{srl.Every(3, time.Second)},
	} {
		for _, booked := range []int{3, 40, 305} {
			key := fmt.Sprintf("https://cancel-back-%d-%d.example:443", i, booked)
			c.grants(key, booked, defs...)
			c.set(c.now + defs[0].Span()/3)
			first := c.grants(key, 1, defs...)[0]
			st, err := b.Status(ctx, key)
			require.NoError(t, err)
			require.NoError(t, b.Cancel(ctx, key, srl.Reservation{OK: true, Seq: st.Seq, At: first}, nil))
			for j := range 20 {
				r, err := b.Acquire(ctx, req(key, srl.Forever, defs...))
				require.NoError(t, err)
				require.Equal(t, first, r.At, "%v after %d: caller %d gets the slot given back (%v later)", defs, booked, j, time.Duration(r.At-first))
				require.NoError(t, b.Cancel(ctx, key, r, nil))
			}
			st, err = b.Status(ctx, key)
			require.NoError(t, err)
			assert.Equal(t, uint64(booked), st.Seq)

			var rs []srl.Reservation
			for range 10 {
				r, err := b.Acquire(ctx, req(key, srl.Forever, defs...))
				require.NoError(t, err)
				rs = append(rs, r)
			}
			require.Equal(t, first, rs[0].At)
			for j := 9; j >= 0; j-- {
				require.NoError(t, b.Cancel(ctx, key, rs[j], nil))
				st, err := b.Status(ctx, key)
				require.NoError(t, err)
				require.Equal(t, uint64(booked+j), st.Seq, "%v after %d: waiter %d is taken back", defs, booked, j)
			}
			assert.Equal(t, first, c.grants(key, 1, defs...)[0], "%v after %d", defs, booked)
		}
	}
}

// TestCancelRecordsAreBounded: a caller that reserves many slots without
// waiting for them keeps at most maxUndo records; the newest are taken
// back exactly, the rest as before.
func TestCancelRecordsAreBounded(t *testing.T) {
	b, _, _ := newTest(t, withTestClock(), WithPoolSize(1))
	newPGClock(t, b)
	ctx := ctxT(t)
	const key = "https://many-reserved.example:443"
	defs := []srl.Limit{srl.PerSecond(1), srl.PerHour(100)}
	var rs []srl.Reservation
	start := time.Now()
	for range maxUndo + 200 {
		r, err := b.Acquire(ctx, req(key, srl.Forever, defs...))
		require.NoError(t, err)
		rs = append(rs, r)
	}
	t.Logf("%d waiters in %v", len(rs), time.Since(start))
	var size int
	require.NoError(t, b.db.QueryRow(ctx, `SELECT cardinality(undo_b) FROM `+b.n.qTable+` WHERE id = sha256($1)`, []byte(key)).Scan(&size))
	assert.Equal(t, 1+maxUndo*(4+2*len(defs)), size, "records kept")
	start = time.Now()
	for i := len(rs) - 1; i >= len(rs)-maxUndo; i-- {
		require.NoError(t, b.Cancel(ctx, key, rs[i], nil))
		st, err := b.Status(ctx, key)
		require.NoError(t, err)
		require.Equal(t, uint64(i), st.Seq, "waiter %d is taken back", i)
	}
	t.Logf("%d cancels in %v", maxUndo, time.Since(start))
	r, err := b.Acquire(ctx, req(key, srl.Forever, defs...))
	require.NoError(t, err)
	assert.Equal(t, rs[len(rs)-maxUndo].At, r.At)
}

// TestMigrationFromV7 upgrades a table of version 7 (no records of
// waiters): its rows keep their state, a reservation made before the
// upgrade is taken back as version 7 did (Untake), and the waiters after
// it get their slots back exactly.
func TestMigrationFromV7(t *testing.T) {
	b, dsn, schema := newTest(t)
	ctx := ctxT(t)
	defs := []srl.Limit{srl.PerSecond(1), srl.PerHour(100)}
	var rs []srl.Reservation
	for range 5 {
		r, err := b.Acquire(ctx, req("old", srl.Forever, defs...))
		require.NoError(t, err)
		rs = append(rs, r)
	}
	b2, _ := reopenAsOf(t, b, dsn, schema, 7, `ALTER TABLE `+b.n.qTable+` DROP COLUMN undo_b, DROP COLUMN undo_f`)
	st, err := b2.Status(ctx, "old")
	require.NoError(t, err)
	assert.Equal(t, uint64(5), st.Seq)

	require.NoError(t, b2.Cancel(ctx, "old", rs[4], nil), "a reservation of version 7")
	st, err = b2.Status(ctx, "old")
	require.NoError(t, err)
	assert.Equal(t, uint64(4), st.Seq)
	r, err := b2.Acquire(ctx, req("old", srl.Forever, defs...))
	require.NoError(t, err)
	var ws []srl.Reservation
	for range 3 {
		w, err := b2.Acquire(ctx, req("old", srl.Forever, defs...))
		require.NoError(t, err)
		ws = append(ws, w)
	}
	for i := len(ws) - 1; i >= 0; i-- {
		require.NoError(t, b2.Cancel(ctx, "old", ws[i], nil))
	}
	w, err := b2.Acquire(ctx, req("old", srl.Forever, defs...))
	require.NoError(t, err)
	assert.Equal(t, ws[0].At, w.At, "the first waiter's slot is given back")
	assert.Equal(t, r.Seq+1, w.Seq)
}

// observeOnFreshKey reports q alone (no reset) on a new key and checks
// that the key is then full: nothing left, units reserved, no NaN, and a
// fail-fast acquire refused.
func observeOnFreshKey(t *testing.T, b *Backend, key string, l srl.Limit, remaining float64) {
	t.Helper()
	ctx := ctxT(t)
	require.NoError(t, b.Observe(ctx, key, srl.Update{Quotas: []srl.QuotaUpdate{{Limit: l, Remaining: remaining, HasRemaining: true}}}),
		"%v, remaining %g", l, remaining)
	st, err := b.Status(ctx, key)
	require.NoError(t, err)
	require.Len(t, st.Limits, 1)
	ls := st.Limits[0]
	assert.False(t, math.IsNaN(ls.Remaining) || math.IsNaN(ls.Reserved), "%v, remaining %g: %+v", l, remaining, ls)
	assert.Zero(t, ls.Remaining, "%v, remaining %g", l, remaining)
	assert.Positive(t, ls.Reserved, "%v, remaining %g", l, remaining)
	r, err := b.Acquire(ctx, req(key, 0, srl.PerSecond(1)))
	require.NoError(t, err)
	assert.False(t, r.OK, "%v, remaining %g: limited", l, remaining)
	assert.Positive(t, r.Wait, "%v, remaining %g", l, remaining)
}

// TestCarryStaysOnTheTimeLine: a report of a count far beyond the limit
// (only a caller of the Backend API can send one, or a server lowering a
// yearly limit a thousandfold) carries into later windows without moving
// their start past the time line: on a window of 3 hours or more the
// start overflowed bigint and the report failed.
func TestCarryStaysOnTheTimeLine(t *testing.T) {
	b, _, _ := newTest(t)
	for _, l := range []srl.Limit{srl.Every(10, time.Hour), srl.Every(10, 3*time.Hour), srl.Every(10, 24*time.Hour), srl.Every(10, srl.MaxWindow)} {
		for _, remaining := range []float64{-1e7, -1e300} {
			observeOnFreshKey(t, b, fmt.Sprintf("%v/%g", l, remaining), l, remaining)
		}
	}
}

// TestCarryOfAnInfiniteCount: a report whose count overflows (a huge
// limit less a huge negative remaining, only from a caller of the Backend
// API) leaves the window full, as in the memory backend, where the count
// is infinite: float8 arithmetic failed on the overflow.
func TestCarryOfAnInfiniteCount(t *testing.T) {
	b, _, _ := newTest(t)
	for _, l := range []srl.Limit{srl.Every(math.MaxFloat64, time.Hour), srl.Every(math.MaxFloat64/3, time.Second), srl.Every(10, time.Minute)} {
		for _, remaining := range []float64{-math.MaxFloat64, -1e300} {
			observeOnFreshKey(t, b, fmt.Sprintf("%v/%g", l, remaining), l, remaining)
		}
	}
}

// TestUntakeReturns: giving back more than a grant can hold (a caller of
// the Backend API passing Cancel other costs than Acquire's) returns at
// once: it rolled back one window per limit's worth of units, until the
// statement timeout, holding the key's row.
func TestUntakeReturns(t *testing.T) {
	b, _, _ := newTest(t, WithStatementTimeout(3*time.Second))
	ctx := ctxT(t)
	lim := srl.Every(3, time.Millisecond)
	for i, cost := range []float64{1e300, math.MaxFloat64, 50} {
		key := fmt.Sprint("untake-", i)
		// A year-long block: the window after it is far ahead.
		require.NoError(t, b.Observe(ctx, key, srl.Update{BlockFor: srl.MaxWindow}))
		r, err := b.Acquire(ctx, req(key, srl.Forever, lim))
		require.NoError(t, err)
		require.True(t, r.OK)
		start := time.Now()
		require.NoError(t, b.Cancel(ctx, key, r, []srl.Cost{{Amount: cost}}), "cost %v", cost)
		assert.Less(t, time.Since(start), time.Second, "cost %v", cost)
		st, err := b.Status(ctx, key)
		require.NoError(t, err)
		assert.Zero(t, st.Seq, "cost %v: taken back", cost)
		require.Len(t, st.Limits, 1)
		assert.False(t, st.Limits[0].Reserved < 0 || math.IsNaN(st.Limits[0].Reserved), "cost %v: %+v", cost, st.Limits[0])
	}
}

// TestMigrationFromV8 upgrades a table of version 8, whose aligned
// windows have Prev NaN and no grid: they stay aligned (an aligned window
// with no tail, until a new window or a block writes -1 - units), keep
// their count and end.
func TestMigrationFromV8(t *testing.T) {
	b, dsn, schema := newTest(t)
	ctx := ctxT(t)
	server := srl.Limit{Name: "q", Dimension: srl.DimRequests, Limit: 10, Window: time.Minute}
	require.NoError(t, b.Observe(ctx, "v8", srl.Update{Quotas: []srl.QuotaUpdate{
		{Limit: server, Remaining: 7, HasRemaining: true, ResetIn: 30 * time.Second, HasReset: true}}}))
	before, err := b.Status(ctx, "v8")
	require.NoError(t, err)
	require.Len(t, before.Limits, 1)
	b2, conn := reopenAsOf(t, b, dsn, schema, 8,
		`UPDATE `+b.n.qTable+` SET wprev = array_fill('NaN'::float8, ARRAY[cardinality(wprev)]),
			wbits = array_fill(0::bigint, ARRAY[cardinality(wbits)])`)
	st, err := b2.Status(ctx, "v8")
	require.NoError(t, err)
	require.Len(t, st.Limits, 1)
	assert.Equal(t, 7.0, st.Limits[0].Remaining)
	assert.Equal(t, before.Limits[0].ResetAt, st.Limits[0].ResetAt, "the window keeps its end")

	// A report of the same window keeps it; the count lowers.
	require.NoError(t, b2.Observe(ctx, "v8", srl.Update{Quotas: []srl.QuotaUpdate{
		{Limit: server, Remaining: 5, HasRemaining: true, ResetIn: time.Until(st.Limits[0].ResetAt) - srl.ResetSlack, HasReset: true}}}))
	r, err := b2.Acquire(ctx, req("v8", 0))
	require.NoError(t, err)
	require.True(t, r.OK)
	st, err = b2.Status(ctx, "v8")
	require.NoError(t, err)
	assert.Equal(t, 4.0, st.Limits[0].Remaining)
	assert.Equal(t, before.Limits[0].ResetAt, st.Limits[0].ResetAt)
	var prev []float64
	require.NoError(t, conn.QueryRow(ctx, `SELECT wprev FROM `+b.n.qTable+` WHERE key = $1`, []byte("v8")).Scan(&prev))
	require.Len(t, prev, 1)
	assert.True(t, prev[0] < 0 || math.IsNaN(prev[0]), "still aligned: %v", prev)
}
