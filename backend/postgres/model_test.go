package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/backend/memory"
	"github.com/smartratelimit/smartratelimit/internal/clock"
)

// testNow lets a test set the database clock of its session.
const testNow = `coalesce(nullif(current_setting('smartratelimit.test_now', true), '')::bigint, ` + nowNS + `)`

// withTestClock makes the functions read the clock from the session
// setting smartratelimit.test_now (ns) when it is set.
func withTestClock() Option {
	return func(o *options) error { o.now = testNow; return nil }
}

// setNow sets the database clock of b's only connection.
func setNow(t *testing.T, b *Backend, ns int64) {
	t.Helper()
	_, err := b.db.Exec(context.Background(), `SELECT set_config('smartratelimit.test_now', $1, false)`, strconv.FormatInt(ns, 10))
	require.NoError(t, err)
}

// TestSameArithmeticAsMemory drives the PostgreSQL backend (on a stepped
// database clock) and the memory backend (on a fake clock) through the same
// random timeline and requires identical answers and states: the SQL runs
// smartratelimit.Window's arithmetic exactly. The timeline exercises
// lagging future windows (several limits and blocks push requests later),
// blocks while reservations are outstanding, reports with SentAgo, and
// the handover from defaults to learned limits of the same window (keys
// are cleared now and then so that it happens again), overrides set,
// set again and removed, and cancelled
// reservations (mostly the key's latest grant, which is taken back, and
// now and then an older one, which is not). Windows reported shorter than
// the real one (inferred from a reset) must not shorten a learned limit.
func TestSameArithmeticAsMemory(t *testing.T) {
	b, _, _ := newTest(t, withTestClock(), WithPoolSize(1))
	fake := clock.NewFake(time.Unix(1_700_000_000, 0))
	m, err := memory.New(memory.WithClock(fake), memory.WithIdleTTL(0))
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })

	ctx := ctxT(t)
	const base = int64(1_800_000_000_000_000_000)
	now := base
	setNow(t, b, now)
	rng := rand.New(rand.NewPCG(1, 2))
	// rng2 draws what the timeline added later (a server announcing
	// another limit, resets already past), leaving rng's sequence as it was.
	rng2 := rand.New(rand.NewPCG(3, 4))

	keys := []string{"a", "b", "c"}
	defaults := map[string][]srl.Limit{
		"a": {srl.Every(3, 10*time.Second)},
		"b": {srl.Every(2, 5*time.Second), srl.Every(5, 30*time.Second), srl.Every(9, time.Minute)},
		"c": {{Name: "tok", Dimension: srl.DimTokens, Limit: 100, Window: 20 * time.Second}, srl.Every(4, 10*time.Second)},
	}
	server := []srl.Limit{
		{Name: "q", Dimension: srl.DimRequests, Limit: 5, Window: 10 * time.Second},
		{Name: "t", Dimension: srl.DimTokens, Limit: 100, Window: 20 * time.Second},
		{Name: "m", Dimension: srl.DimRequests, Limit: 7, Window: time.Minute},
	}
	overrides := []srl.Limit{
		{Name: "o1", Dimension: srl.DimRequests, Limit: 4, Window: 15 * time.Second},
		{Name: "o2", Dimension: srl.DimTokens, Limit: 150, Window: 40 * time.Second},
	}
	seqs := map[string][]uint64{}
	sent := map[string][]int64{} // send instants of the granted requests
	// grants are the granted reservations of each key (memory's and
	// PostgreSQL's) with their costs, for Cancel.
	type grant struct {
		mem, pg srl.Reservation
		costs   []srl.Cost
	}
	grants := map[string][]grant{}
	cancels, sets := 0, 0
	for step := range 4000 {
		key := keys[rng.IntN(len(keys))]
		var what string
		switch op := rng.IntN(10); {
		case op < 6 && rng.IntN(6) == 0 && len(grants[key]) > 0:
			gs := grants[key]
			i := len(gs) - 1
			if rng.IntN(4) == 0 {
				i = rng.IntN(len(gs))
			}
			g := gs[i]
			grants[key] = slices.Delete(gs, i, i+1)
			what = fmt.Sprintf("cancel %s %+v", key, g.mem)
			require.NoError(t, m.Cancel(ctx, key, g.mem, g.costs), what)
			require.NoError(t, b.Cancel(ctx, key, g.pg, g.costs), what)
			cancels++
		case op < 6:
			r := srl.AcquireRequest{Key: key, Defaults: defaults[key]}
			switch rng.IntN(3) {
			case 0:
				r.MaxWait = 0
			case 1:
				r.MaxWait = time.Duration(rng.IntN(20)) * time.Second
			default:
				r.MaxWait = srl.Forever
			}
			if rng.IntN(2) == 0 {
				r.Costs = []srl.Cost{{Dimension: srl.DimTokens, Amount: float64(rng.IntN(60))}}
			}
			got, gerr := b.Acquire(ctx, r)
			want, werr := m.Acquire(ctx, r)
			what = fmt.Sprintf("acquire %+v", r)
			require.Equal(t, werr != nil, gerr != nil, "step %d %s: errors %v / %v", step, what, werr, gerr)
			if want.OK {
				seqs[key] = append(seqs[key], want.Seq)
				sent[key] = append(sent[key], now+int64(want.Wait))
				grants[key] = append(grants[key], grant{mem: want, pg: got, costs: r.Costs})
				// The same slot on each time line: memory's starts at 1
				// when the test begins, the database's at base.
				require.Equal(t, want.At-1+base, got.At, "step %d %s: slot", step, what)
				got.At = want.At
			}
			require.Equal(t, want, got, "step %d %s", step, what)
		case op < 9 && rng.IntN(30) == 0:
			// Overrides: set (again: same-named windows carry over, even a
			// default's), changed, or removed.
			var lims []srl.Limit
			for _, l := range overrides {
				if rng.IntN(2) == 0 {
					lims = append(lims, l)
				}
			}
			if rng.IntN(3) == 0 && len(defaults[key]) > 0 {
				lims = append(lims, defaults[key][0])
			}
			what = fmt.Sprintf("set limits %s %v", key, lims)
			sets++
			require.NoError(t, b.SetLimits(ctx, key, lims), what)
			require.NoError(t, m.SetLimits(ctx, key, lims), what)
		case op < 9 && rng.IntN(40) == 0:
			what = "clear " + key
			require.NoError(t, b.Clear(ctx, key))
			require.NoError(t, m.Clear(ctx, key))
			seqs[key], sent[key], grants[key] = nil, nil, nil
		case op < 9:
			var u srl.Update
			for _, l := range server {
				if rng.IntN(2) == 0 {
					continue
				}
				q := srl.QuotaUpdate{Limit: l}
				if rng.IntN(4) == 0 {
					// A window inferred from the time to reset: shorter than
					// the real one, which the learned limit keeps.
					q.Window -= time.Duration(rng.Int64N(int64(l.Window) / 2))
				}
				if rng2.IntN(5) == 0 {
					// The server announces another limit: the learned
					// window's grids are re-expressed (Window.Relimit).
					q.Limit.Limit = []float64{2, 3, 8, 12.5}[rng2.IntN(4)]
				}
				if rng.IntN(4) > 0 {
					q.Remaining, q.HasRemaining = float64(rng.IntN(int(l.Limit)+2)-1), true
				}
				if rng.IntN(4) > 0 {
					q.ResetIn, q.HasReset = time.Duration(rng.Int64N(int64(l.Window)*3/2)), true
					if rng.IntN(4) == 0 {
						// About to reset: a window that may end about when
						// the local one began.
						q.ResetIn = time.Duration(rng.Int64N(int64(2 * time.Second)))
					}
					if rng2.IntN(10) == 0 {
						// Already past (a reset counted from a late Date).
						q.ResetIn = -time.Duration(rng2.Int64N(int64(3 * time.Second)))
					}
				}
				u.Quotas = append(u.Quotas, q)
			}
			if rng.IntN(6) == 0 {
				u.BlockFor = time.Duration(rng.Int64N(int64(15 * time.Second)))
				if st, err := m.Status(ctx, key); err == nil && rng.IntN(2) == 0 {
					// End the block inside the reservations already made.
					for _, l := range st.Limits {
						if l.Reserved > 0 {
							u.BlockFor = time.Duration(rng.Int64N(int64(l.ResetAt.Sub(fake.Now())) + int64(l.Window)))
							break
						}
					}
				}
			}
			if s := seqs[key]; len(s) > 0 && rng.IntN(3) > 0 {
				i := rng.IntN(len(s))
				u.SentSeq = s[i]
				if at := sent[key][i]; at < now && rng.IntN(4) > 0 {
					u.SentAgo = time.Duration(now - at)
				}
			}
			if rng.IntN(10) == 0 && now > base {
				// Unrelated to any grant, but after the backends started (the
				// memory backend knows no instant before it began).
				u.SentAgo = time.Duration(rng.Int64N(min(now-base, int64(time.Minute))))
			}
			what = fmt.Sprintf("observe %s %+v", key, u)
			require.NoError(t, b.Observe(ctx, key, u), what)
			require.NoError(t, m.Observe(ctx, key, u), what)
		default:
			d := time.Duration(rng.Int64N(int64(8 * time.Second)))
			if rng.IntN(3) == 0 {
				d = time.Duration(rng.IntN(1000)) * time.Millisecond
			}
			now += int64(d)
			fake.Advance(d)
			setNow(t, b, now)
			what = "advance " + d.String()
		}
		for _, k := range keys {
			want, werr := m.Status(ctx, k)
			got, gerr := b.Status(ctx, k)
			if werr != nil || gerr != nil {
				require.Equal(t, werr != nil, gerr != nil, "step %d after %s: status %s: %v / %v", step, what, k, werr, gerr)
				continue
			}
			require.Equal(t, want.Seq, got.Seq, "step %d after %s: key %s seq", step, what, k)
			require.Equal(t, !want.BlockedUntil.IsZero(), !got.BlockedUntil.IsZero(), "step %d after %s: key %s blocked", step, what, k)
			if !want.BlockedUntil.IsZero() {
				require.Equal(t, want.BlockedUntil.Sub(fake.Now()), got.BlockedUntil.Sub(time.Unix(0, now)), "step %d after %s: key %s blocked until", step, what, k)
			}
			require.Len(t, got.Limits, len(want.Limits), "step %d after %s: key %s limits %+v / %+v", step, what, k, want.Limits, got.Limits)
			for i := range want.Limits {
				w, g := want.Limits[i], got.Limits[i]
				require.True(t, w.Limit.Same(g.Limit) && w.Limit.Limit == g.Limit.Limit && w.Window == g.Window && w.Source == g.Source,
					"step %d after %s: key %s limit %d: %+v / %+v", step, what, k, i, w, g)
				require.Equal(t, w.Remaining, g.Remaining, "step %d after %s: key %s limit %s remaining", step, what, k, w.Limit)
				require.Equal(t, w.Reserved, g.Reserved, "step %d after %s: key %s limit %s reserved", step, what, k, w.Limit)
				require.Equal(t, w.ResetAt.Sub(fake.Now()), g.ResetAt.Sub(time.Unix(0, now)), "step %d after %s: key %s limit %s reset", step, what, k, w.Limit)
			}
		}
	}
	t.Logf("%d cancels, %d overrides set", cancels, sets)
}
