package postgres

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	srl "github.com/smartratelimit/smartratelimit"
)

// TestGarbageInput is the memory backend's: the backend driven with absurd
// values everywhere a caller of the Backend API can put them (NaN,
// infinities, huge and negative limits, costs, remaining counts, zero and
// negative windows, durations from MinInt64 to MaxInt64 as resets, blocks,
// max waits and send times) answers every call at once: an error is a
// typed refusal (ErrInvalidLimit, ErrCostExceedsLimit), never the
// database's (an overflow, a statement timeout), a grant never waits a
// negative time and Status never reports NaN or a negative count (float8
// arithmetic fails where Go's overflows to infinity or underflows to 0).
// 200 sequences of 40 calls on one key.
func TestGarbageInput(t *testing.T) {
	b, _, _ := newTest(t, withTestClock(), WithPoolSize(1), WithStatementTimeout(2*time.Second))
	ctx := ctxT(t)
	now := int64(1_800_000_000_000_000_000)
	floats := []float64{math.NaN(), math.Inf(1), math.Inf(-1), -1, 0, 1e-9, 1e-6, 0.5, 1, 3, 1e9, 1e300, -1e300, math.MaxFloat64, -math.MaxFloat64, math.MaxFloat64 / 2, 1e290, -1e290, 1e-300, math.SmallestNonzeroFloat64}
	durs := []time.Duration{math.MinInt64, -time.Hour, -1, 0, 1, time.Millisecond, time.Second, time.Hour, srl.MaxWindow, srl.MaxWindow + 1, math.MaxInt64}
	typed := func(err error) bool {
		return err == nil || errors.Is(err, srl.ErrInvalidLimit) || errors.Is(err, srl.ErrCostExceedsLimit)
	}
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 1))
		require := func(ok bool, format string, args ...any) {
			t.Helper()
			if !ok {
				for _, a := range args {
					var pe *pgconn.PgError
					if e, isErr := a.(error); isErr && errors.As(e, &pe) {
						t.Logf("where: %s", pe.Where)
					}
				}
				t.Fatalf("seed %d: "+format, append([]any{seed}, args...)...)
			}
		}
		require(b.ClearAll(ctx) == nil, "clear")
		setNow(t, b, now)
		f := func() float64 { return floats[rng.IntN(len(floats))] }
		d := func() time.Duration { return durs[rng.IntN(len(durs))] }
		lim := func() srl.Limit {
			return srl.Limit{Name: []string{"a", "b", ""}[rng.IntN(3)], Dimension: []srl.Dimension{"", srl.DimTokens}[rng.IntN(2)], Limit: f(), Window: d()}
		}
		var res []srl.Reservation
		for range 40 {
			switch rng.IntN(6) {
			case 0, 1:
				r, err := b.Acquire(ctx, srl.AcquireRequest{Key: "k", Defaults: []srl.Limit{lim(), srl.PerSecond(3)}[:1+rng.IntN(2)],
					Costs: []srl.Cost{{Dimension: srl.DimTokens, Amount: f()}}[:rng.IntN(2)], MaxWait: d()})
				require(typed(err), "acquire: %v", err)
				if r.OK {
					require(r.Wait >= 0, "negative wait %+v", r)
					res = append(res, r)
				}
			case 2:
				q := srl.QuotaUpdate{Limit: lim(), Remaining: f(), HasRemaining: rng.IntN(2) == 0, ResetIn: d(), HasReset: rng.IntN(2) == 0}
				u := srl.Update{Quotas: []srl.QuotaUpdate{q}, BlockFor: d(), SentSeq: rng.Uint64N(50), SentAgo: d()}
				err := b.Observe(ctx, "k", u)
				require(err == nil, "observe %+v: %v", u, err)
			case 3:
				if len(res) > 0 {
					err := b.Cancel(ctx, "k", res[rng.IntN(len(res))], []srl.Cost{{Dimension: srl.DimTokens, Amount: f()}}[:rng.IntN(2)])
					require(err == nil || errors.Is(err, srl.ErrInvalidLimit), "cancel: %v", err)
				}
			case 4:
				err := b.SetLimits(ctx, "k", []srl.Limit{lim()}[:rng.IntN(2)])
				require(err == nil || errors.Is(err, srl.ErrInvalidLimit), "set limits: %v", err)
			default:
				now += rng.Int64N(int64(time.Hour))
				setNow(t, b, now)
			}
			st, err := b.Status(ctx, "k")
			require(err == nil || errors.Is(err, srl.ErrUnknownKey), "status: %v", err)
			for _, l := range st.Limits {
				require(!math.IsNaN(l.Remaining) && l.Remaining >= 0 && !math.IsNaN(l.Reserved), "status %+v remaining %v reserved %v", l, l.Remaining, l.Reserved)
			}
		}
	}
}
