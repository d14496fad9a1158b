package memory_test

// Timelines of a learned window whose phase or limit changes under it:
// regressions found by review, each a server window overfilled before.

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
)

// TestBlockLeavesWindowUnaligned: a 429's Retry-After, in whole seconds
// rounded down, ends the block up to a second before the server's window
// does. A learned window restarted there must not keep its alignment
// (which restricts the tail to its last Uncertainty, trusting that it ends
// no earlier than the server's): else a window granted at its start and a
// burst at the next local window's start, still inside the server's
// window, both reach the server. Server: 5 per 10 s, windows [0, 10 s),
// [10 s, 20 s), ...
func TestBlockLeavesWindowUnaligned(t *testing.T) {
	b, fc := newFake(t)
	key := "https://block-align.example:443"
	lim := srl.Limit{Name: "q", Limit: 5, Window: 10 * time.Second}
	at := func(d time.Duration) { fc.Set(t0.Add(d)) }
	var sent []time.Duration
	take := func(n int) {
		for range n {
			r := acquire(t, b, key, srl.Forever, lim)
			require.True(t, r.OK)
			now := fc.Now().Sub(t0)
			sent = append(sent, now+r.Wait)
		}
	}
	// Learn the limit, aligned: at 1 s, 9 s left in the server's window.
	at(time.Second)
	take(1)
	require.NoError(t, b.Observe(bg, key, srl.Update{Quotas: []srl.QuotaUpdate{{Limit: lim, Remaining: 4, HasRemaining: true,
		ResetIn: 9 * time.Second, HasReset: true}}, SentSeq: 1, SentAgo: time.Millisecond}))
	// At 5.5 s, a 429 (another client took the rest): Retry-After 4 s,
	// the 4.5 s left rounded down.
	at(5500 * time.Millisecond)
	require.NoError(t, b.Observe(bg, key, srl.Update{Quotas: []srl.QuotaUpdate{{Limit: lim, Remaining: 0, HasRemaining: true,
		ResetIn: 4 * time.Second, HasReset: true}}, BlockFor: 4 * time.Second}))
	// The server's next window [10 s, 20 s): a burst at its start, then
	// one just before its end.
	at(10 * time.Second)
	take(5)
	at(19600 * time.Millisecond)
	take(5)
	n := 0
	for _, s := range sent {
		if s >= 10*time.Second && s < 20*time.Second {
			n++
		}
	}
	require.LessOrEqual(t, n, 5, "requests sent in the server's window [10s, 20s): %v", sent)
}

// TestLearnedLimitAboveDefaultKeepsGrid: a learned limit taking over the
// window of a lower default of the same length (2 per 10 s, the server
// allowing 5) keeps the slots booked under the default where they are.
// The window's grid (Late) is kept in units of the limit: read under the
// higher limit, it said those slots went earlier than they do, so the
// next window let a burst follow them: 6 requests within 10 s (4 of
// them within 2.1 s of a window end) against a server allowing 5.
func TestLearnedLimitAboveDefaultKeepsGrid(t *testing.T) {
	b, fc := newFake(t)
	key := "https://limit-change.example:443"
	def := srl.Limit{Name: "q", Limit: 2, Window: 10 * time.Second}
	learned := srl.Limit{Name: "q", Limit: 5, Window: 10 * time.Second}
	var slots []time.Duration
	take := func(at time.Duration, n int) {
		fc.Set(t0.Add(at))
		for range n {
			r := acquire(t, b, key, srl.Forever, def)
			require.True(t, r.OK)
			slots = append(slots, at+r.Wait)
		}
	}
	take(0, 6) // 2 per window under the default: 0, 0, 10.03s, 15.045s, 20.06s, 25.075s
	fc.Set(t0.Add(15 * time.Millisecond))
	require.NoError(t, b.Observe(bg, key, srl.Update{Quotas: []srl.QuotaUpdate{{Limit: learned, Remaining: 4, HasRemaining: true,
		ResetIn: 4700 * time.Millisecond, HasReset: true}}, SentSeq: 1, SentAgo: 15 * time.Millisecond}))
	take(65*time.Millisecond, 1)
	take(19950*time.Millisecond, 2)
	take(27286*time.Millisecond, 5)
	slices.Sort(slots)
	// No interval of the learned limit's Span holds more than 5: the
	// window stays on the default's phase (it held future slots), where
	// the any-interval rule applies.
	span := time.Duration(learned.Span())
	for i := range slots {
		n := 0
		for _, s := range slots[i:] {
			if s < slots[i]+span {
				n++
			}
		}
		require.LessOrEqual(t, n, 5, "%d slots in [%v, %v): %v", n, slots[i], slots[i]+span, slots)
	}
}
