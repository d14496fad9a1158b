package testapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Handler is the rate-limited API as an [http.Handler] that also keeps
// [Stats]. It is safe for concurrent use; one mutex guards the buckets and the
// counters, and it is held only for the arithmetic, never for I/O or Latency.
type Handler struct {
	cfg      Config
	requests quota
	tokens   quota // used by StyleOpenAI only
	closed   chan struct{}
	stopOnce sync.Once

	mu     sync.Mutex
	shared bucket
	keys   map[string]*bucket
	stats  counters
}

// bucket is the state of one client bucket: requests and (OpenAI) tokens.
type bucket struct{ req, tok meter }

// Stats is what the server saw since it started or was last reset.
type Stats struct {
	// Requests counts every rate-limited-path request received:
	// OK + Throttled + Rejected.
	Requests int64 `json:"requests"`
	// OK counts 200 responses.
	OK int64 `json:"ok"`
	// Throttled counts 429 responses.
	Throttled int64 `json:"throttled"`
	// Rejected counts requests refused before the limiter decided: 400 for
	// a bad X-Test-Tokens, 503 when the key table is full. They are in no
	// window.
	Rejected int64 `json:"rejected"`
	// MaxPerWindow is the largest number of requests that arrived (OK +
	// Throttled) in one window of the epoch-aligned Window grid, over all
	// buckets together. For the fixed window these are its windows; for the
	// token bucket the same grid.
	MaxPerWindow int64 `json:"max_per_window"`
	// Windows holds the counts per grid window, oldest first; only the latest
	// MaxWindows are kept.
	Windows []WindowCount `json:"windows"`
}

// WindowCount is the traffic of one grid window, over all buckets.
type WindowCount struct {
	Start     time.Time `json:"start"`     // UTC
	Requests  int64     `json:"requests"`  // OK + Throttled
	Throttled int64     `json:"throttled"` // 429s
}

type counters struct {
	requests, ok, throttled, rejected, maxPerWindow int64
	windows                                         []window
}

type window struct{ start, requests, throttled int64 }

// NewHandler returns a handler enforcing cfg. A bad cfg is an error wrapping
// [ErrInvalidConfig].
func NewHandler(cfg Config) (*Handler, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	tb := cfg.Algorithm == TokenBucket
	w := int64(cfg.Window)
	return &Handler{
		cfg:      cfg,
		requests: quota{size: int64(cfg.Limit), window: w, tokenBucket: tb},
		tokens:   quota{size: int64(cfg.TokenLimit), window: w, tokenBucket: tb},
		closed:   make(chan struct{}),
		keys:     make(map[string]*bucket),
	}, nil
}

// Config returns the configuration in force, defaults filled in.
func (h *Handler) Config() Config { return h.cfg }

// Stats returns a copy of the counters.
func (h *Handler) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := &h.stats
	s := Stats{
		Requests:     c.requests,
		OK:           c.ok,
		Throttled:    c.throttled,
		Rejected:     c.rejected,
		MaxPerWindow: c.maxPerWindow,
		Windows:      make([]WindowCount, len(c.windows)),
	}
	for i, w := range c.windows {
		s.Windows[i] = WindowCount{Start: time.Unix(0, w.start).UTC(), Requests: w.requests, Throttled: w.throttled}
	}
	return s
}

// Reset zeroes the counters of [Stats]. The buckets keep their state, so the
// limit stays consistent with what clients have already been told.
func (h *Handler) Reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stats = counters{}
}

// stop ends every Latency sleep at once; the server calls it on Close.
func (h *Handler) stop() { h.stopOnce.Do(func() { close(h.closed) }) }

// outcome is the limiter's decision for one request and what its headers say.
type outcome struct {
	now          time.Time
	ok           bool
	n            int64 // arrival number
	reqRemaining int64
	reqReset     int64 // ns until the request quota is whole
	tokRemaining int64
	tokReset     int64
	retry        int64 // ns until the request could be admitted (429 only)
}

var (
	okPrefix    = []byte(`{"ok":true,"n":`)
	limitedBody = []byte(`{"error":"rate limited"}`)
)

// ServeHTTP serves /stats, /reset and the rate-limited API (see the package
// documentation).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/stats":
		h.serveStats(w, r)
		return
	case "/reset":
		if r.Method != http.MethodPost {
			h.fail(w, http.StatusMethodNotAllowed, "use POST", "POST")
			return
		}
		h.Reset()
		h.setDate(w.Header(), h.cfg.Now())
		w.WriteHeader(http.StatusNoContent)
		return
	}

	cost, costErr := h.tokenCost(r)
	key, keyed := r.Header["X-Test-Key"]
	var o outcome
	h.mu.Lock()
	o.now = h.cfg.Now()
	h.stats.requests++
	o.n = h.stats.requests
	if costErr != "" {
		h.stats.rejected++
		h.mu.Unlock()
		h.fail(w, http.StatusBadRequest, costErr, "")
		return
	}
	b := &h.shared
	if keyed && len(key) > 0 {
		b = h.bucketFor(key[0], o.now.UnixNano())
		if b == nil {
			h.stats.rejected++
			h.mu.Unlock()
			h.fail(w, http.StatusServiceUnavailable, "too many X-Test-Key values", "")
			return
		}
	}
	h.decide(b, cost, &o)
	h.mu.Unlock()

	hdr := w.Header()
	h.setDate(hdr, o.now)
	h.writeLimitHeaders(hdr, &o)
	hdr.Set("Content-Type", "application/json")
	if !o.ok {
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write(limitedBody)
		return
	}
	if d := h.cfg.Latency; d > 0 && !h.sleep(r, d) {
		return
	}
	w.WriteHeader(http.StatusOK)
	body := make([]byte, 0, 40)
	body = append(body, okPrefix...)
	body = strconv.AppendInt(body, o.n, 10)
	body = append(body, '}')
	_, _ = w.Write(body)
}

// tokenCost parses X-Test-Tokens in the OpenAI style; the string is the
// problem, if any.
func (h *Handler) tokenCost(r *http.Request) (int64, string) {
	if h.cfg.Style != StyleOpenAI {
		return 0, ""
	}
	v := r.Header.Get("X-Test-Tokens")
	if v == "" {
		return DefaultTokenCost, ""
	}
	n, err := strconv.ParseInt(v, 10, 64)
	switch {
	case err != nil || n < 0:
		return 0, "X-Test-Tokens must be a non-negative integer"
	case n > h.tokens.size:
		return 0, "X-Test-Tokens exceeds the token limit"
	}
	return n, ""
}

// decide runs the limiter for one request on b and records it; h.mu is held.
func (h *Handler) decide(b *bucket, cost int64, o *outcome) {
	now := o.now.UnixNano()
	openai := h.cfg.Style == StyleOpenAI
	h.requests.advance(&b.req, now)
	o.retry = h.requests.waitFor(&b.req, 1, now)
	if openai {
		h.tokens.advance(&b.tok, now)
		o.retry = max(o.retry, h.tokens.waitFor(&b.tok, cost, now))
	}
	o.ok = o.retry == 0
	if o.ok {
		h.requests.take(&b.req, 1)
		if openai {
			h.tokens.take(&b.tok, cost)
		}
	}
	o.reqRemaining = h.requests.remaining(&b.req)
	o.reqReset = h.requests.resetIn(&b.req, now)
	if openai {
		o.tokRemaining = h.tokens.remaining(&b.tok)
		o.tokReset = h.tokens.resetIn(&b.tok, now)
	}

	c := &h.stats
	if o.ok {
		c.ok++
	} else {
		c.throttled++
	}
	ws := windowStart(now, h.requests.window)
	i := len(c.windows) - 1
	for i >= 0 && c.windows[i].start > ws {
		i-- // the clock went backwards; rare
	}
	if i < 0 || c.windows[i].start != ws {
		i++
		c.windows = append(c.windows, window{})
		copy(c.windows[i+1:], c.windows[i:])
		c.windows[i] = window{start: ws}
	}
	win := &c.windows[i]
	win.requests++
	if !o.ok {
		win.throttled++
	}
	c.maxPerWindow = max(c.maxPerWindow, win.requests)
	if len(c.windows) > MaxWindows {
		c.windows = c.windows[1:]
	}
}

// bucketFor returns key's bucket, creating it; nil when the table is full of
// buckets still in use. h.mu is held.
func (h *Handler) bucketFor(key string, now int64) *bucket {
	if b := h.keys[key]; b != nil {
		return b
	}
	if len(h.keys) >= MaxKeys {
		for k, b := range h.keys {
			if h.idle(b, now) {
				delete(h.keys, k)
			}
		}
		if len(h.keys) >= MaxKeys {
			return nil
		}
	}
	b := new(bucket)
	h.keys[key] = b
	return b
}

// idle reports whether b is whole again, so forgetting it changes nothing.
func (h *Handler) idle(b *bucket, now int64) bool {
	h.requests.advance(&b.req, now)
	h.tokens.advance(&b.tok, now)
	return h.requests.remaining(&b.req) == h.requests.size && h.tokens.remaining(&b.tok) == h.tokens.size
}

// sleep waits d unless the client goes away or the server closes; it
// reports whether the full d passed.
func (h *Handler) sleep(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-h.closed:
	}
	return false
}

func (h *Handler) setDate(hdr http.Header, now time.Time) {
	hdr.Set("Date", now.UTC().Format(http.TimeFormat))
}

func (h *Handler) fail(w http.ResponseWriter, code int, msg, allow string) {
	hdr := w.Header()
	h.setDate(hdr, h.cfg.Now())
	if allow != "" {
		hdr.Set("Allow", allow)
	}
	hdr.Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]string{"error": msg})
	_, _ = w.Write(b)
}

func (h *Handler) serveStats(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.fail(w, http.StatusMethodNotAllowed, "use GET", "GET, HEAD")
		return
	}
	b, err := json.Marshal(h.Stats())
	if err != nil {
		h.fail(w, http.StatusInternalServerError, err.Error(), "")
		return
	}
	hdr := w.Header()
	h.setDate(hdr, h.cfg.Now())
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}
