package smartratelimit

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestReconcileModel applies 10,000 random server reports to windows in random
// states (reached by random grants, aligned or not, current or holding
// future reservations) and checks the reconciliation rules:
//
//   - a report about the local window, or an earlier one, never raises
//     what is left now (the server's remaining can only lower the local
//     count; stale and out-of-order reports change nothing upward);
//   - a report whose window ends inside the local one (by more than
//     Tolerance) ends the local window with it, keeping the local units
//     and the server's (the excess carried into the windows after);
//   - a report of the same window (its end within Tolerance of the local
//     end) or without a reset never lets the next request go sooner, for
//     any cost;
//   - the units granted after the reported request was sent are
//     subtracted: after a report that applies to the current window, what
//     is left is at most the server's remaining less those units (at most
//     the window's own);
//   - a report of a request sent before the current window began changes
//     nothing (a window that ended, read as a reset of 0, would otherwise
//     end the current one now);
//   - a report of a later window starts that window with the server's
//     count and those units;
//   - nothing is NaN, negative or off the time line.
func TestReconcileModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	limits := []Limit{Every(5, time.Second), Every(10, time.Minute), Every(100, time.Minute), Every(3, time.Hour), Every(7.5, 10*time.Second)}
	const trials = 10000
	for trial := range trials {
		l := limits[rng.IntN(len(limits))]
		limit, span := l.Limit, l.Span()
		w := Window{Start: 0}
		if rng.IntN(3) == 0 {
			u := &QuotaUpdate{Limit: l, ResetIn: time.Duration(rng.Int64N(span)), HasReset: true}
			w = StartWindow(span, 0, u)
		}
		now, last := int64(0), int64(0)
		for range rng.IntN(int(3 * limit)) {
			if rng.IntN(3) == 0 {
				now += rng.Int64N(span / 2)
			}
			at := w.Earliest(limit, span, now, max(now, last), 1)
			w.Take(limit, span, now, at, 1)
			last = at
		}
		now += rng.Int64N(span)
		u := &QuotaUpdate{Limit: l}
		if rng.IntN(5) > 0 {
			u.Remaining, u.HasRemaining = math.Floor(rng.Float64()*(limit+1)), true
		}
		switch rng.IntN(5) {
		case 0:
		case 1: // a window that ended (a reset in the past reads as 0)
			u.ResetIn, u.HasReset = 0, true
		default:
			u.ResetIn, u.HasReset = time.Duration(rng.Int64N(2*span)), true
		}
		since := float64(rng.IntN(4))
		sentAt := int64(0)
		if rng.IntN(2) == 0 {
			sentAt = max(now-rng.Int64N(span), 1)
		}
		before := w
		// The latest local window as Reconcile sees it, once over windows are passed.
		cur := before
		cur.advance(span, now)
		remBefore, _, _ := before.State(limit, span, now)
		after := before
		after.Reconcile(limit, span, now, u, since, sentAt)
		remAfter, reserved, _ := after.State(limit, span, now)
		msg := func() string {
			return fmt.Sprintf("trial %d: %v: before %+v, after %+v, now %d, report %+v, since %v, sent at %d",
				trial, l, before, after, now, *u, since, sentAt)
		}
		require.False(t, math.IsNaN(after.Used) || after.Used < 0 || math.IsNaN(remAfter) || remAfter < 0 || reserved < 0, msg())
		require.Less(t, after.Start, int64(math.MaxInt64/4), msg())
		tol := Tolerance(span)
		end := now + int64(u.ResetIn)
		later := u.HasReset && end > cur.Start+span+tol
		stale := sentAt > 0 && sentAt < cur.Start-int64(time.Millisecond) && cur.Start <= now
		earlier := u.HasReset && !later && !stale && cur.Start <= now && end < cur.Start+span-tol &&
			(sentAt > 0 || end > cur.Start+tol)
		if earlier {
			// The server's window ends inside the local one: the local one
			// ends with it and keeps its units and the server's (any excess
			// carried into the windows after).
			used := cur.Used
			if u.HasRemaining {
				used = math.Max(used, math.Max(0, limit-u.Remaining)+math.Min(since, cur.Used))
			}
			k := (after.Start - (end - span)) / span
			require.Equal(t, int64(0), (after.Start-(end-span))%span, msg())
			require.InDelta(t, used, after.Used+float64(k)*limit, 1e-9, msg())
		}
		if !later && !earlier {
			// An unaligned window that a report aligns stops counting the
			// units of the window before (the server's window is the local
			// one): only those may come back.
			tail := 0.0
			if !before.Aligned() && after.Aligned() {
				tail = cur.tailOf(0, 0, 0, 0, limit, span).count(limit, span, now-cur.Start)
			}
			require.LessOrEqual(t, remAfter, remBefore+tail, "never raises what is left: %s", msg())
		}
		sameWindow := u.HasReset && end >= cur.Start+span-tol && end <= cur.Start+span+tol
		if !later && (sameWindow || !u.HasReset) && before.Aligned() == after.Aligned() {
			for _, cost := range []float64{1, limit} {
				b, a := before.Earliest(limit, span, now, max(now, last), cost), after.Earliest(limit, span, now, max(now, last), cost)
				require.GreaterOrEqual(t, a, b, "cost %v never goes sooner: %s", cost, msg())
			}
		}
		if stale && !later {
			require.True(t, sameState(cur, after), "a report of a request sent before the window changes nothing: %s", msg())
		}
		if u.HasRemaining && !later && !stale && cur.Start <= now && (sameWindow || !u.HasReset) {
			left := u.Remaining - math.Min(since, cur.Used)
			require.LessOrEqual(t, remAfter, math.Max(0, left)+1e-9, "grants since are subtracted: %s", msg())
		}
		if later && !stale {
			require.True(t, after.Aligned(), msg())
			want := 0.0 // without a count, the later window starts empty
			if u.HasRemaining {
				want = math.Max(0, limit-u.Remaining) + math.Min(since, cur.Used)
			}
			if want <= limit {
				require.Equal(t, end-span, after.Start, msg())
				require.InDelta(t, want, after.Used, 1e-9, msg())
			}
		}
	}
}

// sameState compares windows with NaN equal to itself.
func sameState(a, b Window) bool {
	return a.Start == b.Start && a.Used == b.Used && (a.Prev == b.Prev || a.Aligned() && b.Aligned()) &&
		a.Late == b.Late && a.Last == b.Last && a.PrevLate == b.PrevLate && a.PrevLast == b.PrevLast
}
