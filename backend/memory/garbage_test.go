package memory_test

import (
	"math/rand/v2"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/backend/backendtest"
)

// TestGarbageInput runs backendtest.Garbage on the fake clock, with a
// fresh backend per sequence, each update also given to ObserveAt dated up
// to an hour back (out of order), and idle keys evicted after every call.
// 2,000 sequences.
func TestGarbageInput(t *testing.T) {
	backendtest.Garbage(t, 2000, func(t *testing.T, _ uint64) backendtest.GarbageSequence {
		b, fc := newFake(t)
		return backendtest.GarbageSequence{
			Backend: b,
			Advance: fc.Advance,
			Observed: func(rng *rand.Rand, u srl.Update) error {
				return b.ObserveAt(bg, "k", u, fc.Now().Add(-time.Duration(rng.Int64N(int64(time.Hour)))))
			},
			Step: func() { b.EvictIdle() },
			End:  func() { b.Close() },
		}
	})
}
