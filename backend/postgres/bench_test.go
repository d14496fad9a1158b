package postgres

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// The acquire benchmarks run against the same pool as BenchmarkSelect1,
// their baseline (the round-trip ceiling). Compare ops/s at equal
// goroutine counts.

var benchGoroutines = []int{1, 16, 64}

// runParallel runs f on g goroutines sharing b.N iterations.
func runParallel(b *testing.B, g int, f func(i int64) error) {
	b.ReportAllocs()
	var n atomic.Int64
	if g == 1 {
		for b.Loop() {
			if err := f(n.Add(1)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		return
	}
	b.SetParallelism(max(1, g/max(1, testingProcs())))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := f(n.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func BenchmarkSelect1(b *testing.B) {
	be, _, _ := newTest(b)
	ctx := context.Background()
	for _, g := range benchGoroutines {
		b.Run("goroutines="+strconv.Itoa(g), func(b *testing.B) {
			runParallel(b, g, func(int64) error {
				var one int
				return be.db.QueryRow(ctx, `SELECT 1`).Scan(&one)
			})
		})
	}
}

func benchAcquire(b *testing.B, keys int) {
	be, _, _ := newTest(b)
	ctx := context.Background()
	lim := []srl.Limit{srl.Every(1e15, time.Hour)} // never waits
	names := make([]string, keys)
	for i := range names {
		names[i] = "https://api" + strconv.Itoa(i) + ".example:443"
		if _, err := be.Acquire(ctx, srl.AcquireRequest{Key: names[i], Defaults: lim}); err != nil {
			b.Fatal(err)
		}
	}
	for _, g := range benchGoroutines {
		b.Run("goroutines="+strconv.Itoa(g), func(b *testing.B) {
			runParallel(b, g, func(i int64) error {
				r, err := be.Acquire(ctx, srl.AcquireRequest{Key: names[i%int64(keys)], Defaults: lim})
				if err == nil && (!r.OK || r.Wait != 0) {
					b.Fatalf("unexpected wait %+v", r)
				}
				return err
			})
		})
	}
}

func BenchmarkAcquireHotKey(b *testing.B)  { benchAcquire(b, 1) }
func BenchmarkAcquire100Keys(b *testing.B) { benchAcquire(b, 100) }

// testingProcs is GOMAXPROCS, which RunParallel multiplies by the parallelism.
func testingProcs() int { return runtime.GOMAXPROCS(0) }
