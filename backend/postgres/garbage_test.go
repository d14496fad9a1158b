package postgres

import (
	"testing"
	"time"

	"github.com/smartratelimit/smartratelimit/backend/backendtest"
)

// TestGarbageInput runs backendtest.Garbage on the database: the SQL
// arithmetic must answer every call at once with a typed refusal at most,
// never the database's error (an overflow, a statement timeout), where
// float8 arithmetic fails but Go's overflows to infinity or underflows to
// 0. 200 sequences on one key, cleared between them, on a test clock.
func TestGarbageInput(t *testing.T) {
	b, _, _ := newTest(t, withTestClock(), WithPoolSize(1), WithStatementTimeout(2*time.Second))
	ctx := ctxT(t)
	now := int64(1_800_000_000_000_000_000)
	backendtest.Garbage(t, 200, func(t *testing.T, seed uint64) backendtest.GarbageSequence {
		if err := b.ClearAll(ctx); err != nil {
			t.Fatalf("seed %d: clear: %v", seed, err)
		}
		setNow(t, b, now)
		return backendtest.GarbageSequence{
			Backend: b,
			Advance: func(d time.Duration) {
				now += int64(d)
				setNow(t, b, now)
			},
		}
	})
}
