package memory_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
)

// modelGrant is a reservation the model holds: its slot (ns after t0), its
// costs and what the backend answered.
type modelGrant struct {
	at    int64
	costs []srl.Cost
	res   srl.Reservation
}

// mostInSpan returns the most units of l that grants (sorted by slot)
// put into any interval [s, s+span) holding the last grant: the brute
// force count the limiter's "any interval of a window's length" promise
// is checked against.
func mostInSpan(grants []modelGrant, l *srl.Limit) float64 {
	if len(grants) == 0 {
		return 0
	}
	span := l.Span()
	last := grants[len(grants)-1].at
	most, sum := 0.0, 0.0
	// Intervals holding the last grant start at a grant within a span of it.
	for i := len(grants) - 1; i >= 0 && grants[i].at > last-span; i-- {
		sum += srl.CostOf(l, grants[i].costs)
		most = max(most, sum)
	}
	return most
}

// TestModelDefaultsHoldInAnyInterval drives the backend with random
// sequences of acquires (costs in two dimensions, max waits from fail
// fast to forever), cancellations (of the latest reservation and of older
// ones) and clock moves (bursts, slots reached, long pauses), under
// several default limits at once, and checks every answer against a
// model that keeps every live grant:
//
//   - no interval of a limit's span (its window and the safety margin, so
//     any interval of its window's length too) holds more than the limit
//     (whole-unit costs), for every limit at once;
//   - slots are first come, first served: a grant never goes before the
//     latest live one (waiters may share a slot: the units of the window
//     before leave together, see TestUnalignedWindowTimelines);
//   - a grant waits at most its max wait; a refusal waits longer and
//     changes nothing (Seq, Status);
//   - Cancel takes back the latest waiter only (newest first, every one),
//     and the next caller with the same costs gets a slot no later than
//     the one given back;
//   - Status never reports a negative or NaN count.
//
// 240 sequences of 400 steps (40 under the race detector).
func TestModelDefaultsHoldInAnyInterval(t *testing.T) {
	toks := srl.Limit{Name: "tok", Dimension: srl.DimTokens, Limit: 20, Window: 10 * time.Second}
	sets := [][]srl.Limit{
		{srl.Every(3, time.Second), srl.Every(10, 10*time.Second), srl.Every(30, 100*time.Second), toks},
		{srl.PerSecond(10), srl.PerMinute(300), srl.PerHour(10_000)},
		{srl.Every(1, time.Second), srl.Every(2, 3*time.Second)},
		{srl.Every(5, time.Second), toks},
	}
	tokCosts := [][]srl.Cost{nil, nil, {{Dimension: srl.DimTokens, Amount: 1}}, {{Dimension: srl.DimTokens, Amount: 3}},
		{{Dimension: srl.DimTokens, Amount: 20}}, {{Dimension: srl.DimRequests, Amount: 2}},
		{{Dimension: srl.DimRequests, Amount: 0}, {Dimension: srl.DimTokens, Amount: 5}}}
	sequences, steps := 240, 400
	if raceEnabled {
		sequences = 40
	}
	shared := 0
	defer func() { t.Logf("%d waiters shared the slot of the waiter before", shared) }()
	for seq := range sequences {
		rng := rand.New(rand.NewPCG(uint64(seq), 77))
		defs := sets[seq%len(sets)]
		b, fc := newFake(t)
		key := fmt.Sprintf("https://model-%d.example:443", seq)
		now := func() int64 { return int64(fc.Now().Sub(t0)) }
		var live []modelGrant
		var seqNo uint64
		var lastCancelled *modelGrant
		for step := range steps {
			where := func() string {
				return fmt.Sprintf("sequence %d step %d (now %v, %d live)", seq, step, time.Duration(now()), len(live))
			}
			switch op := rng.IntN(20); {
			case op < 11: // acquire
				costs := tokCosts[rng.IntN(len(tokCosts))]
				maxWait := srl.Forever
				switch rng.IntN(5) {
				case 0:
					maxWait = 0
				case 1, 2:
					maxWait = time.Duration(rng.Int64N(int64(5 * time.Second)))
				}
				before, _ := b.Status(bg, key)
				r, err := b.Acquire(bg, srl.AcquireRequest{Key: key, Defaults: defs, Costs: costs, MaxWait: maxWait})
				if errors.Is(err, srl.ErrCostExceedsLimit) {
					exceeds := false
					for i := range defs {
						exceeds = exceeds || srl.CostOf(&defs[i], costs) > defs[i].Limit
					}
					require.True(t, exceeds, "%s: %v", where(), err)
					continue
				}
				require.NoError(t, err, where())
				require.GreaterOrEqual(t, r.Wait, time.Duration(0), where())
				if !r.OK {
					require.Greater(t, r.Wait, maxWait, where())
					after, err := b.Status(bg, key)
					require.NoError(t, err)
					before.LastUsed, after.LastUsed = time.Time{}, time.Time{}
					if before.Key != "" {
						require.Equal(t, before, after, "%s: a refusal changes nothing", where())
					}
					continue
				}
				require.LessOrEqual(t, r.Wait, maxWait, where())
				seqNo++
				require.Equal(t, seqNo, r.Seq, where())
				g := modelGrant{at: now() + int64(r.Wait), costs: costs, res: r}
				if n := len(live); n > 0 {
					require.GreaterOrEqual(t, g.at, live[n-1].at, "%s: first come, first served", where())
					if r.Wait > 0 && live[n-1].at > now() && g.at == live[n-1].at {
						shared++ // see TestUnalignedWindowTimelines: a tail's units leave together
					}
				}
				if lastCancelled != nil && slices.Equal(lastCancelled.costs, costs) && lastCancelled.res.Seq == r.Seq {
					require.LessOrEqual(t, g.at, max(lastCancelled.at, now()), "%s: the next caller gets the slot given back", where())
				}
				lastCancelled = nil
				live = append(live, g)
				for i := range defs {
					most := mostInSpan(live, &defs[i])
					require.LessOrEqual(t, most, defs[i].Limit+1e-9,
						"%s: %v units of %v within a span (%v) of the grant at %v", where(), most, defs[i], time.Duration(defs[i].Span()), time.Duration(g.at))
				}
			case op < 13 && len(live) > 0: // the latest gives up
				g := live[len(live)-1]
				require.NoError(t, b.Cancel(bg, key, g.res, g.costs))
				st, err := b.Status(bg, key)
				require.NoError(t, err)
				if g.at <= now() && st.Seq == seqNo {
					// A slot already reached may stay spent (best effort).
					continue
				}
				live = live[:len(live)-1]
				seqNo--
				require.Equal(t, seqNo, st.Seq, "%s: the latest waiter is taken back (at %v, wait %v)", where(), time.Duration(g.at), g.res.Wait)
				if g.at > now() { // a waiter that gives up (a slot already come is best effort)
					lastCancelled = &g
				}
			case op < 14 && len(live) > 1: // an older one gives up: it stays spent
				g := live[rng.IntN(len(live)-1)]
				require.NoError(t, b.Cancel(bg, key, g.res, g.costs))
				st, err := b.Status(bg, key)
				require.NoError(t, err)
				require.Equal(t, seqNo, st.Seq, "%s: an older reservation stays spent", where())
			default: // time passes
				lastCancelled = nil
				switch rng.IntN(6) {
				case 0: // a burst: no time passes
				case 1:
					if n := len(live); n > 0 && live[n-1].at > now() {
						fc.Set(t0.Add(time.Duration(live[n-1].at))) // the latest slot comes
					}
				case 2:
					fc.Advance(time.Duration(rng.Int64N(int64(200 * time.Second)))) // a pause
				default:
					fc.Advance(time.Duration(rng.Int64N(int64(700 * time.Millisecond))))
				}
			}
			if st, err := b.Status(bg, key); err == nil {
				for _, l := range st.Limits {
					require.False(t, math.IsNaN(l.Remaining) || l.Remaining < 0 || math.IsNaN(l.Reserved) || l.Reserved < 0,
						"%s: status %+v", where(), l)
				}
			}
		}
		require.NoError(t, b.Close())
	}
}
