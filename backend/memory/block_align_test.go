package memory_test

import (
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
