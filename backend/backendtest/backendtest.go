// Package backendtest is the conformance suite every
// [smartratelimit.Backend] passes. A backend's tests call [Run] with a
// constructor; each subtest uses keys of its own, so one backend instance
// may serve them all, but a fresh one per subtest is fine too. [Garbage]
// drives a backend with absurd values on the backend's own test clock.
//
// The suite runs on the real clock. It uses windows of an hour (so the
// time the test takes cannot change a decision) except where a window has
// to end during the test, where it uses windows of about a second. Waits
// are expected on each limit's Span (an hour is enforced as 3603.62s).
package backendtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
)

// slack is how far a wait may be from its ideal value: the time the test
// itself takes between calls.
const slack = 2 * time.Second

// Run runs the conformance suite. newBackend is called once per subtest;
// the suite closes what it returns.
func Run(t *testing.T, newBackend func(t *testing.T) srl.Backend) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t)
			t.Cleanup(func() { _ = b.Close() })
			tc.f(t, b, fmt.Sprintf("https://conformance-%s.example:443/%d", strings.ReplaceAll(tc.name, " ", "-"), rand.Uint64()))
		})
	}
}

var cases = []struct {
	name string
	f    func(t *testing.T, b srl.Backend, key string)
}{
	{"immediate up to the limit then refuse", testImmediate},
	{"future slots are paced and distinct", testPaced},
	{"a refused slot reserves nothing", testRefusedReservesNothing},
	{"goroutine storm grants exactly the limit", testStorm},
	{"every limit of a key applies", testSeveralLimits},
	{"concurrent waiters never exceed a window", testConcurrentWindows},
	{"headers lower remaining", testObserveLowers},
	{"headers never raise remaining within a window", testObserveNeverRaises},
	{"grants after the request was sent are subtracted", testGrantsSince},
	{"a later window resets", testLaterWindowResets},
	{"a new learned window counts the grants in flight", testNewWindowCountsInFlight},
	{"stale report of an earlier window is ignored", testStaleIgnored},
	{"block stops every caller of the key", testBlock},
	{"token cost against a token quota", testTokenCost},
	{"a cost that is not a non-negative number is refused", testInvalidCosts},
	{"absurd report values neither wrap around nor block for ever", testAbsurdReports},
	{"a negative max wait is fail fast", testNegativeMaxWait},
	{"override limits", testOverride},
	{"keys clear and status", testKeysClearStatus},
	{"hostile keys", testHostileKeys},
	{"closed", testClosed},
	{"a block inside reservations never exceeds the limit", testBlockKeepsReservations},
	{"reports sent before the current window are ignored", testSentBeforeWindow},
	{"learned limits keep the slots booked under the defaults", testDefaultsHandover},
	{"defaults hold in any interval of a window", testUnalignedSliding},
}

// span returns lim's enforced window length as a Duration.
func span(lim srl.Limit) time.Duration { return time.Duration(lim.Span()) }

var bg = context.Background()

func acquire(t *testing.T, b srl.Backend, key string, maxWait time.Duration, defaults ...srl.Limit) srl.Reservation {
	t.Helper()
	r, err := b.Acquire(bg, srl.AcquireRequest{Key: key, Defaults: defaults, MaxWait: maxWait})
	require.NoError(t, err)
	return r
}

func near(t *testing.T, want, got time.Duration, msg string) {
	t.Helper()
	assert.InDelta(t, want.Seconds(), got.Seconds(), slack.Seconds(), "%s: want about %v, got %v", msg, want, got)
}

func testImmediate(t *testing.T, b srl.Backend, key string) {
	lim := srl.Every(5, time.Hour)
	for i := range 5 {
		r := acquire(t, b, key, 0, lim)
		require.True(t, r.OK, "request %d", i)
		assert.Zero(t, r.Wait, "request %d", i)
		assert.Equal(t, uint64(i+1), r.Seq)
	}
	r := acquire(t, b, key, 0, lim)
	assert.False(t, r.OK, "the sixth request must be refused")
	near(t, span(lim), r.Wait, "refused wait")
	assert.True(t, r.Limit.Same(lim), "binding limit %v", r.Limit)
	assert.False(t, r.Blocked)
}

func testPaced(t *testing.T, b srl.Backend, key string) {
	lim := srl.Every(10, time.Hour)
	for range 10 {
		require.Zero(t, acquire(t, b, key, srl.Forever, lim).Wait)
	}
	var waits []time.Duration
	for range 10 {
		r := acquire(t, b, key, srl.Forever, lim)
		require.True(t, r.OK)
		waits = append(waits, r.Wait)
	}
	for j, w := range waits {
		near(t, span(lim)+time.Duration(j)*span(lim)/10, w, fmt.Sprintf("slot %d", j))
	}
	// The 21st request goes to the start of the window after.
	near(t, 2*span(lim), acquire(t, b, key, srl.Forever, lim).Wait, "first slot of the third window")
}

func testRefusedReservesNothing(t *testing.T, b srl.Backend, key string) {
	lim := srl.Every(2, time.Hour)
	acquire(t, b, key, 0, lim)
	acquire(t, b, key, 0, lim)
	for range 5 {
		r := acquire(t, b, key, time.Minute, lim)
		require.False(t, r.OK)
	}
	st, err := b.Status(bg, key)
	require.NoError(t, err)
	require.Len(t, st.Limits, 1)
	assert.Zero(t, st.Limits[0].Remaining)
	assert.Zero(t, st.Limits[0].Reserved, "refused requests must not reserve")
	assert.Equal(t, uint64(2), st.Seq)
	near(t, span(lim), acquire(t, b, key, srl.Forever, lim).Wait, "first slot after refusals")
}

func testStorm(t *testing.T, b srl.Backend, key string) {
	lim := srl.Every(50, time.Hour)
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 {
				r, err := b.Acquire(bg, srl.AcquireRequest{Key: key, Defaults: []srl.Limit{lim}})
				if assert.NoError(t, err) && r.OK {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(50), ok.Load())
}

func testSeveralLimits(t *testing.T, b srl.Backend, key string) {
	perHour, perDay := srl.Every(3, time.Hour), srl.Every(4, 24*time.Hour)
	for range 3 {
		require.Zero(t, acquire(t, b, key, 0, perHour, perDay).Wait)
	}
	r := acquire(t, b, key, srl.Forever, perHour, perDay)
	require.True(t, r.OK)
	near(t, span(perHour), r.Wait, "per-hour limit binds")
	assert.True(t, r.Limit.Same(perHour))
	r = acquire(t, b, key, srl.Forever, perHour, perDay)
	near(t, span(perDay), r.Wait, "per-day limit binds")
	assert.True(t, r.Limit.Same(perDay))
}

func testConcurrentWindows(t *testing.T, b srl.Backend, key string) {
	const limit, workers, each = 20, 8, 25
	lim := srl.Every(limit, time.Hour)
	var mu sync.Mutex
	var slots []time.Time
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				before := time.Now()
				r, err := b.Acquire(bg, srl.AcquireRequest{Key: key, Defaults: []srl.Limit{lim}, MaxWait: srl.Forever})
				if !assert.NoError(t, err) || !assert.True(t, r.OK) {
					return
				}
				mu.Lock()
				slots = append(slots, before.Add(r.Wait))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Len(t, slots, workers*each)
	slices.SortFunc(slots, func(a, b time.Time) int { return a.Compare(b) })
	first := slots[0]
	for i, s := range slots {
		// The i-th slot lies in window i/limit or later (on the Span):
		// never more than limit slots in one window.
		minStart := first.Add(time.Duration(i/limit) * span(lim)).Add(-slack)
		assert.False(t, s.Before(minStart), "slot %d at %v is before window %d", i, s.Sub(first), i/limit)
	}
}

func observe(t *testing.T, b srl.Backend, key string, u srl.Update) {
	t.Helper()
	require.NoError(t, b.Observe(bg, key, u))
}

func quota(l srl.Limit, remaining float64, resetIn time.Duration) srl.QuotaUpdate {
	return srl.QuotaUpdate{Limit: l, Remaining: remaining, HasRemaining: true, ResetIn: resetIn, HasReset: resetIn >= 0}
}

func remaining(t *testing.T, b srl.Backend, key string) float64 {
	t.Helper()
	st, err := b.Status(bg, key)
	require.NoError(t, err)
	bl, ok := st.Binding()
	require.True(t, ok, "status has no limits: %+v", st)
	return bl.Remaining
}

func testObserveLowers(t *testing.T, b srl.Backend, key string) {
	def := srl.Every(100, time.Hour)
	r := acquire(t, b, key, 0, def)
	server := srl.Limit{Name: "core", Dimension: srl.DimRequests, Limit: 10, Window: time.Hour}
	observe(t, b, key, srl.Update{Quotas: []srl.QuotaUpdate{quota(server, 2, 30*time.Minute)}, SentSeq: r.Seq})
	st, err := b.Status(bg, key)
	require.NoError(t, err)
	require.Len(t, st.Limits, 1, "learned limits replace the defaults")
	assert.Equal(t, srl.SourceHeaders, st.Limits[0].Source)
	assert.Equal(t, 2.0, st.Limits[0].Remaining)
	near(t, 30*time.Minute, time.Until(st.Limits[0].ResetAt), "reset follows the server")
	require.Zero(t, acquire(t, b, key, 0, def).Wait)
	require.Zero(t, acquire(t, b, key, 0, def).Wait)
	r = acquire(t, b, key, 0, def)
	require.False(t, r.OK)
	near(t, 30*time.Minute, r.Wait, "wait until the server's reset")
	assert.True(t, r.Limit.Same(server))
}

func testObserveNeverRaises(t *testing.T, b srl.Backend, key string) {
	server := srl.Limit{Name: "q", Limit: 10, Window: time.Hour}
	observe(t, b, key, srl.Update{Quotas: []srl.QuotaUpdate{quota(server, 5, 30*time.Minute)}})
	observe(t, b, key, srl.Update{Quotas: []srl.QuotaUpdate{quota(server, 8, 30*time.Minute)}})
	assert.Equal(t, 5.0, remaining(t, b, key))
	observe(t, b, key, srl.Update{Quotas: []srl.QuotaUpdate{quota(server, 3, 30*time.Minute)}})
	assert.Equal(t, 3.0, remaining(t, b, key))
	// Remaining without a reset lowers too, and never raises.
	observe(t, b, key, srl.Update{Quotas: []srl.QuotaUpdate{quota(server, 9, -1)}})
	assert.Equal(t, 3.0, remaining(t, b, key))
	observe(t, b, key, srl.Update{Quotas: []srl.QuotaUpdate{quota(server, 1, -1)}})
	assert.Equal(t, 1.0, remaining(t, b, key))
}

func testGrantsSince(t *testing.T, b srl.Backend, key string) {
	server := srl.Limit{Name: "q", Limit: 10, Window: time.Hour}
	observe(t, b, key, srl.Update{Quotas: []srl.QuotaUpdate{quota(server, 10, 30*time.Minute)}})
	a := acquire(t, b, key, 0)
	acquire(t, b, key, 0)
	acquire(t, b, key, 0)
	// The server counted only the first request: 9 left for it, but two
	// more were granted since, so 7 are left.
	observe(t, b, key, srl.Update{Quotas: []srl.QuotaUpdate{quota(server, 9, 30*time.Minute)}, SentSeq: a.Seq})
	assert.Equal(t, 7.0, remaining(t, b, key))
}

func testLaterWindowResets(t *testing.T, b srl.Backend, key string) {
	server := srl.Limit{Name: "q", Limit: 5, Window: time.Hour}
	// Exhausted, and the window ends in a second (the server may round its
	// reset down by up to ResetSlack).
	observe(t, b, key, srl.Update{Quotas: []srl.QuotaUpdate{quota(server, 0, time.Second-srl.ResetSlack)}})
	r := acquire(t, b, key, 0)
	require.False(t, r.OK, "exhausted")
	near(t, time.Second, r.Wait, "wait for the reset")
	time.Sleep(1100 * time.Millisecond)
	assert.Equal(t, 5.0, remaining(t, b, key), "a new window starts full")
	observe(t, b, key, srl.Update{Quotas: []srl.QuotaUpdate{quota(server, 4, time.Hour-100*time.Millisecond)}})
	assert.Equal(t, 4.0, remaining(t, b, key), "and the server's count applies to it")

	// A server whose window started after the local one (it ends 10
	// minutes later than the local window): its fresh count applies.
	key2 := key + "/later"
	observe(t, b, key2, srl.Update{Quotas: []srl.QuotaUpdate{quota(server, 0, 50*time.Minute)}})
	observe(t, b, key2, srl.Update{Quotas: []srl.QuotaUpdate{quota(server, 4, time.Hour)}})
	assert.Equal(t, 4.0, remaining(t, b, key2))
}

// testNewWindowCountsInFlight: a learned limit with no default of its
// window to take over starts a window that counts the grants made after
// the reported request (the server has not counted them yet).
func testNewWindowCountsInFlight(t *testing.T, b srl.Backend, key string) {
	defs := srl.PerSecond(100) // not the server's window
	first := acquire(t, b, key, 0, defs)
	for range 3 {
		acquire(t, b, key, 0, defs)
	}
	server := srl.Limit{Name: "q", Limit: 5, Window: time.Minute}
	observe(t, b, key, srl.Update{Quotas: []srl.QuotaUpdate{quota(server, 4, 30*time.Second)}, SentSeq: first.Seq, SentAgo: time.Millisecond})
	assert.Equal(t, 1.0, remaining(t, b, key), "the server counted one; three more are on their way")
}

func testStaleIgnored(t *testing.T, b srl.Backend, key string) {
	server := srl.Limit{Name: "q", Limit: 10, Window: time.Hour}
	observe(t, b, key, srl.Update{Quotas: []srl.QuotaUpdate{quota(server, 10, 30*time.Minute)}})
	for range 10 {
		acquire(t, b, key, srl.Forever)
	}
	// Now reserving into the next window (starting in 30 minutes).
	r := acquire(t, b, key, srl.Forever)
	near(t, 30*time.Minute, r.Wait, "first slot of the next window")
	// A late response about the current window says 0 left: nothing changes.
	observe(t, b, key, srl.Update{Quotas: []srl.QuotaUpdate{quota(server, 0, 30*time.Minute)}})
	r = acquire(t, b, key, srl.Forever)
	near(t, 30*time.Minute+span(server)/10, r.Wait, "second slot of the next window")
}

func testBlock(t *testing.T, b srl.Backend, key string) {
	lim := srl.Every(1000, time.Hour)
	acquire(t, b, key, 0, lim)
	observe(t, b, key, srl.Update{BlockFor: time.Hour})
	r := acquire(t, b, key, 0, lim)
	require.False(t, r.OK)
	assert.True(t, r.Blocked, "the block decides the wait")
	near(t, time.Hour, r.Wait, "blocked wait")
	st, err := b.Status(bg, key)
	require.NoError(t, err)
	near(t, time.Hour, time.Until(st.BlockedUntil), "blocked until")
	// Waiters resume paced from the block's end, not all at once.
	w1 := acquire(t, b, key, srl.Forever, lim).Wait
	w2 := acquire(t, b, key, srl.Forever, lim).Wait
	w3 := acquire(t, b, key, srl.Forever, lim).Wait
	near(t, time.Hour, w1, "first after block")
	assert.Greater(t, w2, w1)
	assert.Greater(t, w3, w2)
	near(t, span(lim)/1000, w2-w1, "paced at span/limit")
	// Other keys are not blocked.
	assert.True(t, acquire(t, b, key+"/other", 0, lim).OK)
}

func testTokenCost(t *testing.T, b srl.Backend, key string) {
	reqs := srl.Limit{Name: "requests", Dimension: srl.DimRequests, Limit: 100, Window: time.Minute}
	toks := srl.Limit{Name: "tokens", Dimension: srl.DimTokens, Limit: 1000, Window: time.Minute}
	observe(t, b, key, srl.Update{Quotas: []srl.QuotaUpdate{quota(reqs, 100, 30*time.Second), quota(toks, 100, 30*time.Second)}})
	cost := []srl.Cost{{Dimension: srl.DimTokens, Amount: 60}}
	r, err := b.Acquire(bg, srl.AcquireRequest{Key: key, Costs: cost})
	require.NoError(t, err)
	require.True(t, r.OK)
	r, err = b.Acquire(bg, srl.AcquireRequest{Key: key, Costs: cost})
	require.NoError(t, err)
	assert.False(t, r.OK, "40 tokens left, 60 needed")
	assert.True(t, r.Limit.Same(toks))
	// A request without a token cost still goes while tokens remain.
	r, err = b.Acquire(bg, srl.AcquireRequest{Key: key})
	require.NoError(t, err)
	assert.True(t, r.OK)
	_, err = b.Acquire(bg, srl.AcquireRequest{Key: key, Costs: []srl.Cost{{Dimension: srl.DimTokens, Amount: 2000}}, MaxWait: srl.Forever})
	assert.ErrorIs(t, err, srl.ErrCostExceedsLimit)
}

// testInvalidCosts: a negative, NaN or infinite cost is an error wrapping
// ErrInvalidLimit that reserves nothing; a negative cost must not give
// units back (it let 500 tokens through a 100-token window).
func testInvalidCosts(t *testing.T, b srl.Backend, key string) {
	toks := srl.Limit{Name: "tokens", Dimension: srl.DimTokens, Limit: 100, Window: time.Hour}
	defs := []srl.Limit{srl.Every(100, time.Hour), toks}
	cost := func(d srl.Dimension, n float64) []srl.Cost { return []srl.Cost{{Dimension: d, Amount: n}} }
	r, err := b.Acquire(bg, srl.AcquireRequest{Key: key, Defaults: defs, Costs: cost(srl.DimTokens, 60)})
	require.NoError(t, err)
	require.True(t, r.OK)
	c, canCancel := b.(srl.Canceler)
	for _, bad := range []float64{-60, math.NaN(), math.Inf(1), math.Inf(-1)} {
		for _, d := range []srl.Dimension{srl.DimTokens, srl.DimRequests, "unused"} {
			_, err := b.Acquire(bg, srl.AcquireRequest{Key: key, Defaults: defs, Costs: cost(d, bad), MaxWait: srl.Forever})
			assert.ErrorIs(t, err, srl.ErrInvalidLimit, "cost %v of %s", bad, d)
			if canCancel {
				assert.ErrorIs(t, c.Cancel(bg, key, r, cost(d, bad)), srl.ErrInvalidLimit, "cancel: cost %v of %s", bad, d)
				// Also of a reservation that holds nothing to take back.
				assert.ErrorIs(t, c.Cancel(bg, key, srl.Reservation{}, cost(d, bad)), srl.ErrInvalidLimit, "cancel nothing: cost %v of %s", bad, d)
			}
		}
	}
	st, err := b.Status(bg, key)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), st.Seq, "nothing reserved")
	r, err = b.Acquire(bg, srl.AcquireRequest{Key: key, Defaults: defs, Costs: cost(srl.DimTokens, 60)})
	require.NoError(t, err)
	assert.False(t, r.OK, "40 tokens left: no cost gave any back")
}

// testAbsurdReports: an update a parser would never produce (a block or a
// reset beyond what a Duration holds, an infinite remaining) is bounded,
// never wrapped around: a block lasts at most MaxWindow and is never lost,
// an infinite or NaN remaining is unknown, a reset is at most MaxWindow
// away (in the past: that window is over).
func testAbsurdReports(t *testing.T, b srl.Backend, key string) {
	lim := srl.Limit{Name: "q", Limit: 10, Window: time.Minute}
	for _, d := range []time.Duration{math.MaxInt64, math.MaxInt64 - time.Second} {
		k := fmt.Sprintf("%s/block-%d", key, d)
		start := time.Now()
		observe(t, b, k, srl.Update{BlockFor: d})
		st, err := b.Status(bg, k)
		require.NoError(t, err)
		assert.False(t, st.BlockedUntil.Before(start.Add(srl.MaxWindow-slack)), "a block of %v lasts MaxWindow: until %v", d, st.BlockedUntil)
		assert.False(t, st.BlockedUntil.After(time.Now().Add(srl.MaxWindow+slack)), "a block of %v lasts MaxWindow: until %v", d, st.BlockedUntil)
	}
	for i, rem := range []float64{math.Inf(-1), math.Inf(1), math.NaN()} {
		k := fmt.Sprintf("%s/remaining-%d", key, i)
		observe(t, b, k, srl.Update{Quotas: []srl.QuotaUpdate{{Limit: lim, Remaining: rem, HasRemaining: true, ResetIn: 30 * time.Second, HasReset: true}}})
		assert.True(t, acquire(t, b, k, 0).OK, "remaining %v is unknown", rem)
	}
	for i, sentAgo := range []time.Duration{0, time.Millisecond} {
		k := fmt.Sprintf("%s/reset-past-%d", key, i)
		observe(t, b, k, srl.Update{Quotas: []srl.QuotaUpdate{{Limit: lim, Remaining: 0, HasRemaining: true, ResetIn: math.MinInt64, HasReset: true}}, SentAgo: sentAgo})
		assert.True(t, acquire(t, b, k, 0).OK, "a window that ended long ago limits nothing")
		k = fmt.Sprintf("%s/reset-future-%d", key, i)
		observe(t, b, k, srl.Update{Quotas: []srl.QuotaUpdate{{Limit: lim, Remaining: 5, HasRemaining: true, ResetIn: math.MaxInt64, HasReset: true}}, SentAgo: sentAgo})
		r := acquire(t, b, k, srl.Forever)
		require.True(t, r.OK)
		assert.LessOrEqual(t, r.Wait, srl.MaxWindow+span(lim)+slack, "a reset is at most MaxWindow away")
		st, err := b.Status(bg, k)
		require.NoError(t, err)
		require.Len(t, st.Limits, 1)
		assert.False(t, st.Limits[0].ResetAt.Before(time.Now().Add(-slack)), "reset at %v", st.Limits[0].ResetAt)
	}
}

// testNegativeMaxWait: a negative MaxWait means no wait, as zero does: a
// request that can go at once goes.
func testNegativeMaxWait(t *testing.T, b srl.Backend, key string) {
	lim := srl.Every(1, time.Hour)
	r := acquire(t, b, key, -time.Second, lim)
	assert.True(t, r.OK, "the slot is free: %+v", r)
	assert.Zero(t, r.Wait)
	r = acquire(t, b, key, -time.Second, lim)
	assert.False(t, r.OK)
	near(t, span(lim), r.Wait, "refused wait")
}

func testOverride(t *testing.T, b srl.Backend, key string) {
	// Removing the overrides of a key never seen makes no key.
	require.NoError(t, b.SetLimits(bg, key+"/never", nil))
	_, err := b.Status(bg, key+"/never")
	assert.ErrorIs(t, err, srl.ErrUnknownKey, "no key made")
	def := srl.Every(100, time.Hour)
	require.NoError(t, b.SetLimits(bg, key, []srl.Limit{srl.Every(2, time.Hour)}))
	assert.True(t, acquire(t, b, key, 0, def).OK)
	assert.True(t, acquire(t, b, key, 0, def).OK)
	assert.False(t, acquire(t, b, key, 0, def).OK)
	st, err := b.Status(bg, key)
	require.NoError(t, err)
	require.Len(t, st.Limits, 1)
	assert.Equal(t, srl.SourceOverride, st.Limits[0].Source)
	require.NoError(t, b.SetLimits(bg, key, nil))
	assert.True(t, acquire(t, b, key, 0, def).OK, "defaults again")
	st, err = b.Status(bg, key)
	require.NoError(t, err)
	require.Len(t, st.Limits, 1)
	assert.Equal(t, srl.SourceDefaults, st.Limits[0].Source)
	assert.ErrorIs(t, b.SetLimits(bg, key, []srl.Limit{{Limit: -1, Window: time.Second}}), srl.ErrInvalidLimit)
	assert.ErrorIs(t, b.SetLimits(bg, key, []srl.Limit{{Limit: 1}}), srl.ErrInvalidLimit)
	// Invalid defaults are refused even by a key whose own limits apply.
	require.NoError(t, b.SetLimits(bg, key, []srl.Limit{srl.Every(5, time.Second)}))
	_, err = b.Acquire(bg, srl.AcquireRequest{Key: key, Defaults: []srl.Limit{{Limit: -1, Window: time.Second}}})
	assert.ErrorIs(t, err, srl.ErrInvalidLimit)
}

func testKeysClearStatus(t *testing.T, b srl.Backend, key string) {
	def := srl.Every(10, time.Hour)
	k1, k2 := key+"/a", key+"/b"
	acquire(t, b, k1, 0, def)
	acquire(t, b, k2, 0, def)
	keys, err := b.Keys(bg)
	require.NoError(t, err)
	assert.Contains(t, keys, k1)
	assert.Contains(t, keys, k2)
	assert.True(t, slices.IsSorted(keys))
	st, err := b.Status(bg, k1)
	require.NoError(t, err)
	assert.Equal(t, k1, st.Key)
	require.Len(t, st.Limits, 1)
	assert.Equal(t, 9.0, st.Limits[0].Remaining)
	assert.Equal(t, srl.SourceDefaults, st.Limits[0].Source)
	assert.WithinDuration(t, time.Now(), st.LastUsed, slack)
	require.NoError(t, b.Clear(bg, k1))
	_, err = b.Status(bg, k1)
	assert.ErrorIs(t, err, srl.ErrUnknownKey)
	_, err = b.Status(bg, k2)
	assert.NoError(t, err)
	require.NoError(t, b.ClearAll(bg))
	keys, err = b.Keys(bg)
	require.NoError(t, err)
	assert.Empty(t, keys)
}

func testHostileKeys(t *testing.T, b srl.Backend, key string) {
	def := srl.Every(1, time.Hour)
	for _, k := range []string{
		key + "/'; DROP TABLE buckets; --",
		key + `/"quoted" \backslash`,
		key + "/ünïcødé/日本語",
		key + "/" + strings.Repeat("x", 10_000),
		key + "/%00%27",
	} {
		r := acquire(t, b, k, 0, def)
		assert.True(t, r.OK)
		assert.False(t, acquire(t, b, k, 0, def).OK, "the key must have its own bucket")
		st, err := b.Status(bg, k)
		require.NoError(t, err)
		assert.Equal(t, k, st.Key)
	}
	keys, err := b.Keys(bg)
	require.NoError(t, err)
	assert.Contains(t, keys, key+"/ünïcødé/日本語")
}

func testClosed(t *testing.T, b srl.Backend, key string) {
	require.NoError(t, b.Close())
	_, err := b.Acquire(bg, srl.AcquireRequest{Key: key, Defaults: []srl.Limit{srl.PerSecond(1)}})
	assert.True(t, errors.Is(err, srl.ErrClosed), "got %v", err)
	assert.ErrorIs(t, b.Observe(bg, key, srl.Update{}), srl.ErrClosed)
	_, err = b.Keys(bg)
	assert.ErrorIs(t, err, srl.ErrClosed)
	assert.NoError(t, b.Close(), "Close twice is fine")
}

// grant acquires with no bound on the wait and returns the granted instant.
func grant(t *testing.T, b srl.Backend, key string, defaults ...srl.Limit) time.Time {
	t.Helper()
	before := time.Now()
	r := acquire(t, b, key, srl.Forever, defaults...)
	require.True(t, r.OK)
	return before.Add(r.Wait)
}

// MostIn returns the most grants in any interval [s, s+d) starting at
// from or at a grant at or after it: the check that no window of length d
// holds more than a limit.
func MostIn(grants []time.Time, from time.Time, d time.Duration) int {
	most := 0
	starts := []time.Time{from}
	for _, g := range grants {
		if !g.Before(from) {
			starts = append(starts, g)
		}
	}
	for _, s := range starts {
		n := 0
		for _, g := range grants {
			if !g.Before(s) && g.Before(s.Add(d)) {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

// testBlockKeepsReservations: a block ending inside the window that holds
// reservations keeps them (restarting it at the block's end would let up
// to 13 of 10 into the hour from the block's end).
func testBlockKeepsReservations(t *testing.T, b srl.Backend, key string) {
	lim := srl.Every(10, time.Hour)
	step := span(lim) / 10
	start := time.Now()
	var grants []time.Time
	for range 15 {
		grants = append(grants, grant(t, b, key, lim))
	}
	near(t, span(lim)+4*step, grants[14].Sub(start), "fifth booked slot")
	blockFor := span(lim) + 3*step/2 // between the second and the third booked slot
	blockEnd := time.Now().Add(blockFor)
	observe(t, b, key, srl.Update{BlockFor: blockFor})
	for range 10 {
		grants = append(grants, grant(t, b, key, lim))
	}
	near(t, span(lim)+5*step, grants[15].Sub(start), "after the booked slots")
	assert.LessOrEqual(t, MostIn(grants, blockEnd, lim.Window), 10, "an hour from the block's end holds at most the limit")
	assert.LessOrEqual(t, MostIn(grants, start, lim.Window), 10, "any hour holds at most the limit")
}

// testSentBeforeWindow: a response to a request sent before the current
// window began (Update.SentAgo) reports the previous window, ignored,
// unless its reset names the current one.
func testSentBeforeWindow(t *testing.T, b srl.Backend, key string) {
	server := srl.Limit{Name: "q", Limit: 10, Window: time.Hour}
	// The learned window ends in a second (its reset, rounded down by up to
	// ResetSlack); the next one begins then.
	observe(t, b, key, srl.Update{Quotas: []srl.QuotaUpdate{quota(server, 10, time.Second-srl.ResetSlack)}})
	time.Sleep(1200 * time.Millisecond)
	require.Equal(t, 10.0, remaining(t, b, key), "a new window")
	// About the window that ended (its reset has come): ignored.
	observe(t, b, key, srl.Update{Quotas: []srl.QuotaUpdate{quota(server, 0, 0)}, SentAgo: 2 * time.Second})
	assert.Equal(t, 10.0, remaining(t, b, key), "sent before the window began: ignored")
	// A reset naming the current window says the server counted it there.
	observe(t, b, key+"/named", srl.Update{Quotas: []srl.QuotaUpdate{quota(server, 10, time.Second-srl.ResetSlack)}})
	time.Sleep(1200 * time.Millisecond)
	observe(t, b, key+"/named", srl.Update{Quotas: []srl.QuotaUpdate{quota(server, 2, time.Hour-time.Second)}, SentAgo: 2 * time.Second})
	assert.Equal(t, 2.0, remaining(t, b, key+"/named"), "sent before the window began, counted in it")
	observe(t, b, key, srl.Update{Quotas: []srl.QuotaUpdate{quota(server, 7, time.Hour)}, SentAgo: 100 * time.Millisecond})
	assert.Equal(t, 3.0, 10-remaining(t, b, key), "sent in the window: applies")
	observe(t, b, key, srl.Update{Quotas: []srl.QuotaUpdate{quota(server, 5, time.Hour)}})
	assert.Equal(t, 5.0, remaining(t, b, key), "send time unknown: applies")
}

// testDefaultsHandover: slots booked under the defaults stay counted when
// a learned limit of the same window takes over.
func testDefaultsHandover(t *testing.T, b srl.Backend, key string) {
	def := srl.Every(10, time.Hour)
	step := span(def) / 10
	start := time.Now()
	var grants []time.Time
	for range 15 {
		grants = append(grants, grant(t, b, key, def))
	}
	server := srl.Limit{Name: "m", Limit: 10, Window: time.Hour}
	observe(t, b, key, srl.Update{Quotas: []srl.QuotaUpdate{{Limit: server, Remaining: 9, HasRemaining: true}}})
	st, err := b.Status(bg, key)
	require.NoError(t, err)
	require.Len(t, st.Limits, 1)
	assert.Equal(t, srl.SourceHeaders, st.Limits[0].Source)
	assert.Equal(t, 5.0, st.Limits[0].Reserved, "the five booked slots")
	for range 6 {
		grants = append(grants, grant(t, b, key, def))
	}
	near(t, span(def)+5*step, grants[15].Sub(start), "the next slot comes after the booked ones")
	near(t, 2*span(def), grants[20].Sub(start), "then the window after")
	assert.LessOrEqual(t, MostIn(grants, start, server.Window), 10, "any hour holds at most the limit")
}

// testUnalignedSliding: the defaults' windows have the limiter's own phase,
// not the server's, so a burst late in one window must not be followed by
// another at the start of the next: the server's window may hold both.
// Every interval of a window's length holds at most the limit, and once
// the late burst has left, the next goes at once.
func testUnalignedSliding(t *testing.T, b srl.Backend, key string) {
	def := srl.Every(5, time.Second)
	start := time.Now()
	grants := []time.Time{grant(t, b, key, def)} // the window starts here
	time.Sleep(700 * time.Millisecond)
	for range 4 {
		grants = append(grants, grant(t, b, key, def))
	}
	late := grants[4]
	require.Less(t, late.Sub(start), span(def), "the burst is late in the first window (the machine is slow)")
	for time.Since(start) < span(def) {
		time.Sleep(10 * time.Millisecond)
	}
	var next []time.Time
	for range 5 {
		next = append(next, grant(t, b, key, def))
	}
	grants = append(grants, next...)
	assert.LessOrEqual(t, MostIn(grants, start, def.Window), 5, "any second holds at most the limit")
	// The first may go once the unit at the window's start has left (four
	// late ones and it make five); the others wait for the late four.
	assert.False(t, next[1].Before(late.Add(def.Window)), "the next burst waits for the late one to leave")
	assert.Less(t, next[4].Sub(late), def.Window+slack, "and then goes")
}
