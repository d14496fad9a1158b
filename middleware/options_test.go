package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/headerparse"
	"github.com/smartratelimit/smartratelimit/internal/testapi"
	"github.com/smartratelimit/smartratelimit/middleware"
)

// While a process has had no response from a key, concurrent callers wait
// for the first one and then follow the limit it announced.
func TestFirstContactWaitsForTheFirstResponse(t *testing.T) {
	var inFlight, maxInFlight atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := maxInFlight.Load(); n > m && !maxInFlight.CompareAndSwap(m, n); m = maxInFlight.Load() {
		}
		time.Sleep(50 * time.Millisecond)
		w.Header().Set("X-RateLimit-Limit", "1000")
		w.Header().Set("X-RateLimit-Remaining", "999")
		w.Header().Set("X-RateLimit-Reset", "3600")
	}))
	t.Cleanup(srv.Close)
	var learned atomic.Int64
	c, _ := newClient(t, middleware.WithHooks(middleware.Hooks{OnLearn: func(string, []srl.QuotaUpdate) { learned.Add(1) }}))
	var wg sync.WaitGroup
	var firstDone atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.R().Get(srv.URL)
			assert.NoError(t, err)
			firstDone.CompareAndSwap(0, int64(maxInFlight.Load()))
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(1), firstDone.Load(), "the first request was alone on the wire")
	assert.Equal(t, int64(8), learned.Load())
}

func TestHostProfileKeyFuncCostFuncAndHooks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Left", "0")
		w.Header().Set("X-Max", "5")
		w.Header().Set("X-Reset-Ms", "45000")
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	var refused []*srl.LimitError
	var keys []string
	c, l := newClient(t,
		middleware.WithHostProfile(host, headerparse.Mapping{Limit: "X-Max", Remaining: "X-Left", Reset: "X-Reset-Ms", ResetFormat: headerparse.ResetDeltaMillis, Window: time.Minute}),
		middleware.WithKeyFunc(func(u middleware.URL) string { keys = append(keys, u.Host); return "tenant-a/" + u.Host }),
		middleware.WithCost(func(r *resty.Request) []srl.Cost { return []srl.Cost{{Dimension: srl.DimRequests, Amount: 1}} }),
		middleware.WithFailFast(),
		middleware.WithHooks(middleware.Hooks{OnRefuse: func(e *srl.LimitError) { refused = append(refused, e) }}),
	)
	_, err := c.R().Get(srv.URL)
	require.NoError(t, err)
	_, err = c.R().Get(srv.URL)
	require.ErrorIs(t, err, srl.ErrRateLimited, "the profile's delta-ms reset was understood")
	require.Len(t, refused, 1)
	assert.Equal(t, "tenant-a/127.0.0.1", refused[0].Key)
	assert.InDelta(t, 45, refused[0].Wait.Seconds(), 2)
	all, err := l.Keys(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"tenant-a/127.0.0.1"}, all)
	assert.NotEmpty(t, keys)
}

func TestOpenAIQuotasArePerMinute(t *testing.T) {
	// OpenAI's headers carry no window; its documented limits are per
	// minute, so 5 requests per minute means the sixth waits for the reset.
	if left := time.Until(time.Now().Truncate(time.Minute).Add(time.Minute)); left < 5*time.Second {
		time.Sleep(left + 100*time.Millisecond) // not across the server's minute boundary
	}
	srv := newServer(t, testapi.Config{Limit: 5, TokenLimit: 1000, Window: time.Minute, Style: testapi.StyleOpenAI})
	c, _ := newClient(t, middleware.WithFailFast())
	for range 5 {
		_, err := c.R().Get(srv.URL)
		require.NoError(t, err)
	}
	_, err := c.R().Get(srv.URL)
	var le *srl.LimitError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, time.Minute, le.Limit.Window)
	untilMinute := time.Until(time.Now().Truncate(time.Minute).Add(time.Minute))
	assert.InDelta(t, untilMinute.Seconds(), le.Wait.Seconds(), 2, "until the server's minute ends")
	assert.Zero(t, srv.Stats().Throttled)
}

// A first request that fails in transport (no response, so no
// OnAfterResponse) opens the first-contact gate at once: callers behind it
// do not wait out the gate's bound.
func TestFailedProbeOpensTheGate(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		hj, ok := w.(http.Hijacker)
		require.True(t, ok)
		conn, _, err := hj.Hijack()
		require.NoError(t, err)
		conn.Close() // a transport error for the client
	}))
	t.Cleanup(srv.Close)
	c, _ := newClient(t)
	done := make(chan time.Duration, 2)
	for range 2 {
		go func() {
			start := time.Now()
			_, err := c.R().Get(srv.URL)
			assert.Error(t, err)
			done <- time.Since(start)
		}()
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	for range 2 {
		select {
		case d := <-done:
			assert.Less(t, d, 1500*time.Millisecond, "waited for the gate's bound instead of the failed probe")
		case <-time.After(5 * time.Second):
			t.Fatal("a caller never returned")
		}
	}
}
