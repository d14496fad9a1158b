package testapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTestServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := NewServer(cfg)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

func fetch(t *testing.T, c *http.Client, method, u string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func TestServerLoopbackIETF(t *testing.T) {
	clk := newFakeClock(t0)
	s := newTestServer(t, Config{Limit: 2, Window: time.Second, Style: StyleIETF, Now: clk.Now})
	u, err := url.Parse(s.URL)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", u.Hostname())

	c := s.Client()
	resp, body := fetch(t, c, http.MethodGet, s.URL+"/repos/x", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, `{"ok":true,"n":1}`, body)
	assert.Equal(t, "Fri, 02 Jan 2026 03:04:05 GMT", resp.Header.Get("Date"))
	assert.Equal(t, `"default";q=2;w=1`, resp.Header.Get("RateLimit-Policy"))
	assert.Equal(t, `"default";r=1;t=1`, resp.Header.Get("RateLimit"))

	fetch(t, c, http.MethodGet, s.URL+"/", nil)
	resp, body = fetch(t, c, http.MethodGet, s.URL+"/", nil)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, `{"error":"rate limited"}`, body)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))

	resp, body = fetch(t, c, http.MethodGet, s.URL+"/stats", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var st Stats
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	assert.Equal(t, Stats{Requests: 3, OK: 2, Throttled: 1, MaxPerWindow: 3, Windows: []WindowCount{
		{Start: time.Unix(1767323045, 0).UTC(), Requests: 3, Throttled: 1},
	}}, st)

	resp, _ = fetch(t, c, http.MethodPost, s.URL+"/reset", nil)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Equal(t, int64(0), s.Stats().Requests)
}

func TestServerGitHubRealClock(t *testing.T) {
	s := newTestServer(t, Config{Limit: 5, Window: time.Hour})
	resp, _ := fetch(t, http.DefaultClient, http.MethodGet, s.URL+"/", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	date, err := http.ParseTime(resp.Header.Get("Date"))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), date, 2*time.Second)
	wantReset := time.Now().Truncate(time.Hour).Add(time.Hour).Unix()
	assert.Equal(t, wantReset, mustInt(t, resp.Header.Get("X-RateLimit-Reset")))
	assert.Equal(t, "4", resp.Header.Get("X-RateLimit-Remaining"))
	http.DefaultClient.CloseIdleConnections()
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, json.Unmarshal([]byte(s), &n), s)
	return n
}

// TestServerStorm fires many concurrent requests into one window: exactly
// Limit are admitted, and every one is counted.
func TestServerStorm(t *testing.T) {
	clk := newFakeClock(t0) // the clock stands still: one window
	const limit, workers, each = 50, 16, 25
	s := newTestServer(t, Config{Limit: limit, Window: time.Second, Now: clk.Now})
	c := s.Client()
	var ok, limited atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				resp, err := c.Get(s.URL + "/")
				if !assert.NoError(t, err) {
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusTooManyRequests:
					limited.Add(1)
				}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(limit), ok.Load())
	assert.Equal(t, int64(workers*each-limit), limited.Load())
	st := s.Stats()
	assert.Equal(t, int64(workers*each), st.Requests)
	assert.Equal(t, int64(workers*each), st.MaxPerWindow)
}

// TestServerCloseReleases checks that Close cuts a Latency sleep short and
// leaves no goroutine behind, on either side.
func TestServerCloseReleases(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := NewServer(Config{Latency: time.Hour})
	require.NoError(t, err)
	c := s.Client()
	errc := make(chan error, 1)
	go func() {
		resp, err := c.Get(s.URL + "/slow")
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	require.Eventually(t, func() bool { return s.Stats().Requests == 1 }, 5*time.Second, time.Millisecond)

	start := time.Now()
	s.Close()
	s.Close() // idempotent
	assert.Less(t, time.Since(start), 5*time.Second)
	select {
	case <-errc: // the connection was closed under the request
	case <-time.After(5 * time.Second):
		t.Fatal("client still waiting after Close")
	}
	// Polled by hand: assert.Eventually runs its condition on a goroutine.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: before %d, now %d\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestServerLatency(t *testing.T) {
	s := newTestServer(t, Config{Latency: 300 * time.Millisecond, Limit: 1, Window: time.Hour})
	start := time.Now()
	resp, _ := fetch(t, s.Client(), http.MethodGet, s.URL+"/", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	// A throttled response does not wait.
	start = time.Now()
	resp, _ = fetch(t, s.Client(), http.MethodGet, s.URL+"/", nil)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Less(t, time.Since(start), 300*time.Millisecond)
}
