package memory_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/backend/memory"
	"github.com/smartratelimit/smartratelimit/internal/clock"
)

var (
	bg = context.Background()
	t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
)

// newFake returns a backend on a fake clock set to t0. Eviction is off
// unless opts turn it on, so long timelines keep their keys.
func newFake(t *testing.T, opts ...memory.Option) (*memory.Backend, *clock.Fake) {
	t.Helper()
	fc := clock.NewFake(t0)
	b, err := memory.New(append([]memory.Option{memory.WithClock(fc), memory.WithIdleTTL(0)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b, fc
}

func acquire(t *testing.T, b *memory.Backend, key string, maxWait time.Duration, defaults ...srl.Limit) srl.Reservation {
	t.Helper()
	r, err := b.Acquire(bg, srl.AcquireRequest{Key: key, Defaults: defaults, MaxWait: maxWait})
	require.NoError(t, err)
	return r
}

func status(t *testing.T, b *memory.Backend, key string) srl.Status {
	t.Helper()
	st, err := b.Status(bg, key)
	require.NoError(t, err)
	return st
}

// waits acquires n times with no bound on the wait and returns the waits.
func waits(t *testing.T, b *memory.Backend, key string, n int, defaults ...srl.Limit) []time.Duration {
	t.Helper()
	var got []time.Duration
	for range n {
		r := acquire(t, b, key, srl.Forever, defaults...)
		require.True(t, r.OK)
		got = append(got, r.Wait)
	}
	return got
}

func ms(v ...int) []time.Duration {
	d := make([]time.Duration, len(v))
	for i, x := range v {
		d[i] = time.Duration(x) * time.Millisecond
	}
	return d
}

func TestReservationsArePaced(t *testing.T) {
	b, fc := newFake(t)
	const key = "https://paced.example:443"
	lim := srl.PerSecond(4)

	// t=0: four at once, then paced slots of the next window (1s/4 apart),
	// then the window after.
	assert.Equal(t, ms(0, 0, 0, 0, 1000, 1250, 1500, 1750, 2000), waits(t, b, key, 9, lim))
	st := status(t, b, key)
	assert.Equal(t, uint64(9), st.Seq)
	require.Len(t, st.Limits, 1)
	assert.Equal(t, srl.SourceDefaults, st.Limits[0].Source)
	assert.Zero(t, st.Limits[0].Remaining)
	assert.Equal(t, 5.0, st.Limits[0].Reserved, "four in [1s,2s) and one in [2s,3s)")
	assert.Equal(t, t0.Add(time.Second), st.Limits[0].ResetAt)

	// Fail fast: the next slot is refused and nothing is reserved.
	r := acquire(t, b, key, 0, lim)
	assert.False(t, r.OK)
	assert.Equal(t, 2250*time.Millisecond, r.Wait)
	assert.True(t, r.Limit.Same(lim))
	r = acquire(t, b, key, 2250*time.Millisecond, lim)
	assert.True(t, r.OK, "a max wait equal to the wait is enough")
	assert.Equal(t, uint64(10), r.Seq)

	// t=1s: the window [1s,2s) is the current one and full.
	fc.Advance(time.Second)
	st = status(t, b, key)
	assert.Zero(t, st.Limits[0].Remaining)
	assert.Equal(t, 2.0, st.Limits[0].Reserved)
	assert.Equal(t, t0.Add(2*time.Second), st.Limits[0].ResetAt)
	assert.Equal(t, ms(1500), waits(t, b, key, 1, lim), "slot 2.5s")

	// t=3.5s: every reservation is in the past; a fresh window starts on the grid.
	fc.Advance(2500 * time.Millisecond)
	assert.Equal(t, ms(0, 0, 0, 0, 500), waits(t, b, key, 5, lim))
	st = status(t, b, key)
	assert.Equal(t, t0.Add(4*time.Second), st.Limits[0].ResetAt)
	assert.Equal(t, t0.Add(3500*time.Millisecond), st.LastUsed)
}

func TestCostsAndTokenLimits(t *testing.T) {
	b, _ := newFake(t)
	const key = "https://tokens.example:443"
	toks := srl.Limit{Name: "tokens", Dimension: srl.DimTokens, Limit: 100, Window: time.Minute}
	reqs := srl.PerMinute(1000)
	cost := func(n float64) []srl.Cost { return []srl.Cost{{Dimension: srl.DimTokens, Amount: n}} }
	acq := func(costs []srl.Cost, maxWait time.Duration) srl.Reservation {
		r, err := b.Acquire(bg, srl.AcquireRequest{Key: key, Defaults: []srl.Limit{reqs, toks}, Costs: costs, MaxWait: maxWait})
		require.NoError(t, err)
		return r
	}
	assert.Zero(t, acq(cost(60), 0).Wait)
	r := acq(cost(60), srl.Forever)
	assert.Equal(t, time.Minute, r.Wait, "40 tokens left, 60 needed: the next window")
	assert.True(t, r.Limit.Same(toks))
	r = acq(cost(30), srl.Forever)
	assert.Equal(t, time.Minute+36*time.Second, r.Wait, "paced after 60 of 100 tokens")
	r = acq(nil, srl.Forever)
	assert.Equal(t, time.Minute+54*time.Second, r.Wait, "no token cost still waits for its slot")
	_, err := b.Acquire(bg, srl.AcquireRequest{Key: key, Defaults: []srl.Limit{reqs, toks}, Costs: cost(101), MaxWait: srl.Forever})
	assert.ErrorIs(t, err, srl.ErrCostExceedsLimit)
}

func TestDefaultsAllEnforced(t *testing.T) {
	b, fc := newFake(t)
	const key = "https://three-limits.example:443"
	perSec, perMin, perHour := srl.PerSecond(2), srl.PerMinute(5), srl.PerHour(7)
	defs := []srl.Limit{perSec, perMin, perHour}
	type step struct {
		at       time.Duration // since t0
		ok       bool
		wait     time.Duration
		decision string // Name of the binding limit, "" when none
	}
	steps := []step{
		{0, true, 0, ""},
		{0, true, 0, ""},
		{0, false, time.Second, "1s"},
		{time.Second, true, 0, ""},
		{time.Second, true, 0, ""},
		{time.Second, false, time.Second, "1s"},
		{2 * time.Second, true, 0, ""},
		{2 * time.Second, false, 58 * time.Second, "1m0s"},
		{time.Minute, true, 0, ""},
		{time.Minute, true, 0, ""},
		{time.Minute, false, time.Hour - time.Minute, "1h0m0s"},
	}
	for i, s := range steps {
		fc.Set(t0.Add(s.at))
		r := acquire(t, b, key, 0, defs...)
		assert.Equal(t, s.ok, r.OK, "step %d", i)
		assert.Equal(t, s.wait, r.Wait, "step %d", i)
		assert.Equal(t, s.decision, r.Limit.Name, "step %d", i)
	}
	st := status(t, b, key)
	require.Len(t, st.Limits, 3)
	want := map[string]float64{"1s": 0, "1m0s": 3, "1h0m0s": 0}
	for _, l := range st.Limits {
		assert.Equal(t, srl.SourceDefaults, l.Source)
		assert.Equal(t, want[l.Name], l.Remaining, l.Name)
	}

	// Waiting: the first slot of the next hour, then the hour's pacing
	// (1h/7) decides over the minute's (12s) and the second's (500ms).
	got := waits(t, b, key, 2, defs...)
	assert.Equal(t, []time.Duration{time.Hour - time.Minute, time.Hour - time.Minute + time.Hour/7}, got)
}

func TestChangedDefaultsRestartTheWindows(t *testing.T) {
	b, _ := newFake(t)
	const key = "https://defaults-change.example:443"
	assert.True(t, acquire(t, b, key, 0, srl.PerMinute(1)).OK)
	assert.False(t, acquire(t, b, key, 0, srl.PerMinute(1)).OK)
	// Other defaults are other limits: their windows start now.
	assert.True(t, acquire(t, b, key, 0, srl.PerMinute(2)).OK)
	st := status(t, b, key)
	require.Len(t, st.Limits, 1)
	assert.Equal(t, 2.0, st.Limits[0].Limit.Limit)
	assert.Equal(t, 1.0, st.Limits[0].Remaining)
}

func TestInvalidDefaults(t *testing.T) {
	b, _ := newFake(t)
	const key = "https://invalid.example:443"
	_, err := b.Acquire(bg, srl.AcquireRequest{Key: key, Defaults: []srl.Limit{{Limit: 0, Window: time.Second}}})
	assert.ErrorIs(t, err, srl.ErrInvalidLimit)
	_, err = b.Status(bg, key)
	assert.ErrorIs(t, err, srl.ErrUnknownKey, "a refused request creates no key")
}

func TestReconcileWithSentSeq(t *testing.T) {
	b, fc := newFake(t)
	const key = "https://reconcile.example:443"
	server := srl.Limit{Name: "core", Dimension: srl.DimRequests, Limit: 10, Window: time.Minute}
	quota := func(remaining float64, resetIn time.Duration) srl.QuotaUpdate {
		return srl.QuotaUpdate{Limit: server, Remaining: remaining, HasRemaining: true, ResetIn: resetIn, HasReset: true}
	}
	observe := func(sentSeq uint64, q srl.QuotaUpdate) {
		t.Helper()
		require.NoError(t, b.Observe(bg, key, srl.Update{Quotas: []srl.QuotaUpdate{q}, SentSeq: sentSeq}))
	}
	remaining := func() float64 {
		t.Helper()
		st := status(t, b, key)
		require.Len(t, st.Limits, 1)
		assert.Equal(t, srl.SourceHeaders, st.Limits[0].Source)
		return st.Limits[0].Remaining
	}
	def := srl.PerSecond(100)

	a := acquire(t, b, key, 0, def)
	observe(a.Seq, quota(9, time.Minute))
	assert.Equal(t, 9.0, remaining(), "learned limits replace the defaults")

	// Three more requests go; the response to the first of them counted
	// only itself: the two granted after it was sent are still subtracted.
	fc.Advance(time.Second)
	r1 := acquire(t, b, key, 0, def)
	acquire(t, b, key, 0, def)
	r3 := acquire(t, b, key, 0, def)
	observe(r1.Seq, quota(8, 59*time.Second))
	assert.Equal(t, 6.0, remaining())
	// The response to the last one counted them all and one request of
	// another client.
	observe(r3.Seq, quota(5, 59*time.Second))
	assert.Equal(t, 5.0, remaining())
	// A sequence from the future (another backend's, or garbage) counts no
	// grants since, and the count never goes back up.
	observe(r3.Seq+100, quota(9, 59*time.Second))
	assert.Equal(t, 5.0, remaining())
	observe(0, quota(4, 59*time.Second))
	assert.Equal(t, 4.0, remaining())

	// The server's window ends 30s earlier than the local one: the local
	// window aligns with it, so the exhausted key waits for the server's end.
	fc.Advance(9 * time.Second)
	observe(0, quota(0, 20*time.Second))
	r := acquire(t, b, key, 0, def)
	assert.False(t, r.OK)
	assert.Equal(t, 20*time.Second, r.Wait)
	assert.True(t, r.Limit.Same(server))
	st := status(t, b, key)
	assert.Equal(t, fc.Now().Add(20*time.Second), st.Limits[0].ResetAt)

	// The new window starts full of room, then the server's count applies.
	fc.Advance(20 * time.Second)
	assert.Equal(t, 10.0, remaining())
	observe(0, quota(7, time.Minute))
	assert.Equal(t, 7.0, remaining())
}

func TestBlockThenPacedResumption(t *testing.T) {
	b, fc := newFake(t)
	const key = "https://blocked.example:443"
	lim := srl.PerSecond(4)
	require.True(t, acquire(t, b, key, 0, lim).OK)

	require.NoError(t, b.Observe(bg, key, srl.Update{BlockFor: 2 * time.Second}))
	r := acquire(t, b, key, 0, lim)
	assert.False(t, r.OK)
	assert.True(t, r.Blocked, "the block decides the wait")
	assert.Zero(t, r.Limit, "no limit decided")
	assert.Equal(t, 2*time.Second, r.Wait)
	assert.Equal(t, t0.Add(2*time.Second), status(t, b, key).BlockedUntil)

	// A shorter block does not shorten the longer one.
	require.NoError(t, b.Observe(bg, key, srl.Update{BlockFor: time.Second}))
	assert.Equal(t, t0.Add(2*time.Second), status(t, b, key).BlockedUntil)

	// Waiters resume from the block's end, paced, never all at once.
	assert.Equal(t, ms(2000, 2250, 2500, 2750, 3000), waits(t, b, key, 5, lim))
	other := acquire(t, b, key+"/other", 0, lim)
	assert.True(t, other.OK, "other keys are not blocked")

	fc.Advance(2 * time.Second)
	st := status(t, b, key)
	assert.True(t, st.BlockedUntil.IsZero(), "the block is over")
	assert.Equal(t, ms(1250), waits(t, b, key, 1, lim))
}

func TestBlockAppliesToLearnedLimits(t *testing.T) {
	b, _ := newFake(t)
	const key = "https://blocked-learned.example:443"
	server := srl.Limit{Name: "q", Limit: 60, Window: time.Minute}
	require.NoError(t, b.Observe(bg, key, srl.Update{
		Quotas:   []srl.QuotaUpdate{{Limit: server, Remaining: 60, HasRemaining: true, ResetIn: time.Minute, HasReset: true}},
		BlockFor: 10 * time.Second,
	}))
	assert.Equal(t, ms(10_000, 11_000, 12_000), waits(t, b, key, 3))
}

func TestEvictIdle(t *testing.T) {
	const ttl = time.Minute // the janitor runs every 30s
	b, fc := newFake(t, memory.WithIdleTTL(ttl))
	lim := srl.PerHour(1)
	idle, blocked, reserved := "https://idle.example:443", "https://blocked-evict.example:443", "https://reserved.example:443"

	// jump moves the fake clock to t0+to while the janitor sleeps and waits
	// until it sleeps again, so each jump past a tick is exactly one janitor
	// run at a known instant.
	jump := func(to time.Duration) {
		t.Helper()
		require.True(t, fc.WaitForTimers(1, 5*time.Second), "the janitor is asleep")
		fc.Set(t0.Add(to))
		require.True(t, fc.WaitForTimers(1, 5*time.Second), "the janitor went back to sleep")
	}

	jump(10 * time.Second) // before the first tick (30s)
	acquire(t, b, idle, 0, lim)
	acquire(t, b, blocked, 0, lim)
	require.NoError(t, b.Observe(bg, blocked, srl.Update{BlockFor: 10 * time.Minute}))
	acquire(t, b, reserved, 0, lim)
	r := acquire(t, b, reserved, srl.Forever, lim)
	require.Equal(t, time.Hour, r.Wait, "reserved the first slot of the next hour")
	require.Equal(t, 3, b.Len())

	jump(30 * time.Second) // tick: idle for 20s
	jump(60 * time.Second) // tick: idle for 50s
	assert.Equal(t, 3, b.Len(), "nothing idle for longer than the TTL yet")

	// Between ticks (the next is at 90s): idle for 70.5s.
	jump(80500 * time.Millisecond)
	assert.Equal(t, 1, b.EvictIdle(), "only the plain idle key goes")
	assert.Equal(t, 0, b.EvictIdle())
	_, err := b.Status(bg, idle)
	assert.ErrorIs(t, err, srl.ErrUnknownKey)
	assert.Equal(t, []string{blocked, reserved}, keysOf(t, b))

	// The janitor: at 10m the block (until 10m10s) still keeps its key; at
	// the next tick it is over.
	jump(10 * time.Minute)
	assert.Equal(t, []string{blocked, reserved}, keysOf(t, b), "a blocked key is kept")
	jump(10*time.Minute + 30*time.Second)
	assert.Equal(t, []string{reserved}, keysOf(t, b), "the block is over and the key idle")

	// The reservation at 1h10s keeps its key until it is in the past.
	jump(time.Hour)
	assert.Equal(t, []string{reserved}, keysOf(t, b), "a key with a future reservation is kept")
	jump(time.Hour + 30*time.Second)
	assert.Empty(t, keysOf(t, b))

	// A used key is not idle; idle for exactly the TTL is not longer than it.
	acquire(t, b, idle, 0, lim)      // at 1h0m30s
	jump(time.Hour + time.Minute)    // idle for 30s
	jump(time.Hour + 90*time.Second) // idle for exactly 1m
	assert.Equal(t, []string{idle}, keysOf(t, b))
	jump(time.Hour + 2*time.Minute) // idle for 90s
	assert.Empty(t, keysOf(t, b))
}

func keysOf(t *testing.T, b *memory.Backend) []string {
	t.Helper()
	keys, err := b.Keys(bg)
	require.NoError(t, err)
	return keys
}

func TestEvictIdleDisabled(t *testing.T) {
	b, fc := newFake(t) // WithIdleTTL(0)
	acquire(t, b, "https://kept.example:443", 0, srl.PerSecond(1))
	fc.Advance(24 * time.Hour)
	assert.Zero(t, b.EvictIdle())
	assert.Equal(t, 1, b.Len())
	assert.Zero(t, fc.Timers(), "no janitor")
}

// settledGoroutines returns the goroutine count once goroutines of earlier
// tests (janitors closed by their cleanups) have finished exiting.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for range 100 {
		time.Sleep(5 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			return n
		}
		n = m
	}
	return n
}

func TestCloseStopsTheJanitor(t *testing.T) {
	base := settledGoroutines()
	var backends []*memory.Backend
	for range 10 {
		fc := clock.NewFake(t0)
		b, err := memory.New(memory.WithClock(fc), memory.WithIdleTTL(time.Minute))
		require.NoError(t, err)
		require.True(t, fc.WaitForTimers(1, 5*time.Second), "the janitor started")
		backends = append(backends, b)
	}
	onReal, err := memory.New(memory.WithIdleTTL(time.Hour)) // and one on the real clock
	require.NoError(t, err)
	backends = append(backends, onReal)
	assert.GreaterOrEqual(t, runtime.NumGoroutine(), base+11)

	for _, b := range backends {
		require.NoError(t, b.Close())
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), base, "every janitor stopped")

	_, err = backends[0].Acquire(bg, srl.AcquireRequest{Key: "k"})
	assert.ErrorIs(t, err, srl.ErrClosed)
	assert.Zero(t, backends[0].Len(), "Close forgets the keys")
}

func TestOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opt  memory.Option
	}{
		{"negative idle TTL", memory.WithIdleTTL(-time.Second)},
		{"nil clock", memory.WithClock(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := memory.New(tt.opt)
			assert.ErrorIs(t, err, srl.ErrInvalidLimit)
			assert.Nil(t, b)
		})
	}
	b, err := memory.New(memory.WithLogger(nil), memory.WithIdleTTL(0))
	require.NoError(t, err, "a nil logger keeps the default")
	require.NoError(t, b.Close())
}
