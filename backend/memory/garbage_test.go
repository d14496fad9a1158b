package memory_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// TestGarbageInput drives the backend with absurd values everywhere a
// caller of the Backend API can put them (NaN, infinities, huge and
// negative limits, costs, remaining counts, zero and negative windows,
// durations from MinInt64 to MaxInt64 as resets, blocks, max waits and
// send times, out-of-order ObserveAt dates, eviction): nothing panics,
// every error is typed (ErrInvalidLimit, ErrCostExceedsLimit), a grant
// never waits a negative time and Status never reports NaN or a negative
// count. 2,000 sequences of 40 calls.
func TestGarbageInput(t *testing.T) {
	floats := []float64{math.NaN(), math.Inf(1), math.Inf(-1), -1, 0, 1e-9, 1e-6, 0.5, 1, 3, 1e9, 1e300, -1e300, math.MaxFloat64, math.SmallestNonzeroFloat64}
	durs := []time.Duration{math.MinInt64, -time.Hour, -1, 0, 1, time.Millisecond, time.Second, time.Hour, srl.MaxWindow, srl.MaxWindow + 1, math.MaxInt64}
	for seed := range uint64(2000) {
		rng := rand.New(rand.NewPCG(seed, 1))
		b, fc := newFake(t)
		f := func() float64 { return floats[rng.IntN(len(floats))] }
		d := func() time.Duration { return durs[rng.IntN(len(durs))] }
		lim := func() srl.Limit {
			return srl.Limit{Name: []string{"a", "b", ""}[rng.IntN(3)], Dimension: []srl.Dimension{"", srl.DimTokens}[rng.IntN(2)], Limit: f(), Window: d()}
		}
		var res []srl.Reservation
		for range 40 {
			switch rng.IntN(6) {
			case 0, 1:
				r, err := b.Acquire(bg, srl.AcquireRequest{Key: "k", Defaults: []srl.Limit{lim(), srl.PerSecond(3)}[:1+rng.IntN(2)],
					Costs: []srl.Cost{{Dimension: srl.DimTokens, Amount: f()}}[:rng.IntN(2)], MaxWait: d()})
				if err != nil && !errors.Is(err, srl.ErrInvalidLimit) && !errors.Is(err, srl.ErrCostExceedsLimit) {
					t.Fatalf("seed %d: %v", seed, err)
				}
				if r.OK {
					if r.Wait < 0 {
						t.Fatalf("seed %d: negative wait %v", seed, r)
					}
					res = append(res, r)
				}
			case 2:
				q := srl.QuotaUpdate{Limit: lim(), Remaining: f(), HasRemaining: rng.IntN(2) == 0, ResetIn: d(), HasReset: rng.IntN(2) == 0}
				u := srl.Update{Quotas: []srl.QuotaUpdate{q}, BlockFor: d(), SentSeq: rng.Uint64N(50), SentAgo: d()}
				if err := b.Observe(bg, "k", u); err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				if err := b.ObserveAt(bg, "k", u, fc.Now().Add(-time.Duration(rng.Int64N(int64(time.Hour))))); err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
			case 3:
				if len(res) > 0 {
					err := b.Cancel(bg, "k", res[rng.IntN(len(res))], []srl.Cost{{Dimension: srl.DimTokens, Amount: f()}}[:rng.IntN(2)])
					if err != nil && !errors.Is(err, srl.ErrInvalidLimit) {
						t.Fatalf("seed %d: %v", seed, err)
					}
				}
			case 4:
				if err := b.SetLimits(bg, "k", []srl.Limit{lim()}[:rng.IntN(2)]); err != nil && !errors.Is(err, srl.ErrInvalidLimit) {
					t.Fatalf("seed %d: %v", seed, err)
				}
			default:
				fc.Advance(time.Duration(rng.Int64N(int64(time.Hour))))
			}
			if st, err := b.Status(bg, "k"); err == nil {
				for _, l := range st.Limits {
					if math.IsNaN(l.Remaining) || l.Remaining < 0 || math.IsNaN(l.Reserved) {
						t.Fatalf("seed %d: status %+v remaining %v reserved %v", seed, l, l.Remaining, l.Reserved)
					}
				}
			}
			b.EvictIdle()
		}
		b.Close()
	}
}
