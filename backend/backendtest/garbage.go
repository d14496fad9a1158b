package backendtest

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// GarbageSequence is one sequence of [Garbage]: a backend and what moves
// its clock, with optional hooks for what only that backend offers.
type GarbageSequence struct {
	Backend srl.Backend
	// Advance moves the backend's clock forward.
	Advance func(time.Duration)
	// Observed, when set, is called after each Observe with its update.
	Observed func(rng *rand.Rand, u srl.Update) error
	// Step, when set, is called after each call and its Status check.
	Step func()
	// End, when set, ends the sequence.
	End func()
}

// Garbage drives backends with absurd values everywhere a caller of the
// Backend API can put them — NaN, infinities, huge, tiny and negative
// limits, costs and remaining counts, zero and negative windows, durations
// from MinInt64 to MaxInt64 as resets, blocks, max waits and send times —
// in sequences of 40 random calls on one key: every call returns at once,
// an error is a typed refusal (ErrInvalidLimit, ErrCostExceedsLimit), a
// grant never waits a negative time and Status never reports NaN or a
// negative count. begin starts sequence seed.
func Garbage(t *testing.T, sequences int, begin func(t *testing.T, seed uint64) GarbageSequence) {
	t.Helper()
	floats := []float64{math.NaN(), math.Inf(1), math.Inf(-1), -1, 0, 1e-9, 1e-6, 0.5, 1, 3, 1e9, 1e300, -1e300,
		math.MaxFloat64, -math.MaxFloat64, math.MaxFloat64 / 2, 1e290, -1e290, 1e-300, math.SmallestNonzeroFloat64}
	durs := []time.Duration{math.MinInt64, -time.Hour, -1, 0, 1, time.Millisecond, time.Second, time.Hour,
		srl.MaxWindow, srl.MaxWindow + 1, math.MaxInt64}
	refusal := func(err error) bool {
		return err == nil || errors.Is(err, srl.ErrInvalidLimit) || errors.Is(err, srl.ErrCostExceedsLimit)
	}
	ctx := context.Background()
	for seed := range uint64(sequences) {
		rng := rand.New(rand.NewPCG(seed, 1))
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d: "+format, append([]any{seed}, args...)...)
		}
		s := begin(t, seed)
		b := s.Backend
		f := func() float64 { return floats[rng.IntN(len(floats))] }
		d := func() time.Duration { return durs[rng.IntN(len(durs))] }
		lim := func() srl.Limit {
			return srl.Limit{Name: []string{"a", "b", ""}[rng.IntN(3)], Dimension: []srl.Dimension{"", srl.DimTokens}[rng.IntN(2)], Limit: f(), Window: d()}
		}
		costs := func() []srl.Cost { return []srl.Cost{{Dimension: srl.DimTokens, Amount: f()}}[:rng.IntN(2)] }
		var res []srl.Reservation
		for range 40 {
			switch rng.IntN(6) {
			case 0, 1:
				r, err := b.Acquire(ctx, srl.AcquireRequest{Key: "k", Defaults: []srl.Limit{lim(), srl.PerSecond(3)}[:1+rng.IntN(2)],
					Costs: costs(), MaxWait: d()})
				if !refusal(err) {
					fail("acquire: %v", err)
				}
				if r.OK {
					if r.Wait < 0 {
						fail("negative wait %+v", r)
					}
					res = append(res, r)
				}
			case 2:
				q := srl.QuotaUpdate{Limit: lim(), Remaining: f(), HasRemaining: rng.IntN(2) == 0, ResetIn: d(), HasReset: rng.IntN(2) == 0}
				u := srl.Update{Quotas: []srl.QuotaUpdate{q}, BlockFor: d(), SentSeq: rng.Uint64N(50), SentAgo: d()}
				if err := b.Observe(ctx, "k", u); err != nil {
					fail("observe %+v: %v", u, err)
				}
				if s.Observed != nil {
					if err := s.Observed(rng, u); err != nil {
						fail("after observe %+v: %v", u, err)
					}
				}
			case 3:
				if c, ok := b.(srl.Canceler); ok && len(res) > 0 {
					if err := c.Cancel(ctx, "k", res[rng.IntN(len(res))], costs()); err != nil && !errors.Is(err, srl.ErrInvalidLimit) {
						fail("cancel: %v", err)
					}
				}
			case 4:
				if err := b.SetLimits(ctx, "k", []srl.Limit{lim()}[:rng.IntN(2)]); err != nil && !errors.Is(err, srl.ErrInvalidLimit) {
					fail("set limits: %v", err)
				}
			default:
				s.Advance(time.Duration(rng.Int64N(int64(time.Hour))))
			}
			st, err := b.Status(ctx, "k")
			if err != nil && !errors.Is(err, srl.ErrUnknownKey) {
				fail("status: %v", err)
			}
			for _, l := range st.Limits {
				if math.IsNaN(l.Remaining) || l.Remaining < 0 || math.IsNaN(l.Reserved) {
					fail("status %+v remaining %v reserved %v", l, l.Remaining, l.Reserved)
				}
			}
			if s.Step != nil {
				s.Step()
			}
		}
		if s.End != nil {
			s.End()
		}
	}
}
