package middleware_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/testapi"
	"github.com/smartratelimit/smartratelimit/middleware"
)

func TestRelativeURLWithSchemeInQuery(t *testing.T) {
	srv := newServer(t, testapi.Config{Limit: 100, Window: time.Hour})
	c, l := newClient(t)
	c.SetBaseURL(srv.URL)
	resp, err := c.R().Get("/login?next=https://example.com/")
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode())
	keys, err := l.Keys(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{keyOf(t, srv.URL)}, keys)
}

// failing is a backend whose store is broken: every call fails.
type failing struct{ srl.Backend }

var errStoreBroken = errors.New("store broken")

func (failing) Acquire(ctx context.Context, _ srl.AcquireRequest) (srl.Reservation, error) {
	return srl.Reservation{}, errStoreBroken
}

// slow is a backend whose store does not answer: the caller's deadline
// passes during the call.
type slow struct{ srl.Backend }

func (slow) Acquire(ctx context.Context, _ srl.AcquireRequest) (srl.Reservation, error) {
	<-ctx.Done()
	return srl.Reservation{}, ctx.Err()
}

func TestBackendFailureIsNeverRateLimited(t *testing.T) {
	srv := newServer(t, testapi.Config{Limit: 100, Window: time.Hour})
	c, _ := newClient(t, middleware.WithBackend(failing{}))
	_, err := c.R().SetContext(ctxTimeout(t, 50*time.Millisecond)).Get(srv.URL)
	require.Error(t, err)
	assert.ErrorIs(t, err, srl.ErrBackendUnavailable)
	assert.ErrorIs(t, err, errStoreBroken)
	assert.False(t, errors.Is(err, srl.ErrRateLimited), "a backend failure reported as rate limited: %v", err)

	// The caller's deadline passing during the call is the caller's
	// context, reported as such: neither rate limited nor a backend outage.
	c, _ = newClient(t, middleware.WithBackend(slow{}))
	_, err = c.R().SetContext(ctxTimeout(t, 50*time.Millisecond)).Get(srv.URL)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.False(t, errors.Is(err, srl.ErrBackendUnavailable), "a caller's deadline reported as a backend outage: %v", err)
	assert.False(t, errors.Is(err, srl.ErrRateLimited), "a backend failure reported as rate limited: %v", err)
	assert.Zero(t, srv.Stats().Requests)
}

func TestCloseIsNotRateLimited(t *testing.T) {
	srv := newServer(t, testapi.Config{Limit: 100, Window: time.Hour, Style: testapi.StyleNone})
	var refusals atomic.Int64
	c, l, err := middleware.Client(middleware.WithDefaults(srl.Every(1, time.Hour)),
		middleware.WithHooks(middleware.Hooks{OnRefuse: func(*srl.LimitError) { refusals.Add(1) }}))
	require.NoError(t, err)
	_, err = c.R().Get(srv.URL)
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() { _, err := c.R().Get(srv.URL); errc <- err }()
	require.Eventually(t, func() bool {
		st, err := l.Status(context.Background(), keyOf(t, srv.URL))
		return err == nil && st.Waiting == 1
	}, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, l.Close())
	err = <-errc
	assert.ErrorIs(t, err, srl.ErrClosed)
	assert.False(t, errors.Is(err, srl.ErrRateLimited), "closing is not a rate limit")
	assert.Zero(t, refusals.Load(), "OnRefuse is for refusals, not shutdown")
}

// Callers that give up while they wait give their slots back when they are
// the latest grant, so waiters leaving newest first free every slot.
func TestCancelledWaitersGiveTheirSlotsBack(t *testing.T) {
	l, err := middleware.New(middleware.WithDefaults(srl.Every(2, time.Second)))
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	key := "https://cancel.example:443"
	ctx := context.Background()
	require.NoError(t, l.Wait(ctx, key))
	require.NoError(t, l.Wait(ctx, key))
	// 10 waiters reserve slots over the next 5 seconds, each with its own
	// context; they give up newest first.
	var cancels []context.CancelFunc
	errs := make([]chan error, 10)
	for i := range 10 {
		cctx, cancel := context.WithCancel(ctx)
		cancels = append(cancels, cancel)
		errs[i] = make(chan error, 1)
		go func() { errs[i] <- l.Wait(cctx, key) }()
		require.Eventually(t, func() bool {
			st, err := l.Status(ctx, key)
			return err == nil && st.Waiting == i+1
		}, 5*time.Second, time.Millisecond)
	}
	for i := 9; i >= 0; i-- {
		cancels[i]()
		assert.ErrorIs(t, <-errs[i], srl.ErrRateLimited)
	}
	st, err := l.Status(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), st.Seq, "every cancelled grant was taken back")
	assert.Zero(t, st.Limits[0].Reserved)
	// A new caller gets the first slot of the next window, not the 11th.
	start := time.Now()
	require.NoError(t, l.Wait(ctx, key))
	assert.Less(t, time.Since(start), 1500*time.Millisecond)
}

func TestScopeIsAPathBoundary(t *testing.T) {
	srv := newServer(t, testapi.Config{Limit: 100, Window: time.Hour})
	host := strings.TrimPrefix(srv.URL, "http://")
	c, l := newClient(t, middleware.WithScope(host, "/search"))
	for _, p := range []string{"/searchable", "/search/code"} {
		_, err := c.R().Get(srv.URL + p)
		require.NoError(t, err)
	}
	keys, err := l.Keys(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{keyOf(t, srv.URL), keyOf(t, srv.URL) + "/search"}, keys)
}

// 503 with Retry-After and 403 with nothing remaining block the key for
// every caller; a 429 without a hint blocks for WithDefaultBlock.
func TestOtherRateLimitStatusesBlock(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers map[string]string
		status  int
		block   time.Duration
	}{
		{"503 Retry-After", map[string]string{"Retry-After": "3"}, 503, 3 * time.Second},
		{"403 exhausted", map[string]string{"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "4"}, 403, 4 * time.Second},
		{"429 without a hint", nil, 429, 1500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.headers {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
			}))
			t.Cleanup(srv.Close)
			var blocked time.Duration
			c, _ := newClient(t, middleware.WithFailFast(), middleware.WithDefaultBlock(1500*time.Millisecond),
				middleware.WithHooks(middleware.Hooks{OnThrottled: func(_ string, _ int, d time.Duration) { blocked = d }}))
			resp, err := c.R().Get(srv.URL)
			require.NoError(t, err)
			require.Equal(t, tc.status, resp.StatusCode())
			assert.InDelta(t, tc.block.Seconds(), blocked.Seconds(), 1)
			_, err = c.R().Get(srv.URL)
			var le *srl.LimitError
			require.ErrorAs(t, err, &le)
			assert.True(t, le.Blocked || le.Limit.Limit > 0)
			assert.InDelta(t, tc.block.Seconds(), le.Wait.Seconds(), 1.1)
		})
	}
}

func TestClearAllForgetsEverything(t *testing.T) {
	srv := newServer(t, testapi.Config{Limit: 1, Window: time.Hour, Style: testapi.StyleGitHub})
	c, l := newClient(t, middleware.WithFailFast())
	_, err := c.R().Get(srv.URL)
	require.NoError(t, err)
	require.NoError(t, l.ClearAll(context.Background()))
	keys, err := l.Keys(context.Background())
	require.NoError(t, err)
	assert.Empty(t, keys)
}

func TestPartitionSecretKeysTheHash(t *testing.T) {
	srv := newServer(t, testapi.Config{Limit: 100, Window: time.Hour})
	keyWith := func(opts ...middleware.Option) string {
		c, l := newClient(t, append(opts, middleware.WithPartitionByAuthorization())...)
		_, err := c.R().SetAuthToken("same-token").Get(srv.URL)
		require.NoError(t, err)
		keys, err := l.Keys(context.Background())
		require.NoError(t, err)
		require.Len(t, keys, 1)
		return keys[0]
	}
	a := keyWith(middleware.WithPartitionSecret([]byte("0123456789abcdef-one")))
	b := keyWith(middleware.WithPartitionSecret([]byte("0123456789abcdef-two")))
	assert.NotEqual(t, a, b, "the secret keys the hash")
	assert.Equal(t, a, keyWith(middleware.WithPartitionSecret([]byte("0123456789abcdef-one"))), "stable across limiters")
	_, err := middleware.New(middleware.WithPartitionSecret([]byte("short")))
	assert.ErrorIs(t, err, srl.ErrInvalidLimit)
}

func TestDefaultLimitsAreSecondMinuteHour(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	c, l := newClient(t)
	_, err := c.R().Get(srv.URL)
	require.NoError(t, err)
	st, err := l.Status(context.Background(), keyOf(t, srv.URL))
	require.NoError(t, err)
	var got []string
	for _, ls := range st.Limits {
		assert.Equal(t, srl.SourceDefaults, ls.Source)
		got = append(got, ls.Limit.String())
	}
	assert.Equal(t, []string{"10 requests/1s", "300 requests/1m0s", "10000 requests/1h0m0s"}, got)
}

func TestEnableRetriesRetries503WithRetryAfter(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(503)
			return
		}
	}))
	t.Cleanup(srv.Close)
	c, l := newClient(t)
	l.EnableRetries(c, 2)
	start := time.Now()
	resp, err := c.R().Get(srv.URL)
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode())
	assert.Equal(t, int64(2), n.Load())
	assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond)
	// A plain 503 (no retry hint) is not a rate limit: not retried by this condition.
	assert.False(t, l.RetryCondition(&resty.Response{RawResponse: &http.Response{StatusCode: 503, Header: http.Header{}}}, nil))
}
