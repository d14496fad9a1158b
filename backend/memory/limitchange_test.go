package memory_test

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
)

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
