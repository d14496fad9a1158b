package memory_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/time/rate"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/backend/memory"
)

// hugePerHour is a limit no benchmark reaches: every Acquire goes at once,
// so the benchmarks measure the bookkeeping, not waiting.
var hugePerHour = srl.PerHour(1e12)

// newBenchBackend returns a backend on the real clock with eviction off.
func newBenchBackend(b *testing.B) *memory.Backend {
	b.Helper()
	m, err := memory.New(memory.WithIdleTTL(0))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	return m
}

// BenchmarkAcquireHotKey acquires one key over and over; its baseline is
// BenchmarkXRateHotKey.
func BenchmarkAcquireHotKey(b *testing.B) {
	m := newBenchBackend(b)
	ctx := context.Background()
	req := srl.AcquireRequest{Key: "https://api.example.com:443", Defaults: []srl.Limit{hugePerHour}}
	b.ReportAllocs()
	for b.Loop() {
		r, err := m.Acquire(ctx, req)
		if err != nil || !r.OK {
			b.Fatalf("Acquire = %+v, %v", r, err)
		}
	}
}

// BenchmarkXRateHotKey is the baseline of BenchmarkAcquireHotKey: one
// x/time/rate limiter with a finite but huge rate (rate.Inf would skip the
// token arithmetic), reserving one token per call on the real clock.
func BenchmarkXRateHotKey(b *testing.B) {
	l := rate.NewLimiter(rate.Limit(1e12/3600), 1<<30)
	b.ReportAllocs()
	for b.Loop() {
		if !l.Allow() {
			b.Fatal("Allow = false")
		}
	}
}

const parallelKeys = 10_000

func benchKeys() []string {
	keys := make([]string, parallelKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("https://host-%06d.example.com:443", i)
	}
	return keys
}

// BenchmarkAcquireParallel10kKeys acquires 10,000 pre-created keys from
// every P at once; its baselines are BenchmarkXRateMutexMap10kKeys and
// BenchmarkXRateSyncMap10kKeys.
func BenchmarkAcquireParallel10kKeys(b *testing.B) {
	m := newBenchBackend(b)
	ctx := context.Background()
	keys := benchKeys()
	defaults := []srl.Limit{hugePerHour}
	for _, k := range keys {
		if _, err := m.Acquire(ctx, srl.AcquireRequest{Key: k, Defaults: defaults}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i = (i + 7919) % parallelKeys
			r, err := m.Acquire(ctx, srl.AcquireRequest{Key: keys[i], Defaults: defaults})
			if err != nil || !r.OK {
				b.Errorf("Acquire = %+v, %v", r, err)
				return
			}
		}
	})
}

// BenchmarkXRateMutexMap10kKeys is the hand-rolled alternative: a map of
// x/time/rate limiters guarded by one mutex.
func BenchmarkXRateMutexMap10kKeys(b *testing.B) {
	keys := benchKeys()
	var mu sync.Mutex
	limiters := make(map[string]*rate.Limiter, len(keys))
	get := func(k string) *rate.Limiter {
		mu.Lock()
		defer mu.Unlock()
		l := limiters[k]
		if l == nil {
			l = rate.NewLimiter(rate.Limit(1e12/3600), 1<<30)
			limiters[k] = l
		}
		return l
	}
	for _, k := range keys {
		get(k)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i = (i + 7919) % parallelKeys
			if !get(keys[i]).Allow() {
				b.Error("Allow = false")
				return
			}
		}
	})
}

// BenchmarkXRateSyncMap10kKeys is the same alternative with a sync.Map.
func BenchmarkXRateSyncMap10kKeys(b *testing.B) {
	keys := benchKeys()
	var limiters sync.Map
	for _, k := range keys {
		limiters.Store(k, rate.NewLimiter(rate.Limit(1e12/3600), 1<<30))
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i = (i + 7919) % parallelKeys
			l, _ := limiters.Load(keys[i])
			if !l.(*rate.Limiter).Allow() {
				b.Error("Allow = false")
				return
			}
		}
	})
}

// BenchmarkMemoryPerKey tracks 1,000,000 keys shaped like the middleware's
// (scheme://host:port), each with the three usual default limits, and
// reports the heap they hold per key (key text included: the backend is
// what keeps it alive). It runs its body once, whatever b.N is.
func BenchmarkMemoryPerKey(b *testing.B) {
	const n = 1_000_000
	ctx := context.Background()
	defaults := []srl.Limit{srl.PerSecond(10), srl.PerMinute(300), srl.PerHour(10_000)}
	var perKey, keyText float64
	b.ReportAllocs()
	for b.Loop() {
		m := newBenchBackend(b)
		keyText = 0
		before := heapAlloc()
		for i := range n {
			key := fmt.Sprintf("https://host-%06d.example.com:443", i)
			keyText += float64(len(key))
			if _, err := m.Acquire(ctx, srl.AcquireRequest{Key: key, Defaults: defaults}); err != nil {
				b.Fatal(err)
			}
		}
		after := heapAlloc()
		if m.Len() != n {
			b.Fatalf("Len = %d, want %d", m.Len(), n)
		}
		perKey = float64(after-before) / n
		keyText /= n
		_ = m.Close()
	}
	b.ReportMetric(perKey, "bytes/key")
	b.ReportMetric(keyText, "keytext-bytes/key")
}

// heapAlloc returns the live heap after two collections.
func heapAlloc() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
