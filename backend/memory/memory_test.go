package memory_test

import (
	"context"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/backend/backendtest"
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

// The timelines below run on each limit's Span: a second is enforced as
// 1.021s (20ms + 1ms margin), a minute as 60.08s, an hour as 3603.62s.

func TestReservationsArePaced(t *testing.T) {
	b, fc := newFake(t)
	const key = "https://paced.example:443"
	lim := srl.PerSecond(4)
	span := time.Duration(lim.Span())
	require.Equal(t, 1021*time.Millisecond, span)
	step := span / 4 // 255.25ms

	// t=0: four at once, then paced slots of the next window (span/4 apart),
	// then the window after.
	assert.Equal(t, []time.Duration{0, 0, 0, 0, span, span + step, span + 2*step, span + 3*step, 2 * span}, waits(t, b, key, 9, lim))
	st := status(t, b, key)
	assert.Equal(t, uint64(9), st.Seq)
	require.Len(t, st.Limits, 1)
	assert.Equal(t, srl.SourceDefaults, st.Limits[0].Source)
	assert.Zero(t, st.Limits[0].Remaining)
	assert.Equal(t, 5.0, st.Limits[0].Reserved, "four in [span,2span) and one in [2span,3span)")
	assert.Equal(t, t0.Add(span), st.Limits[0].ResetAt)

	// Fail fast: the next slot is refused and nothing is reserved.
	r := acquire(t, b, key, 0, lim)
	assert.False(t, r.OK)
	assert.Equal(t, 2*span+step, r.Wait)
	assert.True(t, r.Limit.Same(lim))
	r = acquire(t, b, key, 2*span+step, lim)
	assert.True(t, r.OK, "a max wait equal to the wait is enough")
	assert.Equal(t, uint64(10), r.Seq)

	// t=1s is still in the first window (it lasts 1.021s): the two after
	// it are full, the third holds two.
	fc.Advance(time.Second)
	st = status(t, b, key)
	assert.Zero(t, st.Limits[0].Remaining)
	assert.Equal(t, 6.0, st.Limits[0].Reserved)
	assert.Equal(t, t0.Add(span), st.Limits[0].ResetAt)

	// t=span: the window [span,2span) is the current one and full.
	fc.Set(t0.Add(span))
	st = status(t, b, key)
	assert.Zero(t, st.Limits[0].Remaining)
	assert.Equal(t, 2.0, st.Limits[0].Reserved)
	assert.Equal(t, t0.Add(2*span), st.Limits[0].ResetAt)
	assert.Equal(t, []time.Duration{span + 2*step}, waits(t, b, key, 1, lim), "slot 2 of [2span,3span)")

	// t=span+2.5s=3.521s: every reservation is in the past; a fresh window
	// starts on the grid ([3span,4span) = [3.063s,4.084s)). The defaults'
	// phase is the limiter's own, so the units of the window before count
	// while they are within a span: of the three at 2span, 2span+step and
	// 2span+2step, the last is until 3span+2step = 3.5735s. Three go at
	// once, the fourth when that one leaves, the fifth when the three
	// granted now leave (4.542s): never five within a span.
	fc.Advance(2500 * time.Millisecond)
	now := span + 2500*time.Millisecond
	got := waits(t, b, key, 5, lim)
	assert.Equal(t, []time.Duration{0, 0, 0, 3*span + 2*step - now}, got[:4])
	assert.GreaterOrEqual(t, got[4], span, "the fifth waits until the three granted now leave")
	assert.Less(t, got[4], span+time.Millisecond)
	st = status(t, b, key)
	assert.Equal(t, t0.Add(4*span), st.Limits[0].ResetAt)
	assert.Equal(t, t0.Add(span+2500*time.Millisecond), st.LastUsed)
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
	span := time.Duration(toks.Span()) // 60.08s
	assert.Zero(t, acq(cost(60), 0).Wait)
	r := acq(cost(60), srl.Forever)
	assert.Equal(t, span, r.Wait, "40 tokens left, 60 needed: the next window")
	assert.True(t, r.Limit.Same(toks))
	r = acq(cost(30), srl.Forever)
	assert.Equal(t, span+span*6/10, r.Wait, "paced after 60 of 100 tokens")
	r = acq(nil, srl.Forever)
	assert.Equal(t, span+span*9/10, r.Wait, "no token cost still waits for its slot")
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
	// Window spans: 1.021s, 60.08s, 3603.62s.
	s1, m1, h1 := time.Duration(perSec.Span()), time.Duration(perMin.Span()), time.Duration(perHour.Span())
	// The defaults' phase is the limiter's own: besides each window's
	// limit, the units of the window before count while they are within a
	// span. The bursts below come at a window's start (the second's) or
	// early in it (the minute's), so they leave early too.
	lastOff := 2 * s1 // the minute's latest unit before m1, as the minute window knows it:
	lastOff = time.Duration(math.Ceil(math.Ceil(float64(lastOff)/float64(m1)*65535) / 65535 * float64(m1)))
	steps := []step{
		{0, true, 0, ""},
		{0, true, 0, ""},
		{0, false, s1, "1s"},
		{s1, true, 0, ""},
		{s1, true, 0, ""},
		{s1, false, s1, "1s"},
		{2 * s1, true, 0, ""},
		{2 * s1, false, m1 - 2*s1, "1m0s"},
		{m1, true, 0, ""},
		// Within a minute of m1 are the units at s1, s1 and 2s1 (not those
		// at 0): with the one at m1, at most one more until 2s1 has left.
		{m1, false, lastOff, "1m0s"},
		{m1 + lastOff, true, 0, ""},
		{m1 + lastOff, false, h1 - m1 - lastOff, "1h0m0s"},
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
	want := map[string]float64{"1s": 1, "1m0s": 3, "1h0m0s": 0}
	for _, l := range st.Limits {
		assert.Equal(t, srl.SourceDefaults, l.Source)
		assert.Equal(t, want[l.Name], l.Remaining, l.Name)
	}

	// Waiting: the first slot of the next hour (h1), then the hour's
	// pacing (h1/7) decides over the minute's and the second's.
	got := waits(t, b, key, 2, defs...)
	assert.Equal(t, h1-m1-lastOff, got[0])
	assert.Equal(t, h1+h1/7-m1-lastOff, got[1])
}

func TestChangedDefaultsKeepSameNamedWindows(t *testing.T) {
	b, _ := newFake(t)
	const key = "https://defaults-change.example:443"
	assert.True(t, acquire(t, b, key, 0, srl.PerMinute(1)).OK)
	assert.False(t, acquire(t, b, key, 0, srl.PerMinute(1)).OK)
	// A default with the same name ("1m0s") keeps its window and count:
	// one of two used.
	assert.True(t, acquire(t, b, key, 0, srl.PerMinute(2)).OK)
	st := status(t, b, key)
	require.Len(t, st.Limits, 1)
	assert.Equal(t, 2.0, st.Limits[0].Limit.Limit)
	assert.Equal(t, 0.0, st.Limits[0].Remaining)
	// A default with another name is another limit: its window starts now.
	assert.True(t, acquire(t, b, key, 0, srl.Every(1, 30*time.Second)).OK)
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
	// window aligns with it, so the exhausted key waits for the server's
	// end (the latest it may be: its reset may be rounded down by up to
	// ResetSlack).
	fc.Advance(9 * time.Second)
	observe(0, quota(0, 20*time.Second))
	r := acquire(t, b, key, 0, def)
	assert.False(t, r.OK)
	assert.Equal(t, 20*time.Second+srl.ResetSlack, r.Wait)
	assert.True(t, r.Limit.Same(server))
	st := status(t, b, key)
	assert.Equal(t, fc.Now().Add(20*time.Second+srl.ResetSlack), st.Limits[0].ResetAt)

	// The new window starts full of room, then the server's count applies.
	fc.Advance(20*time.Second + srl.ResetSlack)
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

	// Waiters resume from the block's end, paced (span/4 = 252.75ms apart),
	// never all at once; the fifth goes to the next window, one span on.
	span := time.Duration(lim.Span())
	step := span / 4
	assert.Equal(t, []time.Duration{2 * time.Second, 2*time.Second + step, 2*time.Second + 2*step, 2*time.Second + 3*step, 2*time.Second + span}, waits(t, b, key, 5, lim))
	other := acquire(t, b, key+"/other", 0, lim)
	assert.True(t, other.OK, "other keys are not blocked")

	fc.Advance(2 * time.Second)
	st := status(t, b, key)
	assert.True(t, st.BlockedUntil.IsZero(), "the block is over")
	assert.Equal(t, []time.Duration{span + step}, waits(t, b, key, 1, lim), "slot 1 of [2s+span, 2s+2span)")
}

func TestBlockAppliesToLearnedLimits(t *testing.T) {
	b, _ := newFake(t)
	const key = "https://blocked-learned.example:443"
	server := srl.Limit{Name: "q", Limit: 60, Window: time.Minute}
	require.NoError(t, b.Observe(bg, key, srl.Update{
		Quotas:   []srl.QuotaUpdate{{Limit: server, Remaining: 60, HasRemaining: true, ResetIn: time.Minute, HasReset: true}},
		BlockFor: 10 * time.Second,
	}))
	// Paced from the block's end, Span/60 apart: the window restarted at
	// the block's end is unaligned (a Retry-After is no window's end), and
	// an unaligned window lasts the Span (60.08s).
	assert.Equal(t, []time.Duration{10 * time.Second, 11*time.Second + 1333333, 12*time.Second + 2666666}, waits(t, b, key, 3))
}

func TestEvictIdle(t *testing.T) {
	const ttl = time.Minute // the janitor runs every 30s
	b, fc := newFake(t, memory.WithIdleTTL(ttl))
	lim := srl.PerHour(1)
	short := srl.PerSecond(1) // its window is over a second after use
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
	acquire(t, b, idle, 0, short)
	acquire(t, b, blocked, 0, short)
	require.NoError(t, b.Observe(bg, blocked, srl.Update{BlockFor: 10 * time.Minute}))
	acquire(t, b, reserved, 0, lim)
	r := acquire(t, b, reserved, srl.Forever, lim)
	require.Equal(t, time.Duration(lim.Span()), r.Wait, "reserved the first slot of the next hour (3603.62s on)")
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

	// The reservation at 1h0m13.61s keeps its key until it is in the past,
	// and the window holding it (until 2h0m17.22s) until that is over too:
	// forgetting it earlier would allow a second request in that hour.
	jump(time.Hour)
	assert.Equal(t, []string{reserved}, keysOf(t, b), "a key with a future reservation is kept")
	jump(time.Hour + 30*time.Second)
	assert.Equal(t, []string{reserved}, keysOf(t, b), "its window is not over")
	jump(2*time.Hour + 30*time.Second)
	assert.Empty(t, keysOf(t, b))

	// A used key is not idle; idle for exactly the TTL is not longer than it.
	acquire(t, b, idle, 0, short)      // at 2h0m30s
	jump(2*time.Hour + time.Minute)    // idle for 30s
	jump(2*time.Hour + 90*time.Second) // idle for exactly 1m
	assert.Equal(t, []string{idle}, keysOf(t, b))
	jump(2*time.Hour + 2*time.Minute) // idle for 90s
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
	_, err := memory.New(memory.WithLogger(nil))
	assert.ErrorIs(t, err, srl.ErrInvalidLimit, "a nil logger is an error, like every other nil option")
}

// grantsAt acquires n times with no bound on the wait and returns the
// granted instants.
func grantsAt(t *testing.T, b *memory.Backend, fc *clock.Fake, key string, n int, defaults ...srl.Limit) []time.Time {
	t.Helper()
	var at []time.Time
	for _, w := range waits(t, b, key, n, defaults...) {
		at = append(at, fc.Now().Add(w))
	}
	return at
}

// TestBlockKeepsReservations is the case from review: a block ending
// inside a window that already holds reservations used to restart that
// window and forget them, letting 13 requests into [70s, 130s).
func TestBlockKeepsReservations(t *testing.T) {
	b, fc := newFake(t)
	const key = "https://block-reserved.example:443"
	lim := srl.PerMinute(10)
	span := time.Duration(lim.Span()) // 60.08s
	step := span / 10                 // 6.007s
	grants := grantsAt(t, b, fc, key, 15, lim)
	for i := range 5 {
		require.Equal(t, t0.Add(span+time.Duration(i)*step), grants[10+i], "reserved slot %d", i)
	}
	require.NoError(t, b.Observe(bg, key, srl.Update{BlockFor: 70 * time.Second}))
	more := grantsAt(t, b, fc, key, 15, lim)
	// The window [span, 2span) keeps its five: the next slot is its sixth.
	assert.Equal(t, t0.Add(span+5*step), more[0])
	assert.Equal(t, t0.Add(2*span), more[5], "then the window after")
	grants = append(grants, more...)
	blockEnd := t0.Add(70 * time.Second)
	assert.Equal(t, 10, backendtest.MostIn(grants, blockEnd, time.Minute), "no minute from the block's end on holds more than 10")
	assert.LessOrEqual(t, backendtest.MostIn(grants, t0, time.Minute), 10)
}

// TestReportsSentBeforeTheWindowAreIgnored: a response to a request sent
// in an earlier window reports that window's count, not the current one's.
func TestReportsSentBeforeTheWindowAreIgnored(t *testing.T) {
	b, fc := newFake(t)
	const key = "https://sent-ago.example:443"
	server := srl.Limit{Name: "core", Limit: 10, Window: time.Minute}
	span := time.Duration(server.Span())
	quota := func(remaining float64, resetIn time.Duration) []srl.QuotaUpdate {
		return []srl.QuotaUpdate{{Limit: server, Remaining: remaining, HasRemaining: true, ResetIn: resetIn, HasReset: true}}
	}
	remaining := func() float64 {
		t.Helper()
		st := status(t, b, key)
		require.Len(t, st.Limits, 1)
		return st.Limits[0].Remaining
	}
	// Learned at t0: the local window is [t0, t0+1m) (a reset beyond the
	// window ends it a window from now).
	require.NoError(t, b.Observe(bg, key, srl.Update{Quotas: quota(10, span)}))
	assert.Equal(t, 10.0, remaining())

	// At span+5s: a response to a request sent 10s ago (in the previous
	// window) reporting that window exhausted (its reset has come) lowers
	// nothing; sent 5s ago, about the current window, it does.
	fc.Set(t0.Add(span + 5*time.Second))
	require.NoError(t, b.Observe(bg, key, srl.Update{Quotas: quota(0, 0), SentAgo: 10 * time.Second}))
	assert.Equal(t, 10.0, remaining(), "sent before the window began")
	require.NoError(t, b.Observe(bg, key, srl.Update{Quotas: quota(8, span-5*time.Second), SentAgo: 5 * time.Second}))
	assert.Equal(t, 8.0, remaining(), "sent when the window began")
	require.NoError(t, b.Observe(bg, key, srl.Update{Quotas: quota(6, span-5*time.Second)}))
	assert.Equal(t, 6.0, remaining(), "send time unknown: applies")
	// A stale request's report of a later server window still applies.
	// Its round trip of 10s is too long to align with (the server's window
	// ends 58s to 60s from now), so the count applies to the local window.
	require.NoError(t, b.Observe(bg, key, srl.Update{Quotas: quota(3, 59*time.Second), SentAgo: 10 * time.Second}))
	st := status(t, b, key)
	assert.Equal(t, t0.Add(2*time.Minute), st.Limits[0].ResetAt, "the local phase stays")
	assert.Equal(t, 3.0, st.Limits[0].Remaining, "the server's later window")
	assert.Equal(t, 0.0, st.Limits[0].Reserved)
}

// TestGrantsSinceCountAtMostTheWindow: of the grants after the reported
// request, only those in the latest window can be in the server's count.
func TestGrantsSinceCountAtMostTheWindow(t *testing.T) {
	b, fc := newFake(t)
	const key = "https://granted-since.example:443"
	server := srl.Limit{Name: "core", Limit: 10, Window: time.Minute}
	span := time.Duration(server.Span())
	q := func(remaining float64, resetIn time.Duration) []srl.QuotaUpdate {
		return []srl.QuotaUpdate{{Limit: server, Remaining: remaining, HasRemaining: true, ResetIn: resetIn, HasReset: true}}
	}
	first := acquire(t, b, key, 0, srl.PerMinute(1000))
	require.NoError(t, b.Observe(bg, key, srl.Update{Quotas: q(10, span), SentSeq: first.Seq}))
	for range 5 {
		require.True(t, acquire(t, b, key, 0, srl.PerMinute(1000)).OK)
	}
	// Next window: two grants in it; the report answers the first request,
	// seven grants ago, but only the two of this window can be counted.
	fc.Set(t0.Add(span))
	for range 2 {
		require.True(t, acquire(t, b, key, 0, srl.PerMinute(1000)).OK)
	}
	require.NoError(t, b.Observe(bg, key, srl.Update{Quotas: q(9, span), SentSeq: first.Seq}))
	st := status(t, b, key)
	assert.Equal(t, 10.0-1-2, st.Limits[0].Remaining, "1 reported + min(7 since, 2 in the window)")
}

// TestLearnedLimitInheritsTheDefaultsWindow: slots booked under the
// defaults stay counted when a learned limit with the same window takes
// over, also for every limit one update teaches.
func TestLearnedLimitInheritsTheDefaultsWindow(t *testing.T) {
	b, fc := newFake(t)
	const key = "https://inherit.example:443"
	perMin, perSec := srl.PerMinute(10), srl.PerSecond(100)
	span := time.Duration(perMin.Span())
	step := span / 10
	grants := grantsAt(t, b, fc, key, 15, perSec, perMin)
	require.Equal(t, t0.Add(span+4*step), grants[14])

	// Both server limits arrive in one update without a reset: the second
	// (the minute) inherits the default minute's window too.
	require.NoError(t, b.Observe(bg, key, srl.Update{Quotas: []srl.QuotaUpdate{
		{Limit: srl.Limit{Name: "s", Limit: 100, Window: time.Second}, Remaining: 99, HasRemaining: true},
		{Limit: srl.Limit{Name: "m", Limit: 10, Window: time.Minute}, Remaining: 9, HasRemaining: true},
	}}))
	st := status(t, b, key)
	require.Len(t, st.Limits, 2)
	assert.Equal(t, srl.SourceHeaders, st.Limits[1].Source)
	assert.Equal(t, 5.0, st.Limits[1].Reserved, "the five booked in [span, 2span)")
	more := grantsAt(t, b, fc, key, 6, perSec, perMin)
	assert.Equal(t, t0.Add(span+5*step), more[0], "after the booked slots")
	assert.Equal(t, t0.Add(2*span), more[5])
	assert.LessOrEqual(t, backendtest.MostIn(append(grants, more...), t0, time.Minute), 10)

	// A learned limit of another window starts on the server's window.
	k2 := key + "/other"
	acquire(t, b, k2, 0, perMin)
	require.NoError(t, b.Observe(bg, k2, srl.Update{Quotas: []srl.QuotaUpdate{
		{Limit: srl.Limit{Name: "h", Limit: 100, Window: time.Hour}, Remaining: 100, HasRemaining: true, ResetIn: time.Hour, HasReset: true},
	}}))
	st = status(t, b, k2)
	require.Len(t, st.Limits, 1)
	assert.Equal(t, 100.0, st.Limits[0].Remaining)
	assert.Equal(t, fc.Now().Add(time.Hour), st.Limits[0].ResetAt)
}

func TestEvictIdleKeepsOverrides(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	b, err := memory.New(memory.WithClock(clk), memory.WithIdleTTL(time.Minute))
	require.NoError(t, err)
	defer b.Close()
	ctx := context.Background()
	require.NoError(t, b.SetLimits(ctx, "override", []srl.Limit{srl.PerSecond(1)}))
	_, err = b.Acquire(ctx, srl.AcquireRequest{Key: "plain", Defaults: []srl.Limit{srl.PerSecond(1)}})
	require.NoError(t, err)
	// The janitor (every 30s of the fake clock) evicts, not the test: it
	// is let run once, between two of its sleeps, so the two cannot race.
	require.True(t, clk.WaitForTimers(1, 5*time.Second), "the janitor is asleep")
	clk.Advance(2 * time.Minute)
	require.True(t, clk.WaitForTimers(1, 5*time.Second), "the janitor went back to sleep")
	assert.Equal(t, 1, b.Len(), "the idle key was evicted")
	assert.Equal(t, 0, b.EvictIdle(), "nothing else is idle")
	keys, err := b.Keys(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"override"}, keys, "override limits are kept until SetLimits(nil) or Clear")
}

// An exhausted learned window outlives the idle TTL: evicting it would let
// the next requests burst past the server's limit.
func TestEvictIdleKeepsWindowsThatAreNotOver(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	b, err := memory.New(memory.WithClock(clk), memory.WithIdleTTL(10*time.Minute))
	require.NoError(t, err)
	defer b.Close()
	ctx := context.Background()
	hourly := srl.Limit{Name: "core", Limit: 100, Window: time.Hour}
	require.NoError(t, b.Observe(ctx, "exhausted", srl.Update{Quotas: []srl.QuotaUpdate{
		{Limit: hourly, Remaining: 0, HasRemaining: true, ResetIn: 50 * time.Minute, HasReset: true}}}))
	clk.Advance(11 * time.Minute)
	assert.Zero(t, b.EvictIdle(), "the window ends in 39 minutes")
	r, err := b.Acquire(ctx, srl.AcquireRequest{Key: "exhausted"})
	require.NoError(t, err)
	assert.False(t, r.OK, "still exhausted")
	// The janitor (every 5 minutes of the fake clock) may evict it first:
	// it is let run between two of its sleeps, then the test looks.
	require.True(t, clk.WaitForTimers(1, 5*time.Second), "the janitor is asleep")
	clk.Advance(50 * time.Minute)
	require.True(t, clk.WaitForTimers(1, 5*time.Second), "the janitor went back to sleep")
	b.EvictIdle()
	assert.Zero(t, b.Len(), "idle and every window over")
}

// Two limiters with different defaults on one backend keep limiting: the
// windows of same-named defaults carry over when the defaults change.
func TestChangingDefaultsKeepsSameNamedWindows(t *testing.T) {
	b, err := memory.New()
	require.NoError(t, err)
	defer b.Close()
	a, c := []srl.Limit{srl.Every(2, time.Hour)}, []srl.Limit{srl.Every(3, time.Hour)}
	granted := 0
	for i := range 10 {
		d := a
		if i%2 == 1 {
			d = c
		}
		r, err := b.Acquire(context.Background(), srl.AcquireRequest{Key: "k", Defaults: d})
		require.NoError(t, err)
		if r.OK {
			granted++
		}
	}
	assert.Equal(t, 3, granted, "at most the larger default per hour")
	_, err = memory.New(memory.WithLogger(nil))
	assert.ErrorIs(t, err, srl.ErrInvalidLimit)
}

// TestDefaultsSustainedRate: under sustained load the three usual defaults
// together allow close to the rate of the one that binds (300 a minute),
// the tails of their unaligned windows included, and never more than a
// limit in any interval of its window. (The tails' bounds are conservative
// when grants alternate between bursts and pacing: 3000 take 10m45s on
// this timeline, 93% of the binding rate. A single limit loses nothing.)
func TestDefaultsSustainedRate(t *testing.T) {
	b, fc := newFake(t)
	const key = "https://sustained.example:443"
	defs := []srl.Limit{srl.PerSecond(10), srl.PerMinute(300), srl.PerHour(10_000)}
	var last time.Duration
	var grants []time.Time
	for i := range 3000 {
		r := acquire(t, b, key, srl.Forever, defs...)
		require.True(t, r.OK)
		at := fc.Now().Add(r.Wait)
		if i%50 == 0 {
			fc.Set(at) // now and then time catches up with the slots
		}
		grants = append(grants, at)
		last = at.Sub(t0)
	}
	minute := time.Duration(srl.PerMinute(300).Span())
	// 3000 at 300 per minute: ten minutes (on the Span); at least 90% of
	// that rate.
	assert.Less(t, last, 10*minute*10/9, "3000 grants took %v", last)
	for _, d := range defs {
		assert.LessOrEqual(t, backendtest.MostIn(grants, t0, d.Window), int(d.Limit), d.Name)
	}
}

// TestObserveAt: an update dated by the caller's reading of the clock is
// the update Observe makes at that time, and a date before the key's last
// use counts as that use (the key's time line never runs backwards).
func TestObserveAt(t *testing.T) {
	b, fc := newFake(t)
	server := srl.Limit{Name: "core", Limit: 10, Window: time.Minute}
	u := func(remaining float64) srl.Update {
		return srl.Update{Quotas: []srl.QuotaUpdate{{Limit: server, Remaining: remaining, HasRemaining: true, ResetIn: time.Minute, HasReset: true}}}
	}

	// Observe at t0+5s and ObserveAt(t0+5s) with the clock elsewhere agree.
	fc.Set(t0.Add(5 * time.Second))
	require.NoError(t, b.Observe(bg, "a", u(7)))
	fc.Set(t0.Add(40 * time.Second))
	require.NoError(t, b.ObserveAt(bg, "b", u(7), t0.Add(5*time.Second)))
	sa, sb := status(t, b, "a"), status(t, b, "b")
	require.Len(t, sb.Limits, 1)
	assert.Equal(t, sa.Limits, sb.Limits)
	assert.Equal(t, sa.LastUsed, sb.LastUsed)
	assert.Equal(t, t0.Add(5*time.Second+time.Minute), sb.Limits[0].ResetAt)

	// A zero time reads the clock.
	require.NoError(t, b.ObserveAt(bg, "c", u(7), time.Time{}))
	assert.Equal(t, fc.Now(), status(t, b, "c").LastUsed)

	// Dated before the key's last use (an Acquire at t0+40s): applied at
	// that use, with every time the update gives where at put it.
	acquire(t, b, "d", 0)
	require.NoError(t, b.ObserveAt(bg, "d", u(3), t0.Add(time.Second)))
	sd := status(t, b, "d")
	assert.Equal(t, fc.Now(), sd.LastUsed, "the time line does not run back")
	assert.Equal(t, t0.Add(time.Second+time.Minute+srl.ResetSlack), sd.Limits[0].ResetAt, "reset a minute after at (and its slack)")
	assert.Equal(t, 3.0, sd.Limits[0].Remaining)
	blocked := u(3)
	blocked.BlockFor = 50 * time.Second
	require.NoError(t, b.ObserveAt(bg, "d", blocked, t0.Add(time.Second)))
	assert.Equal(t, t0.Add(51*time.Second), status(t, b, "d").BlockedUntil, "blocked 50s after at")
	blocked.BlockFor = 30 * time.Second // over at t0+31s, before the key's last use
	require.NoError(t, b.ObserveAt(bg, "e", u(3), fc.Now()))
	acquire(t, b, "e", 0)
	require.NoError(t, b.ObserveAt(bg, "e", blocked, t0.Add(time.Second)))
	assert.True(t, status(t, b, "e").BlockedUntil.IsZero(), "a block over before the key's last use blocks nothing")
	// SentAgo counts from at too. Learned at t0+2m: the window is
	// [t0+2m, t0+3m). At t0+3m20s the key is used (a new window from
	// t0+3m); then a report dated t0+3m05s of a request sent 10s before
	// (in the old window) lowers nothing. Counted from the last use, it
	// would seem sent at t0+3m10s and lower the count to 0.
	fc.Set(t0.Add(2 * time.Minute))
	require.NoError(t, b.Observe(bg, "f", u(10)))
	fc.Set(t0.Add(3*time.Minute + 20*time.Second))
	acquire(t, b, "f", 0)
	stale := u(0)
	stale.SentAgo = 10 * time.Second
	stale.Quotas[0].HasReset = false // (a reset would name the window itself)
	require.NoError(t, b.ObserveAt(bg, "f", stale, t0.Add(3*time.Minute+5*time.Second)))
	sf := status(t, b, "f")
	assert.Equal(t, 9.0, sf.Limits[0].Remaining, "a report sent in the previous window")

	// A block over before the key's last use restarts no window: what
	// was counted up to that use stays. Key "g" learns 5 left at
	// t0+3m20s, takes one at t0+3m21s, is told 4 left at t0+3m40s; a
	// block dated t0+3m25s for 5s (over at t0+3m30s) leaves 4.
	fc.Set(t0.Add(3*time.Minute + 20*time.Second))
	require.NoError(t, b.Observe(bg, "g", u(5)))
	fc.Set(t0.Add(3*time.Minute + 21*time.Second))
	acquire(t, b, "g", 0)
	fc.Set(t0.Add(3*time.Minute + 40*time.Second))
	fourLeft := u(4)
	fourLeft.Quotas[0].ResetIn = 40 * time.Second
	require.NoError(t, b.Observe(bg, "g", fourLeft))
	require.Equal(t, 4.0, status(t, b, "g").Limits[0].Remaining)
	require.NoError(t, b.ObserveAt(bg, "g", srl.Update{BlockFor: 5 * time.Second}, t0.Add(3*time.Minute+25*time.Second)))
	sg := status(t, b, "g")
	assert.Equal(t, 4.0, sg.Limits[0].Remaining, "a block over before the last use")
	assert.True(t, sg.BlockedUntil.IsZero())

	require.NoError(t, b.Close())
	assert.ErrorIs(t, b.ObserveAt(bg, "a", u(1), fc.Now()), srl.ErrClosed)
}

// TestObserveAtRollsAPassedWindowForward: an update dated before the key's
// last use whose window ended in between counts as a report of the window
// in progress, of the same length, with nothing known of its count; the
// phase the server gave stays.
func TestObserveAtRollsAPassedWindowForward(t *testing.T) {
	b, fc := newFake(t)
	perSecond := srl.Limit{Name: "s", Limit: 10, Window: time.Second}
	fc.Set(t0.Add(time.Second))
	acquire(t, b, "k", 0) // the key's last use: t0+1s
	// Dated t0+100ms: the server's window ends at t0+300ms with nothing
	// left; the windows after it end at t0+1.3s, t0+2.3s...
	u := srl.Update{Quotas: []srl.QuotaUpdate{{Limit: perSecond, Remaining: 0, HasRemaining: true, ResetIn: 200 * time.Millisecond, HasReset: true}}}
	require.NoError(t, b.ObserveAt(bg, "k", u, t0.Add(100*time.Millisecond)))
	st := status(t, b, "k")
	require.Len(t, st.Limits, 1)
	assert.WithinDuration(t, t0.Add(1300*time.Millisecond), st.Limits[0].ResetAt, time.Duration(srl.Tolerance(int64(time.Second))))
	assert.Equal(t, 10.0, st.Limits[0].Remaining, "the old window's count is not the current one's")
	assert.Equal(t, 200*time.Millisecond, u.Quotas[0].ResetIn, "the caller's update is not written")
	assert.True(t, u.Quotas[0].HasRemaining, "the caller's update is not written")
}

// TestCancelGivesTheSlotBack: a waiter that gives up while it is the
// latest grant gives its slot back, so the next caller gets that slot,
// however many times callers come and give up, and waiters giving up
// newest first are all taken back; also when another limit
// decided the slot (a grant paced behind another limit counts the slots
// before it as spent and may carry into the next window: taking back only
// its units left those behind, and each caller that gave up pushed the
// queue a window further: 100 of them, half an hour under 1/s and 100/h).
func TestCancelGivesTheSlotBack(t *testing.T) {
	for _, defs := range [][]srl.Limit{
		{srl.PerSecond(1), srl.PerHour(100)},
		{srl.Every(1, time.Second), srl.Every(2, 3*time.Second)},
		{srl.PerSecond(10), srl.PerMinute(300), srl.PerHour(10_000)},
		{srl.Every(3, time.Second)},
	} {
		for _, booked := range []int{3, 40, 305} {
			b, fc := newFake(t)
			const key = "https://cancel-back.example:443"
			for range booked {
				acquire(t, b, key, srl.Forever, defs...)
			}
			fc.Advance(time.Duration(defs[0].Span()) / 3)
			first := acquire(t, b, key, srl.Forever, defs...)
			require.NoError(t, b.Cancel(bg, key, first, nil))
			for i := range 100 {
				r := acquire(t, b, key, srl.Forever, defs...)
				require.Equal(t, first.At, r.At, "%v after %d: caller %d gets the slot given back", defs, booked, i)
				require.Equal(t, first.Seq, r.Seq)
				require.NoError(t, b.Cancel(bg, key, r, nil))
			}
			assert.Equal(t, uint64(booked), status(t, b, key).Seq)

			// Ten waiters give up newest first: every one is taken back (the
			// key's latest slot went back to a guess, which the one before
			// did not match), and the next caller gets the first one's slot.
			var rs []srl.Reservation
			for range 10 {
				rs = append(rs, acquire(t, b, key, srl.Forever, defs...))
			}
			require.Equal(t, first.At, rs[0].At)
			for i := 9; i >= 0; i-- {
				require.NoError(t, b.Cancel(bg, key, rs[i], nil))
				require.Equal(t, uint64(booked+i), status(t, b, key).Seq, "%v after %d: waiter %d is taken back", defs, booked, i)
			}
			assert.Equal(t, first.At, acquire(t, b, key, srl.Forever, defs...).At, "%v after %d", defs, booked)
		}
	}
}

// TestWaitersAllocateNothing: once a key's first waiter has made the
// records Cancel uses, acquiring a paced slot and giving one back allocate
// nothing.
func TestWaitersAllocateNothing(t *testing.T) {
	b, fc := newFake(t)
	const key = "https://waiters-alloc.example:443"
	defs := []srl.Limit{srl.PerSecond(10), srl.PerMinute(300), srl.PerHour(10_000)}
	req := srl.AcquireRequest{Key: key, Defaults: defs, MaxWait: srl.Forever}
	for range 400 { // the minute binds: every grant waits
		_, err := b.Acquire(bg, req)
		require.NoError(t, err)
	}
	step := time.Duration(defs[1].Span()) / 300
	n := testing.AllocsPerRun(500, func() {
		r, err := b.Acquire(bg, req)
		if err != nil || !r.OK || r.Wait <= 0 {
			t.Fatal(r, err)
		}
		r2, _ := b.Acquire(bg, req)
		if err := b.Cancel(bg, key, r2, nil); err != nil {
			t.Fatal(err)
		}
		fc.Advance(step) // a slot comes as one is taken: the queue keeps its length
	})
	assert.Zero(t, n)
}

// TestRealignKeepsReservedSlots: a report whose window ends before slots
// already handed out does not move the local window's end before them
// (neither the first report of a limit, which takes over the defaults'
// window, nor a later one): their units would count in no window, and the
// window after would take the limit on top of them. (The server's window
// after its end held 4 of 3: the slot reserved at 1h40m and 3 new.)
func TestRealignKeepsReservedSlots(t *testing.T) {
	for i, learnedBefore := range []bool{false, true, false, true, false, true} {
		remaining := []float64{2, 2, 1, 1, 1, 1}[i]
		resetIn := []time.Duration{1321, 1321, 1321, 1321, 600, 600}[i] * time.Second
		b, fc := newFake(t)
		const key = "https://realign.example:443"
		lim := srl.PerHour(3)
		server := srl.Limit{Name: "q", Limit: 3, Window: time.Hour}
		report := func(remaining float64, resetIn time.Duration, seq uint64) {
			t.Helper()
			require.NoError(t, b.Observe(bg, key, srl.Update{SentSeq: seq, SentAgo: time.Millisecond,
				Quotas: []srl.QuotaUpdate{{Limit: server, Remaining: remaining, HasRemaining: true, ResetIn: resetIn, HasReset: true}}}))
		}
		// Three at t0, three paced in the defaults' next window [span, 2span).
		grants := grantsAt(t, b, fc, key, 6, lim)
		span := time.Duration(lim.Span())
		require.Equal(t, t0.Add(span+2*span/3), grants[5])
		if learnedBefore {
			// The first reports come at t0, while that window is to come.
			report(2, 1321*time.Second+span, 1)
		}
		// At the first paced slot, the server says its window ends in 22
		// (or 10) minutes: before the slots reserved after it. (With one
		// remaining, the count and the two granted since exceed the limit:
		// the excess carried into the next window is one unit, not the two
		// reserved after a reset in 10 minutes.)
		fc.Set(grants[3])
		end := fc.Now().Add(resetIn)
		report(remaining, resetIn, 4)
		fc.Set(end.Add(time.Minute))
		grants = append(grants, grantsAt(t, b, fc, key, 3, lim)...)
		n := 0 // in the server's window after its end
		for _, g := range grants {
			if !g.Before(end) && g.Before(end.Add(time.Hour)) {
				n++
			}
		}
		assert.LessOrEqual(t, n, 3, "learned before: %v, remaining %v, reset in %v; grants %v", learnedBefore, remaining, resetIn, grants)
	}
}

// TestCancelRecordsAreBounded: a caller that reserves many slots without
// waiting for them keeps at most maxUndo records; the newest are taken
// back exactly, the rest as before.
func TestCancelRecordsAreBounded(t *testing.T) {
	b, _ := newFake(t)
	const key = "https://many-reserved.example:443"
	defs := []srl.Limit{srl.PerSecond(1), srl.PerHour(100)}
	var rs []srl.Reservation
	for range 3000 {
		rs = append(rs, acquire(t, b, key, srl.Forever, defs...))
	}
	for i := len(rs) - 1; i >= len(rs)-1024; i-- {
		require.NoError(t, b.Cancel(bg, key, rs[i], nil))
		require.Equal(t, uint64(i), status(t, b, key).Seq, "waiter %d is taken back", i)
	}
	assert.Equal(t, rs[len(rs)-1024].At, acquire(t, b, key, srl.Forever, defs...).At)
}
