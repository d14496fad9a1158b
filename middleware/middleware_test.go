package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
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

func newServer(t *testing.T, cfg testapi.Config) *testapi.Server {
	t.Helper()
	s, err := testapi.NewServer(cfg)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

func newClient(t *testing.T, opts ...middleware.Option) (*resty.Client, *middleware.Limiter) {
	t.Helper()
	c, l, err := middleware.Client(opts...)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return c, l
}

func keyOf(t *testing.T, u string) string {
	k, err := middleware.KeyOf(u)
	require.NoError(t, err)
	return k
}

func TestAttachLearnsFromHeaders(t *testing.T) {
	srv := newServer(t, testapi.Config{Limit: 7, Window: time.Hour, Style: testapi.StyleGitHub})
	c, l := newClient(t)
	for range 3 {
		resp, err := c.R().Get(srv.URL + "/x")
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode())
	}
	st, err := l.Status(context.Background(), keyOf(t, srv.URL))
	require.NoError(t, err)
	b, ok := st.Binding()
	require.True(t, ok)
	assert.Equal(t, srl.SourceHeaders, b.Source)
	assert.Equal(t, 7.0, b.Limit.Limit)
	untilHour := time.Until(time.Now().Truncate(time.Hour).Add(time.Hour))
	assert.Equal(t, middleware.InferWindow(untilHour), b.Limit.Window, "GitHub sends no window: it is inferred from the reset")
	assert.Equal(t, 4.0, b.Remaining)
	assert.InDelta(t, 3.0/7, b.Utilization(), 1e-9)
}

func TestFailFastReturnsTypedError(t *testing.T) {
	srv := newServer(t, testapi.Config{Limit: 2, Window: time.Hour, Style: testapi.StyleIETF})
	c, _ := newClient(t, middleware.WithFailFast())
	for range 2 {
		_, err := c.R().Get(srv.URL)
		require.NoError(t, err)
	}
	start := time.Now()
	_, err := c.R().Get(srv.URL)
	require.Error(t, err)
	assert.Less(t, time.Since(start), time.Second, "fail fast must not wait")
	assert.ErrorIs(t, err, srl.ErrRateLimited)
	var le *srl.LimitError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, keyOf(t, srv.URL), le.Key)
	// The test API's hour windows are aligned to the clock: the wait is
	// until the next full hour, when the server's window ends.
	untilHour := time.Until(time.Now().Truncate(time.Hour).Add(time.Hour))
	assert.InDelta(t, untilHour.Seconds(), le.Wait.Seconds(), 3, "the wait until the server's window ends")
	assert.Equal(t, 2.0, le.Limit.Limit)
	assert.Equal(t, srl.ReasonMaxWait, le.Reason)
	assert.Equal(t, int64(2), srv.Stats().Requests, "the refused request never reached the server")
}

func TestDeadlineShorterThanWaitFailsAtOnceAndReservesNothing(t *testing.T) {
	srv := newServer(t, testapi.Config{Limit: 1, Window: time.Hour, Style: testapi.StyleNone})
	c, l := newClient(t, middleware.WithDefaults(srl.Every(1, time.Hour)))
	_, err := c.R().Get(srv.URL)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.R().SetContext(ctx).Get(srv.URL)
	assert.Less(t, time.Since(start), 150*time.Millisecond, "must not wait for a slot beyond the deadline")
	var le *srl.LimitError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, srl.ReasonDeadline, le.Reason)
	st, err := l.Status(context.Background(), keyOf(t, srv.URL))
	require.NoError(t, err)
	assert.Zero(t, st.Limits[0].Reserved, "nothing reserved")
}

func TestMaxWait(t *testing.T) {
	srv := newServer(t, testapi.Config{Limit: 1, Window: time.Hour, Style: testapi.StyleNone})
	c, _ := newClient(t, middleware.WithDefaults(srl.Every(1, time.Hour)), middleware.WithMaxWait(time.Second))
	_, err := c.R().Get(srv.URL)
	require.NoError(t, err)
	_, err = c.R().Get(srv.URL)
	var le *srl.LimitError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, srl.ReasonMaxWait, le.Reason)
}

func TestWaitsForSlotsPaced(t *testing.T) {
	srv := newServer(t, testapi.Config{Limit: 1000, Window: time.Hour, Style: testapi.StyleNone})
	var waits atomic.Int64
	c, _ := newClient(t, middleware.WithDefaults(srl.Every(5, 500*time.Millisecond)),
		middleware.WithHooks(middleware.Hooks{OnWait: func(string, time.Duration) { waits.Add(1) }}))
	start := time.Now()
	var wg sync.WaitGroup
	for range 15 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.R().Get(srv.URL)
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	// 5 at once, then 5 paced over the next window, then 5 over the one after.
	assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond)
	assert.Equal(t, int64(10), waits.Load())
}

func TestBlockedHostWaitsForEveryCaller(t *testing.T) {
	srv := newServer(t, testapi.Config{Limit: 1, Window: 2 * time.Second, Style: testapi.StyleRetryAfter})
	var throttled atomic.Int64
	c, l := newClient(t, middleware.WithDefaults(srl.Every(100, time.Second)),
		middleware.WithHooks(middleware.Hooks{OnThrottled: func(string, int, time.Duration) { throttled.Add(1) }}))
	// The defaults allow 100/s, the server 1 per 2s: the second request gets a 429.
	_, err := c.R().Get(srv.URL)
	require.NoError(t, err)
	resp, err := c.R().Get(srv.URL)
	require.NoError(t, err)
	require.Equal(t, 429, resp.StatusCode())
	assert.Equal(t, int64(1), throttled.Load())
	st, err := l.Status(context.Background(), keyOf(t, srv.URL))
	require.NoError(t, err)
	assert.True(t, st.BlockedUntil.After(time.Now()), "the host is blocked")
	// Every caller now waits for the block; none is sent meanwhile.
	before := srv.Stats().Requests
	_, err = c.R().SetContext(ctxTimeout(t, 100*time.Millisecond)).Get(srv.URL)
	var le *srl.LimitError
	require.ErrorAs(t, err, &le)
	assert.True(t, le.Blocked)
	assert.Equal(t, before, srv.Stats().Requests)
	resp, err = c.R().Get(srv.URL)
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode(), "sent after the Retry-After")
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestRelativeURLWithBaseAndNoSecretsInKeys(t *testing.T) {
	srv := newServer(t, testapi.Config{Limit: 100, Window: time.Hour})
	c, l := newClient(t, middleware.WithPartitionByAuthorization())
	base := strings.Replace(srv.URL, "http://", "http://user:secret@", 1)
	c.SetBaseURL(base)
	_, err := c.R().SetAuthToken("tok-AAA").Get("/items?api_key=qsecret")
	require.NoError(t, err)
	_, err = c.R().SetAuthToken("tok-BBB").Get("items")
	require.NoError(t, err)
	keys, err := l.Keys(context.Background())
	require.NoError(t, err)
	require.Len(t, keys, 2, "one bucket per credential")
	for _, k := range keys {
		assert.True(t, strings.HasPrefix(k, keyOf(t, srv.URL)+"#"), k)
		for _, secret := range []string{"secret", "tok-", "AAA", "BBB", "qsecret", "user", "items"} {
			assert.NotContains(t, k, secret)
		}
	}
}

func TestScopeSeparatesPathPrefix(t *testing.T) {
	srv := newServer(t, testapi.Config{Limit: 100, Window: time.Hour})
	host := strings.TrimPrefix(srv.URL, "http://")
	c, l := newClient(t, middleware.WithScope(host, "/search"))
	for _, p := range []string{"/search/code", "/repos", "/search"} {
		_, err := c.R().Get(srv.URL + p)
		require.NoError(t, err)
	}
	keys, err := l.Keys(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{keyOf(t, srv.URL), keyOf(t, srv.URL) + "/search"}, keys)
}

func TestHostLimitsOverride(t *testing.T) {
	srv := newServer(t, testapi.Config{Limit: 100, Window: time.Hour, Style: testapi.StyleGitHub})
	host := strings.TrimPrefix(srv.URL, "http://")
	c, l := newClient(t, middleware.WithFailFast(), middleware.WithHostLimits(host, srl.Every(2, time.Hour)))
	for range 2 {
		_, err := c.R().Get(srv.URL)
		require.NoError(t, err)
	}
	_, err := c.R().Get(srv.URL)
	require.ErrorIs(t, err, srl.ErrRateLimited, "the override is lower than the server's limit and applies with it")
	st, err := l.Status(context.Background(), keyOf(t, srv.URL))
	require.NoError(t, err)
	var sources []srl.Source
	for _, ls := range st.Limits {
		sources = append(sources, ls.Source)
	}
	assert.ElementsMatch(t, []srl.Source{srl.SourceOverride, srl.SourceHeaders}, sources)
}

func TestLearnsWithDoNotParseResponseAndRetries(t *testing.T) {
	srv := newServer(t, testapi.Config{Limit: 5, Window: time.Hour, Style: testapi.StyleGitHub})
	c, l := newClient(t)
	resp, err := c.R().SetDoNotParseResponse(true).Get(srv.URL)
	require.NoError(t, err)
	resp.RawBody().Close()
	st, err := l.Status(context.Background(), keyOf(t, srv.URL))
	require.NoError(t, err)
	b, _ := st.Binding()
	assert.Equal(t, srl.SourceHeaders, b.Source, "learned without OnAfterResponse")
	assert.Equal(t, 4.0, b.Remaining)
}

func TestRetryIntegrationRetriesAtServersTime(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			return
		}
		w.WriteHeader(200)
	}))
	t.Cleanup(srv.Close)
	c, l := newClient(t)
	l.EnableRetries(c, 2)
	start := time.Now()
	resp, err := c.R().Get(srv.URL)
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode())
	assert.Equal(t, int64(2), n.Load())
	assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond, "retried at the Retry-After time")
}

func TestRetryBeyondMaxWaitStops(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(429)
	}))
	t.Cleanup(srv.Close)
	c, l := newClient(t, middleware.WithMaxWait(time.Second))
	l.EnableRetries(c, 3)
	_, err := c.R().Get(srv.URL)
	assert.ErrorIs(t, err, srl.ErrRateLimited)
	assert.Equal(t, int64(1), n.Load())
}

func TestCustomHeaderMapping(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Quota-Max", "3")
		w.Header().Set("X-Quota-Left", "0")
		w.Header().Set("X-Quota-Reset-Ms", "60000")
	}))
	t.Cleanup(srv.Close)
	m, err := headerparse.ParseMapping("limit=X-Quota-Max,remaining=X-Quota-Left,reset=X-Quota-Reset-Ms,reset_format=delta_ms,window=1m")
	require.NoError(t, err)
	c, _ := newClient(t, middleware.WithHeaderMapping(m), middleware.WithFailFast())
	_, err = c.R().Get(srv.URL)
	require.NoError(t, err)
	_, err = c.R().Get(srv.URL)
	var le *srl.LimitError
	require.ErrorAs(t, err, &le)
	assert.InDelta(t, 60, le.Wait.Seconds(), 2)
}

func TestInvalidInputIsATypedError(t *testing.T) {
	c, _ := newClient(t)
	_, err := c.R().Get("/relative-without-base")
	assert.ErrorIs(t, err, middleware.ErrInvalidURL)
	_, err = middleware.New(middleware.WithMaxWait(-1))
	assert.ErrorIs(t, err, srl.ErrInvalidLimit)
	_, err = middleware.New(middleware.WithDefaultLimits(-5, 0, 0))
	assert.ErrorIs(t, err, srl.ErrInvalidLimit)
	_, err = middleware.New(middleware.WithScope("h", "no-slash"))
	assert.ErrorIs(t, err, srl.ErrInvalidLimit)
}

func TestTokenCostAgainstOpenAIQuota(t *testing.T) {
	srv := newServer(t, testapi.Config{Limit: 100, TokenLimit: 50, Window: time.Minute, Style: testapi.StyleOpenAI})
	c, _ := newClient(t, middleware.WithFailFast())
	send := func(tokens float64) error {
		ctx := middleware.WithRequestCost(context.Background(), srl.Cost{Dimension: srl.DimTokens, Amount: tokens})
		_, err := c.R().SetContext(ctx).SetHeader("X-Test-Tokens", "20").Get(srv.URL)
		return err
	}
	require.NoError(t, send(20)) // learns 50 tokens, 30 left
	require.NoError(t, send(20)) // 10 left
	err := send(20)
	assert.ErrorIs(t, err, srl.ErrRateLimited, "the token quota refuses before the server does")
	assert.Zero(t, srv.Stats().Throttled)
}

func TestCloseWakesWaitersAndRefusesLater(t *testing.T) {
	before := runtime.NumGoroutine()
	srv := newServer(t, testapi.Config{Limit: 100, Window: time.Hour, Style: testapi.StyleNone})
	c, l, err := middleware.Client(middleware.WithDefaults(srl.Every(1, time.Hour)))
	require.NoError(t, err)
	_, err = c.R().Get(srv.URL)
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() {
		_, err := c.R().Get(srv.URL)
		errc <- err
	}()
	require.Eventually(t, func() bool {
		st, err := l.Status(context.Background(), keyOf(t, srv.URL))
		return err == nil && st.Waiting == 1
	}, 5*time.Second, 5*time.Millisecond, "one caller waits")
	require.NoError(t, l.Close())
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, srl.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not woken by Close")
	}
	_, err = c.R().Get(srv.URL)
	assert.ErrorIs(t, err, srl.ErrClosed)
	c.GetClient().CloseIdleConnections()
	srv.Close()
	// A plain loop: testify's Eventually runs its condition on goroutines
	// of its own, which would be counted.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if runtime.NumGoroutine() > before {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines leaked: %d before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
	}
}

func TestKeyOf(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://API.GitHub.com/repos?x=1", "https://api.github.com:443"},
		{"http://user:pw@example.com:8080/a", "http://example.com:8080"},
		{"http://[::1]:9000/", "http://[::1]:9000"},
	} {
		got, err := middleware.KeyOf(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got)
	}
	_, err := middleware.KeyOf("not a url")
	assert.True(t, errors.Is(err, middleware.ErrInvalidURL))
}

// A window inferred from the time to reset only shows its full length
// right after a reset; the limiter keeps the longest one seen.
func TestInferredWindowConverges(t *testing.T) {
	var n atomic.Int64
	resets := []time.Duration{10 * time.Minute, 59 * time.Minute, 58 * time.Minute}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := min(int(n.Add(1))-1, len(resets)-1)
		now := time.Now()
		w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", "4000")
		w.Header().Set("X-RateLimit-Reset", fmt.Sprint(now.Add(resets[i]).Unix()))
	}))
	t.Cleanup(srv.Close)
	c, l := newClient(t)
	var windows []time.Duration
	for range resets {
		_, err := c.R().Get(srv.URL)
		require.NoError(t, err)
		st, err := l.Status(context.Background(), keyOf(t, srv.URL))
		require.NoError(t, err)
		b, _ := st.Binding()
		windows = append(windows, b.Window)
	}
	assert.Equal(t, []time.Duration{15 * time.Minute, time.Hour, time.Hour}, windows)
}
