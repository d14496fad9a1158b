package testapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is a settable Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *fakeClock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// t0 is 250ms into the epoch second 1767323045 (2026-01-02T03:04:05Z).
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 250_000_000, time.UTC)

func newTestHandler(t *testing.T, cfg Config) (*Handler, *fakeClock) {
	t.Helper()
	clk := newFakeClock(t0)
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	h, err := NewHandler(cfg)
	require.NoError(t, err)
	return h, clk
}

// do sends one request through h and returns the recorded response.
func do(h http.Handler, method, path string, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://testapi"+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func get(h http.Handler) *httptest.ResponseRecorder { return do(h, http.MethodGet, "/", nil) }

// limitHeaders are every rate-limit field any style may send.
var limitHeaders = []string{
	"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Used", "X-RateLimit-Reset", "X-RateLimit-Resource",
	"RateLimit", "RateLimit-Policy", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
	"x-ratelimit-limit-requests", "x-ratelimit-limit-tokens", "x-ratelimit-remaining-requests",
	"x-ratelimit-remaining-tokens", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens",
	"Retry-After", "retry-after-ms",
}

// limitFields returns the rate-limit fields of hdr, keyed as in limitHeaders.
func limitFields(hdr http.Header) map[string]string {
	got := map[string]string{}
	for _, k := range limitHeaders {
		if vs := hdr.Values(k); len(vs) > 0 {
			got[k] = vs[0]
			if len(vs) > 1 {
				got[k] = "DUPLICATE"
			}
		}
	}
	return got
}

func TestStyleHeaders(t *testing.T) {
	// Limit 3 per second; t0 is 250ms into a window, so the reset is 750ms away
	// at epoch second 1767323046.
	tests := []struct {
		style        Style
		first, limit map[string]string // after request 1 (200) and request 4 (429)
	}{
		{
			style: StyleGitHub,
			first: map[string]string{"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "2", "X-RateLimit-Used": "1",
				"X-RateLimit-Reset": "1767323046", "X-RateLimit-Resource": "core"},
			limit: map[string]string{"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "0", "X-RateLimit-Used": "3",
				"X-RateLimit-Reset": "1767323046", "X-RateLimit-Resource": "core", "Retry-After": "1"},
		},
		{
			style: StyleIETF,
			first: map[string]string{"RateLimit-Policy": `"default";q=3;w=1`, "RateLimit": `"default";r=2;t=1`},
			limit: map[string]string{"RateLimit-Policy": `"default";q=3;w=1`, "RateLimit": `"default";r=0;t=1`, "Retry-After": "1"},
		},
		{
			style: StyleIETFLegacy,
			first: map[string]string{"RateLimit-Limit": "3", "RateLimit-Remaining": "2", "RateLimit-Reset": "1", "RateLimit-Policy": "3;w=1"},
			limit: map[string]string{"RateLimit-Limit": "3", "RateLimit-Remaining": "0", "RateLimit-Reset": "1", "RateLimit-Policy": "3;w=1", "Retry-After": "1"},
		},
		{
			style: StyleOpenAI,
			first: map[string]string{"x-ratelimit-limit-requests": "3", "x-ratelimit-limit-tokens": "300",
				"x-ratelimit-remaining-requests": "2", "x-ratelimit-remaining-tokens": "290",
				"x-ratelimit-reset-requests": "750ms", "x-ratelimit-reset-tokens": "750ms"},
			limit: map[string]string{"x-ratelimit-limit-requests": "3", "x-ratelimit-limit-tokens": "300",
				"x-ratelimit-remaining-requests": "0", "x-ratelimit-remaining-tokens": "270",
				"x-ratelimit-reset-requests": "750ms", "x-ratelimit-reset-tokens": "750ms",
				"Retry-After": "1", "retry-after-ms": "750"},
		},
		{style: StyleRetryAfter, first: map[string]string{}, limit: map[string]string{"Retry-After": "1"}},
		{style: StyleNone, first: map[string]string{}, limit: map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(string(tt.style), func(t *testing.T) {
			h, clk := newTestHandler(t, Config{Limit: 3, Window: time.Second, Style: tt.style})

			rec := get(h)
			require.Equal(t, http.StatusOK, rec.Code)
			assert.Equal(t, `{"ok":true,"n":1}`, rec.Body.String())
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			assert.Equal(t, "Fri, 02 Jan 2026 03:04:05 GMT", rec.Header().Get("Date"))
			assert.Equal(t, tt.first, limitFields(rec.Header()))

			require.Equal(t, http.StatusOK, get(h).Code)
			require.Equal(t, http.StatusOK, get(h).Code)
			rec = get(h)
			require.Equal(t, http.StatusTooManyRequests, rec.Code)
			assert.Equal(t, `{"error":"rate limited"}`, rec.Body.String())
			assert.Equal(t, tt.limit, limitFields(rec.Header()))
			assert.NotEmpty(t, rec.Header().Get("Date"))

			clk.Set(t0.Truncate(time.Second).Add(time.Second)) // next window
			rec = get(h)
			require.Equal(t, http.StatusOK, rec.Code)
			assert.Equal(t, `{"ok":true,"n":5}`, rec.Body.String())
			assert.Equal(t, "Fri, 02 Jan 2026 03:04:06 GMT", rec.Header().Get("Date"))
		})
	}
}

func TestDefaultsIETF(t *testing.T) {
	h, _ := newTestHandler(t, Config{Style: StyleIETF})
	cfg := h.Config()
	assert.Equal(t, 20, cfg.Limit)
	assert.Equal(t, time.Second, cfg.Window)
	assert.Equal(t, FixedWindow, cfg.Algorithm)
	assert.Equal(t, 2000, cfg.TokenLimit)

	rec := get(h)
	assert.Equal(t, `"default";q=20;w=1`, rec.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"default";r=19;t=1`, rec.Header().Get("RateLimit"))

	h, _ = newTestHandler(t, Config{})
	assert.Equal(t, StyleGitHub, h.Config().Style)
}

func TestWholeSecondFieldsRoundUp(t *testing.T) {
	// A 250ms window starting at t0; 2.5s windows reset 2.25s after t0.
	tests := []struct {
		window                time.Duration
		policy, limit, github string
	}{
		{250 * time.Millisecond, `"default";q=1;w=1`, `"default";r=0;t=1`, "1767323046"},
		{2500 * time.Millisecond, `"default";q=1;w=3`, `"default";r=0;t=3`, "1767323048"},
	}
	for _, tt := range tests {
		t.Run(tt.window.String(), func(t *testing.T) {
			h, _ := newTestHandler(t, Config{Limit: 1, Window: tt.window, Style: StyleIETF})
			rec := get(h)
			assert.Equal(t, tt.policy, rec.Header().Get("RateLimit-Policy"))
			assert.Equal(t, tt.limit, rec.Header().Get("RateLimit"))

			h, _ = newTestHandler(t, Config{Limit: 1, Window: tt.window})
			assert.Equal(t, tt.github, get(h).Header().Get("X-RateLimit-Reset"))
		})
	}
}

func TestTokenBucketRefill(t *testing.T) {
	// 10 per second: one token every 100ms. X-Test-Tokens 0 keeps the token
	// dimension out of the way.
	h, clk := newTestHandler(t, Config{Limit: 10, Window: time.Second, Algorithm: TokenBucket, Style: StyleOpenAI})
	zero := map[string]string{"X-Test-Tokens": "0"}
	type want struct {
		code      int
		remaining string
		reset     string
		retryMs   string
	}
	check := func(w want) {
		t.Helper()
		rec := do(h, http.MethodGet, "/", zero)
		got := want{rec.Code, rec.Header().Get("x-ratelimit-remaining-requests"),
			rec.Header().Get("x-ratelimit-reset-requests"), rec.Header().Get("retry-after-ms")}
		assert.Equal(t, w, got)
	}
	for k := 1; k <= 10; k++ {
		check(want{200, strconv.Itoa(10 - k), (time.Duration(k) * 100 * time.Millisecond).String(), ""})
	}
	check(want{429, "0", "1s", "100"})
	clk.Add(40 * time.Millisecond)
	check(want{429, "0", "960ms", "60"})
	clk.Add(60 * time.Millisecond) // one token back
	check(want{200, "0", "1s", ""})
	check(want{429, "0", "1s", "100"})
	clk.Add(250 * time.Millisecond) // 2.5 tokens
	check(want{200, "1", "850ms", ""})
	clk.Add(10 * time.Second) // full, and no more than full
	check(want{200, "9", "100ms", ""})

	// The same bucket in the IETF style: t is the time until full.
	h, _ = newTestHandler(t, Config{Limit: 2, Window: 10 * time.Second, Algorithm: TokenBucket, Style: StyleIETF})
	assert.Equal(t, `"default";r=1;t=5`, get(h).Header().Get("RateLimit"))
	rec := get(h)
	assert.Equal(t, `"default";r=0;t=10`, rec.Header().Get("RateLimit"))
	rec = get(h)
	assert.Equal(t, http.StatusTooManyRequests, rec.Code)
	assert.Equal(t, `"default";r=0;t=10`, rec.Header().Get("RateLimit"))
	assert.Equal(t, "5", rec.Header().Get("Retry-After"))
}

func TestOpenAITokens(t *testing.T) {
	h, clk := newTestHandler(t, Config{Limit: 5, Window: time.Second, TokenLimit: 100, Style: StyleOpenAI})
	tokens := func(n string) *httptest.ResponseRecorder {
		return do(h, http.MethodPost, "/v1/chat", map[string]string{"X-Test-Tokens": n})
	}
	rec := tokens("60")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "40", rec.Header().Get("x-ratelimit-remaining-tokens"))

	rec = tokens("50") // not enough tokens: limited, and nothing consumed
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	assert.Equal(t, "4", rec.Header().Get("x-ratelimit-remaining-requests"))
	assert.Equal(t, "40", rec.Header().Get("x-ratelimit-remaining-tokens"))
	assert.Equal(t, "750", rec.Header().Get("retry-after-ms"))

	rec = tokens("40")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "3", rec.Header().Get("x-ratelimit-remaining-requests"))
	assert.Equal(t, "0", rec.Header().Get("x-ratelimit-remaining-tokens"))

	for _, bad := range []string{"x", "-1", "1.5", "101"} {
		rec = tokens(bad)
		assert.Equal(t, http.StatusBadRequest, rec.Code, bad)
	}
	clk.Add(time.Second)
	assert.Equal(t, http.StatusOK, tokens("100").Code)

	s := h.Stats()
	assert.Equal(t, Stats{Requests: 8, OK: 3, Throttled: 1, Rejected: 4, MaxPerWindow: 3, Windows: []WindowCount{
		{Start: time.Unix(1767323045, 0).UTC(), Requests: 3, Throttled: 1},
		{Start: time.Unix(1767323046, 0).UTC(), Requests: 1},
	}}, s)

	// The token bucket refills tokens like requests: 100 per second.
	h, clk = newTestHandler(t, Config{Limit: 5, Window: time.Second, TokenLimit: 100, Style: StyleOpenAI, Algorithm: TokenBucket})
	rec = do(h, http.MethodGet, "/", map[string]string{"X-Test-Tokens": "100"})
	assert.Equal(t, "0", rec.Header().Get("x-ratelimit-remaining-tokens"))
	assert.Equal(t, "1s", rec.Header().Get("x-ratelimit-reset-tokens"))
	clk.Add(250 * time.Millisecond)
	rec = do(h, http.MethodGet, "/", map[string]string{"X-Test-Tokens": "30"})
	assert.Equal(t, http.StatusTooManyRequests, rec.Code)
	assert.Equal(t, "50", rec.Header().Get("retry-after-ms"))
	assert.Equal(t, "25", rec.Header().Get("x-ratelimit-remaining-tokens"))
}

func TestStatsCounting(t *testing.T) {
	h, clk := newTestHandler(t, Config{Limit: 3, Window: time.Second})
	for range 5 { // window 1767323045: 3 OK, 2 throttled
		get(h)
	}
	clk.Add(time.Second)
	for range 2 { // window 1767323046
		do(h, http.MethodDelete, "/any/path", nil)
	}
	clk.Add(2 * time.Second) // window 1767323048, skipping one
	get(h)

	// /stats is neither limited nor counted, and says the same as Stats.
	rec := do(h, http.MethodGet, "/stats", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	var fromHTTP Stats
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &fromHTTP))
	want := Stats{Requests: 8, OK: 6, Throttled: 2, MaxPerWindow: 5, Windows: []WindowCount{
		{Start: time.Unix(1767323045, 0).UTC(), Requests: 5, Throttled: 2},
		{Start: time.Unix(1767323046, 0).UTC(), Requests: 2},
		{Start: time.Unix(1767323048, 0).UTC(), Requests: 1},
	}}
	assert.Equal(t, want, h.Stats())
	assert.Equal(t, want, fromHTTP)

	assert.Equal(t, http.StatusMethodNotAllowed, do(h, http.MethodGet, "/reset", nil).Code)
	assert.Equal(t, http.StatusMethodNotAllowed, do(h, http.MethodPost, "/stats", nil).Code)
	assert.Equal(t, want, h.Stats())

	assert.Equal(t, http.StatusNoContent, do(h, http.MethodPost, "/reset", nil).Code)
	assert.Equal(t, Stats{Windows: []WindowCount{}}, h.Stats())
	// Reset keeps the bucket: this window's 1 request is still counted.
	rec = get(h)
	assert.Equal(t, "1", rec.Header().Get("X-RateLimit-Remaining"))
	assert.Equal(t, `{"ok":true,"n":1}`, rec.Body.String())
}

func TestStatsTokenBucketGrid(t *testing.T) {
	// The token bucket admits a burst of 2 then 1 per 500ms; the stats grid
	// is still the epoch-aligned second.
	h, clk := newTestHandler(t, Config{Limit: 2, Window: time.Second, Algorithm: TokenBucket})
	clk.Set(time.Unix(100, 0))
	for range 3 {
		get(h)
	}
	clk.Add(600 * time.Millisecond)
	get(h)
	clk.Add(600 * time.Millisecond) // 101.2
	get(h)
	s := h.Stats()
	assert.Equal(t, int64(4), s.MaxPerWindow)
	assert.Equal(t, []WindowCount{
		{Start: time.Unix(100, 0).UTC(), Requests: 4, Throttled: 1},
		{Start: time.Unix(101, 0).UTC(), Requests: 1},
	}, s.Windows)
}

func TestWindowsBounded(t *testing.T) {
	h, clk := newTestHandler(t, Config{Limit: 1, Window: time.Millisecond})
	for range MaxWindows + 5 {
		get(h)
		clk.Add(time.Millisecond)
	}
	s := h.Stats()
	require.Len(t, s.Windows, MaxWindows)
	assert.Equal(t, t0.Add(5*time.Millisecond), s.Windows[0].Start)
	assert.Equal(t, int64(MaxWindows+5), s.Requests)
}

func TestPerKeyBuckets(t *testing.T) {
	h, _ := newTestHandler(t, Config{Limit: 2, Window: time.Second})
	key := func(k string) int {
		if k == "" {
			return get(h).Code
		}
		return do(h, http.MethodGet, "/", map[string]string{"X-Test-Key": k}).Code
	}
	var got []int
	for _, k := range []string{"a", "a", "a", "b", "", "", "", "b", "b"} {
		got = append(got, key(k))
	}
	assert.Equal(t, []int{200, 200, 429, 200, 200, 200, 429, 200, 429}, got)
	s := h.Stats()
	assert.Equal(t, int64(9), s.MaxPerWindow)
	assert.Equal(t, int64(3), s.Throttled)
}

func TestKeyTableBounded(t *testing.T) {
	h, clk := newTestHandler(t, Config{Limit: 1, Window: time.Second})
	for i := range MaxKeys {
		require.Equal(t, http.StatusOK, do(h, http.MethodGet, "/", map[string]string{"X-Test-Key": strconv.Itoa(i)}).Code)
	}
	// Every bucket is in use this window: a new key cannot get one.
	assert.Equal(t, http.StatusServiceUnavailable, do(h, http.MethodGet, "/", map[string]string{"X-Test-Key": "new"}).Code)
	assert.Equal(t, int64(1), h.Stats().Rejected)
	// Next window, the idle buckets are evicted.
	clk.Add(time.Second)
	assert.Equal(t, http.StatusOK, do(h, http.MethodGet, "/", map[string]string{"X-Test-Key": "new"}).Code)
	assert.Equal(t, http.StatusOK, do(h, http.MethodGet, "/", map[string]string{"X-Test-Key": "0"}).Code)
}

func TestInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"negative limit", Config{Limit: -1}},
		{"negative window", Config{Window: -time.Second}},
		{"unknown style", Config{Style: "gitlab"}},
		{"unknown algorithm", Config{Algorithm: "sliding-log"}},
		{"negative token limit", Config{TokenLimit: -1}},
		{"negative latency", Config{Latency: -time.Millisecond}},
		{"token bucket overflow", Config{Limit: 1 << 40, Window: 24 * time.Hour, Algorithm: TokenBucket}},
		{"openai token overflow", Config{TokenLimit: 1 << 40, Window: 24 * time.Hour, Algorithm: TokenBucket, Style: StyleOpenAI}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHandler(tt.cfg)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			_, err = NewServer(tt.cfg)
			assert.ErrorIs(t, err, ErrInvalidConfig)
		})
	}
	h, err := NewHandler(Config{Style: " IETF-Legacy"})
	require.NoError(t, err)
	assert.Equal(t, StyleIETFLegacy, h.Config().Style)
}

func TestParseStyle(t *testing.T) {
	for _, st := range Styles() {
		got, err := ParseStyle(string(st))
		require.NoError(t, err)
		assert.Equal(t, st, got)
	}
	got, err := ParseStyle(" OpenAI ")
	require.NoError(t, err)
	assert.Equal(t, StyleOpenAI, got)
	for _, bad := range []string{"", "x-ratelimit", "ietf_legacy"} {
		_, err := ParseStyle(bad)
		assert.True(t, errors.Is(err, ErrInvalidConfig), "%q: %v", bad, err)
	}
	assert.Len(t, Styles(), 6)
	Styles()[0] = "mutated"
	assert.Equal(t, StyleGitHub, Styles()[0])
}

func TestQuotaArithmetic(t *testing.T) {
	assert.Equal(t, int64(-2), floorDiv(-3, 2))
	assert.Equal(t, int64(-1), ceilDiv(-3, 2))
	assert.Equal(t, int64(2), ceilDiv(3, 2))
	assert.Equal(t, int64(-1000), windowStart(-1, 1000))
	assert.Equal(t, int64(-2000), windowStart(-1001, 1000))
	assert.Equal(t, "0s", goDuration(0))
	assert.Equal(t, "1ms", goDuration(1))
	assert.Equal(t, "6m0s", goDuration(int64(6*time.Minute)))
	assert.Equal(t, "4m12.172s", goDuration(int64(4*time.Minute+12171500*time.Microsecond)))
}
