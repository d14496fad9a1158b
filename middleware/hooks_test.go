package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/backend/memory"
	"github.com/smartratelimit/smartratelimit/internal/clock"
	"github.com/smartratelimit/smartratelimit/internal/testapi"
	"github.com/smartratelimit/smartratelimit/middleware"
)

// A 429 read with SetDoNotParseResponse (OnAfterResponse does not run) is
// learned before resty retries: the retry waits on the shared block, and
// the last response is learned too.
func TestDoNotParseResponseRetriedAttemptsAreLearned(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Header().Set("X-RateLimit-Limit", "10")
		w.Header().Set("X-RateLimit-Remaining", "3")
		w.Header().Set("X-RateLimit-Reset", "60")
	}))
	t.Cleanup(srv.Close)
	var throttled atomic.Int64
	c, l := newClient(t, middleware.WithHooks(middleware.Hooks{
		OnThrottled: func(string, int, time.Duration) { throttled.Add(1) },
	}))
	l.EnableRetries(c, 1)
	resp, err := c.R().SetDoNotParseResponse(true).Get(srv.URL)
	require.NoError(t, err)
	resp.RawBody().Close()
	assert.Equal(t, 200, resp.StatusCode())
	assert.Equal(t, int64(2), n.Load())
	assert.Equal(t, int64(1), throttled.Load(), "the 429 was learned")
	st, err := l.Status(context.Background(), keyOf(t, srv.URL))
	require.NoError(t, err)
	b, ok := st.Binding()
	require.True(t, ok)
	assert.Equal(t, srl.SourceHeaders, b.Source, "the last response was learned")
	assert.Equal(t, 3.0, b.Remaining)
}

// A redirect to another host brings that host's response: its limits are
// not the key's.
func TestRedirectToAnotherHostIsNotLearned(t *testing.T) {
	other := newServer(t, testapi.Config{Limit: 1, Window: time.Hour, Style: testapi.StyleGitHub})
	origin := httptest.NewServer(http.RedirectHandler(other.URL+"/x", http.StatusFound))
	t.Cleanup(origin.Close)
	c, l := newClient(t, middleware.WithFailFast())
	for range 3 {
		resp, err := c.R().Get(origin.URL)
		require.NoError(t, err, "the origin's own limits (the defaults) allow it")
		_ = resp
	}
	st, err := l.Status(context.Background(), keyOf(t, origin.URL))
	require.NoError(t, err)
	for _, ls := range st.Limits {
		assert.NotEqual(t, srl.SourceHeaders, ls.Source, "learned another host's limits: %+v", ls)
	}
}

// A redirect within the host is the key's response.
func TestRedirectWithinTheHostIsLearned(t *testing.T) {
	api, err := testapi.NewHandler(testapi.Config{Limit: 5, Window: time.Hour, Style: testapi.StyleGitHub})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/old", http.RedirectHandler("/new", http.StatusMovedPermanently))
	mux.Handle("/new", api)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, l := newClient(t)
	_, err = c.R().Get(srv.URL + "/old")
	require.NoError(t, err)
	st, err := l.Status(context.Background(), keyOf(t, srv.URL))
	require.NoError(t, err)
	b, ok := st.Binding()
	require.True(t, ok)
	assert.Equal(t, srl.SourceHeaders, b.Source)
}

// The first request to a key is its probe. When its first attempt fails in
// transport and resty retries, the retry does not wait for the probe's own
// first response (the gate it holds): on a fake clock that would hang.
func TestProbeRetryDoesNotWaitForItself(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close() // a transport error for the client
			}
			return
		}
		w.WriteHeader(200)
	}))
	t.Cleanup(srv.Close)
	fake := clock.NewFake(time.Now())
	c, _ := newClient(t, middleware.WithClock(fake))
	c.SetRetryCount(1).SetRetryWaitTime(time.Millisecond).SetRetryMaxWaitTime(time.Millisecond)
	done := make(chan error, 1)
	go func() {
		_, err := c.R().Get(srv.URL)
		done <- err
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
		assert.Equal(t, int64(2), n.Load())
	case <-time.After(10 * time.Second):
		t.Fatal("the retried probe waits for its own first response")
	}
}

// Host limits another process cleared (through the shared backend) are set
// again within overrideRefresh (30s), keeping their windows when nothing
// cleared them.
func TestHostLimitsComeBackAfterAClear(t *testing.T) {
	srv := newServer(t, testapi.Config{Limit: 100, Window: time.Hour, Style: testapi.StyleNone})
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	fake := clock.NewFake(time.Now())
	be, err := memory.New(memory.WithClock(fake))
	require.NoError(t, err)
	t.Cleanup(func() { be.Close() })
	c, l := newClient(t, middleware.WithClock(fake), middleware.WithBackend(be),
		middleware.WithHostLimits(u.Host, srl.Every(50, time.Hour)))
	key := keyOf(t, srv.URL)
	sources := func() []srl.Source {
		st, err := l.Status(context.Background(), key)
		require.NoError(t, err)
		var s []srl.Source
		for _, ls := range st.Limits {
			s = append(s, ls.Source)
		}
		return s
	}
	_, err = c.R().Get(srv.URL)
	require.NoError(t, err)
	require.Equal(t, []srl.Source{srl.SourceOverride}, sources())
	st, err := l.Status(context.Background(), key)
	require.NoError(t, err)
	require.Equal(t, 49.0, st.Limits[0].Remaining)

	// Another limiter on the same backend clears the key.
	other, err := middleware.New(middleware.WithClock(fake), middleware.WithBackend(be))
	require.NoError(t, err)
	t.Cleanup(func() { other.Close() })
	require.NoError(t, other.Clear(context.Background(), key))

	fake.Advance(31 * time.Second)
	_, err = c.R().Get(srv.URL)
	require.NoError(t, err)
	assert.Equal(t, []srl.Source{srl.SourceOverride}, sources(), "set again")

	// Set again without a clear: the window keeps its count.
	fake.Advance(31 * time.Second)
	_, err = c.R().Get(srv.URL)
	require.NoError(t, err)
	st, err = l.Status(context.Background(), key)
	require.NoError(t, err)
	assert.Equal(t, 48.0, st.Limits[0].Remaining)
}

// recordingBackend records the updates a backend is given.
type recordingBackend struct {
	*memory.Backend
	updates chan srl.Update
}

func (b recordingBackend) Observe(ctx context.Context, key string, u srl.Update) error {
	b.updates <- srl.Update{BlockFor: u.BlockFor, SentSeq: u.SentSeq, SentAgo: u.SentAgo}
	return b.Backend.Observe(ctx, key, u)
}

// On the real clock an attempt is dated by resty's own stamps: sent when
// resty handed it to the transport (Request.Time), answered when resty had
// read the response (ReceivedAt). A backend given with WithBackend counts
// from its Observe call, so the update's SentAgo runs from the send to
// then; the limiter's own memory backend dates the update at the receipt.
func TestRealClockDatesByRestyStamps(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-RateLimit-Limit", "100")
		w.Header().Set("X-RateLimit-Remaining", "50")
		w.Header().Set("X-RateLimit-Reset", "60")
		time.Sleep(2 * time.Millisecond)
	}))
	t.Cleanup(srv.Close)

	mem, err := memory.New()
	require.NoError(t, err)
	rec := recordingBackend{mem, make(chan srl.Update, 4)}
	c, _ := newClient(t, middleware.WithBackend(rec))
	resp, err := c.R().Get(srv.URL)
	require.NoError(t, err)
	upper := time.Since(resp.Request.Time)
	u := <-rec.updates
	assert.GreaterOrEqual(t, u.SentAgo, resp.ReceivedAt().Sub(resp.Request.Time))
	assert.LessOrEqual(t, u.SentAgo, upper)
	assert.GreaterOrEqual(t, u.SentAgo, 2*time.Millisecond)
	require.NoError(t, mem.Close())

	c, l := newClient(t)
	resp, err = c.R().Get(srv.URL)
	require.NoError(t, err)
	st, err := l.Status(context.Background(), keyOf(t, srv.URL))
	require.NoError(t, err)
	assert.True(t, st.LastUsed.Equal(resp.ReceivedAt()), "dated at the receipt: %v, received %v", st.LastUsed, resp.ReceivedAt())
	b, ok := st.Binding()
	require.True(t, ok)
	assert.True(t, b.ResetAt.Equal(resp.ReceivedAt().Add(time.Minute)), "reset counts from the receipt: %v", b.ResetAt)
}

// slowBodyServer answers /429 once with a 429 and Retry-After: 1, and
// /exhausted with nothing remaining until a reset in 2s; both flush their
// headers at once and then take their time over the body, which resty
// reads (SetOutput) before the limiter's hook learns the response.
func slowBodyServer(t *testing.T, body time.Duration) *httptest.Server {
	var first atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/429":
			if !first.Swap(true) {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				w.(http.Flusher).Flush()
				time.Sleep(body)
			}
		case "/exhausted":
			w.Header().Set("X-RateLimit-Limit", "10")
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", "2")
			w.(http.Flusher).Flush()
			time.Sleep(body)
		}
		w.Write([]byte("x"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A Retry-After counts from the response, not from the hook: a 1s
// Retry-After whose body took 1.2s to save is over when it is learned, so
// the next request does not wait, and OnThrottled (whose blockFor counts
// from its call) reports next to nothing left. Both with the limiter's own
// backend (which takes the update dated at the receipt) and with a
// caller's backend (which counts from its Observe call).
func TestRetryAfterCountsFromTheResponse(t *testing.T) {
	for _, own := range []bool{true, false} {
		t.Run(map[bool]string{true: "own backend", false: "caller's backend"}[own], func(t *testing.T) {
			srv := slowBodyServer(t, 1200*time.Millisecond)
			var blockFor atomic.Int64
			blockFor.Store(-1)
			opts := []middleware.Option{middleware.WithHooks(middleware.Hooks{
				OnThrottled: func(_ string, _ int, d time.Duration) { blockFor.Store(int64(d)) },
			})}
			if !own {
				mem, err := memory.New()
				require.NoError(t, err)
				t.Cleanup(func() { mem.Close() })
				opts = append(opts, middleware.WithBackend(mem))
			}
			c, _ := newClient(t, opts...)
			resp, err := c.R().SetOutput(t.TempDir() + "/body").Get(srv.URL + "/429")
			require.NoError(t, err)
			require.Equal(t, http.StatusTooManyRequests, resp.StatusCode())
			require.GreaterOrEqual(t, blockFor.Load(), int64(0), "the 429 was learned")
			assert.Less(t, time.Duration(blockFor.Load()), 100*time.Millisecond, "OnThrottled's blockFor counts from its call")
			start := time.Now()
			resp, err = c.R().Get(srv.URL + "/429")
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode())
			assert.Less(t, time.Since(start), 500*time.Millisecond, "waited for a block that was over")
		})
	}
}

// With the limiter's own backend, a request on the key while an earlier
// response's body was being saved does not move that response's reset:
// it stays 2s after the response was received.
func TestResetStaysWithTheResponseWhenTheKeyWasUsedMeanwhile(t *testing.T) {
	srv := slowBodyServer(t, time.Second)
	c, l := newClient(t)
	_, err := c.R().Get(srv.URL + "/warm")
	require.NoError(t, err)
	done := make(chan error, 1)
	var usedAt atomic.Int64
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, err := c.R().Get(srv.URL + "/warm")
		usedAt.Store(time.Now().UnixNano())
		done <- err
	}()
	resp, err := c.R().SetOutput(t.TempDir() + "/body").Get(srv.URL + "/exhausted")
	learnedBy := time.Now().UnixNano()
	require.NoError(t, err)
	require.NoError(t, <-done)
	require.Less(t, usedAt.Load(), learnedBy, "the key was used while the body was saved (else this tests nothing)")
	st, err := l.Status(context.Background(), keyOf(t, srv.URL))
	require.NoError(t, err)
	b, ok := st.Binding()
	require.True(t, ok)
	// The latest the server's window may end: its reset (2s) and the
	// slack of its rounding after the receipt.
	want := resp.ReceivedAt().Add(2*time.Second + srl.ResetSlack)
	assert.InDelta(t, 0, float64(b.ResetAt.Sub(want)), float64(50*time.Millisecond),
		"reset %v, want 3s after the receipt (%v)", b.ResetAt, want)
}
