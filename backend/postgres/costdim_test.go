package postgres

import (
	"errors"
	"testing"
	"time"

	"github.com/smartratelimit/smartratelimit"
)

// A cost whose dimension PostgreSQL text cannot hold (a NUL byte, invalid
// UTF-8) is bad input, as such a limit name or dimension is: Acquire and
// Cancel reject it with ErrInvalidLimit before reaching the server, never
// as "backend unavailable".
func TestCostDimensionNotStorableIsInvalidLimit(t *testing.T) {
	b, _, _ := newTest(t)
	for _, dim := range []string{"tok\x00ens", "tok\xffens"} {
		costs := []smartratelimit.Cost{{Dimension: smartratelimit.Dimension(dim), Amount: 1}}
		r := req("https://cost.example:443", time.Hour, smartratelimit.PerSecond(10))
		r.Costs = costs
		_, err := b.Acquire(ctxT(t), r)
		if !errors.Is(err, smartratelimit.ErrInvalidLimit) || errors.Is(err, smartratelimit.ErrBackendUnavailable) {
			t.Errorf("Acquire, cost dimension %q: err = %v; want ErrInvalidLimit, not ErrBackendUnavailable", dim, err)
		}
		granted := smartratelimit.Reservation{OK: true, Seq: 1, At: 1}
		err = b.Cancel(ctxT(t), "https://cost.example:443", granted, costs)
		if !errors.Is(err, smartratelimit.ErrInvalidLimit) || errors.Is(err, smartratelimit.ErrBackendUnavailable) {
			t.Errorf("Cancel, cost dimension %q: err = %v; want ErrInvalidLimit, not ErrBackendUnavailable", dim, err)
		}
	}
}
