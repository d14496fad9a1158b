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
//   - an aligned window that a report aligns, or keeps aligned, ends at or
//     after the earliest end of the server's window the report allows and
//     at most Uncertainty after the latest (serverEnd): the local window
//     never ends before the server's, nor so late that the units of its
//     last Uncertainty could miss the next one;
//   - a report precise enough aligns an unaligned window, and realigns an
//     aligned one whose end it contradicts; then the window ends at the
//     latest end the report allows and keeps the units it counted, with
//     the tail that counted against now;
//   - a report about the local window, or an earlier one, never raises
//     what is left now (the server's remaining can only lower the local
//     count; stale and out-of-order reports change nothing upward), and
//     one that moves no phase never lets the next request go sooner, for
//     any cost;
//   - the units granted after the reported request was sent are
//     subtracted: after a report that applies to the current window, what
//     is left is at most the server's remaining less those units (at most
//     the window's own);
//   - a report of a request sent before the current window began changes
//     nothing (a window that ended, read as a reset of 0, would otherwise
//     end the current one now);
//   - a report of a later window, precise enough, starts that window with
//     the server's count and those units;
//   - nothing is NaN, negative or off the time line.
func TestReconcileModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	limits := []Limit{Every(5, time.Second), Every(10, time.Minute), Every(100, time.Minute), Every(3, time.Hour), Every(7.5, 10*time.Second)}
	const trials = 10000
	for trial := range trials {
		l := limits[rng.IntN(len(limits))]
		limit, window := l.Limit, int64(l.Window)
		w := Window{Start: 0}
		if rng.IntN(3) == 0 {
			u := &QuotaUpdate{Limit: l, ResetIn: time.Duration(rng.Int64N(window)), HasReset: true}
			w = StartWindow(window, 0, 0, u)
		}
		now, last := int64(0), int64(0)
		for range rng.IntN(int(3 * limit)) {
			if rng.IntN(3) == 0 {
				now += rng.Int64N(window / 2)
			}
			at := w.Earliest(limit, window, now, max(now, last), 1)
			w.Take(limit, window, now, at, 1)
			last = at
		}
		now += rng.Int64N(window)
		u := &QuotaUpdate{Limit: l}
		if rng.IntN(5) > 0 {
			u.Remaining, u.HasRemaining = math.Floor(rng.Float64()*(limit+1)), true
		}
		switch rng.IntN(5) {
		case 0:
		case 1: // a window that ended (a reset in the past reads as 0)
			u.ResetIn, u.HasReset = 0, true
		default:
			u.ResetIn, u.HasReset = time.Duration(rng.Int64N(2*window)), true
		}
		since := float64(rng.IntN(4))
		sentAt := int64(0)
		if rng.IntN(2) == 0 {
			sentAt = max(now-rng.Int64N(window/4*[]int64{1, 20}[rng.IntN(2)]/20+1), 1)
		}
		before := w
		// The latest local window as Reconcile sees it, once over windows are passed.
		cur := before
		p := cur.Period(window)
		cur.advance(p, now)
		remBefore, _, _ := before.State(limit, window, now)
		after := before
		after.Reconcile(limit, window, now, u, since, sentAt)
		remAfter, reserved, _ := after.State(limit, window, now)
		msg := func() string {
			return fmt.Sprintf("trial %d: %v: before %+v, after %+v, now %d, report %+v (remaining %v/%v, reset %v/%v), since %v, sent at %d",
				trial, l, before, after, now, *u, u.Remaining, u.HasRemaining, u.ResetIn, u.HasReset, since, sentAt)
		}
		require.False(t, math.IsNaN(after.Used) || after.Used < 0 || math.IsNaN(remAfter) || remAfter < 0 || reserved < 0, msg())
		require.Less(t, after.Start, int64(math.MaxInt64/4), msg())
		tol := Tolerance(window)
		lo, hi, precise := serverEnd(window, now, sentAt, u.ResetIn)
		later := u.HasReset && (hi > cur.Start+p+tol || cur.Aligned() && lo > cur.Start+p)
		current := u.HasReset && cur.Aligned() && cur.Start+p >= lo && cur.Start+p <= hi+Uncertainty(window)
		stale := sentAt > 0 && sentAt < cur.Start-int64(time.Millisecond) && cur.Start <= now && !later && !current
		future := cur.Start > now
		endsBefore := u.HasReset && !later && !stale && !future && sentAt <= 0 && hi < cur.Start+p-tol && lo <= cur.Start+tol
		applies := !stale && !future && !endsBefore
		used := math.NaN()
		if u.HasRemaining {
			used = math.Max(0, limit-u.Remaining) + math.Min(since, cur.Used)
		}
		realigned := u.HasReset && precise && applies &&
			(later || !cur.Aligned() || cur.Start+p < lo || cur.Start+p > hi+Uncertainty(window))
		if stale || future && !later || endsBefore {
			require.True(t, sameState(cur, after) || sameState(before, after), "a report of a request sent before the window, or about a window before the latest one, changes nothing: %s", msg())
			continue
		}
		// The window holding now (a carry moves the latest window on).
		end := after.Start + after.Period(window)
		for k := int64(0); end-after.Period(window) > now && k < 1<<21; k++ {
			end -= after.Period(window)
		}
		if realigned {
			require.True(t, after.Aligned(), msg())
			require.Equal(t, hi, end, "ends at the latest end the report allows: %s", msg())
			units := cur.Used + cur.tailOf(0, 0, 0, 0, limit, window, p).count(limit, p, now-cur.Start)
			if later && !math.IsNaN(used) {
				units = used
			} else if !math.IsNaN(used) {
				units = math.Max(units, used)
			}
			k := float64((after.Start - (end - window)) / window)
			require.InDelta(t, units, after.Used+k*limit, 1e-9, msg())
		} else if u.HasReset && after.Aligned() && cur.Aligned() && precise {
			require.GreaterOrEqual(t, end, lo, "never ends before the server's window: %s", msg())
			require.LessOrEqual(t, end, hi+Uncertainty(window), "ends within Uncertainty of it: %s", msg())
		}
		if !realigned {
			require.Equal(t, cur.Aligned(), after.Aligned(), msg())
			require.Zero(t, (after.Start-cur.Start)%p, "the phase stays: %s", msg())
		}
		if !later {
			require.LessOrEqual(t, remAfter, remBefore, "never raises what is left: %s", msg())
			if !realigned {
				for _, cost := range []float64{1, limit} {
					b, a := before.Earliest(limit, window, now, max(now, last), cost), after.Earliest(limit, window, now, max(now, last), cost)
					require.GreaterOrEqual(t, a, b, "cost %v never goes sooner: %s", cost, msg())
				}
			}
			if u.HasRemaining {
				left := u.Remaining - math.Min(since, cur.Used)
				require.LessOrEqual(t, remAfter, math.Max(0, left)+1e-9, "grants since are subtracted: %s", msg())
			}
		}
	}
}

// sameState compares windows with NaN equal to itself.
func sameState(a, b Window) bool {
	return a.Start == b.Start && a.Used == b.Used && (a.Prev == b.Prev || a.Aligned() && b.Aligned()) &&
		a.Late == b.Late && a.Last == b.Last && a.PrevLate == b.PrevLate && a.PrevLast == b.PrevLast
}
