package middleware

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-resty/resty/v2"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/backend/memory"
	"github.com/smartratelimit/smartratelimit/headerparse"
	"github.com/smartratelimit/smartratelimit/internal/clock"
)

// Limiter limits the requests of the resty clients it is attached to. It
// is safe for concurrent use. Create it with [New], attach it with
// [Limiter.Attach], and Close it when done.
type Limiter struct {
	// What every request reads comes first, in as few cache lines as can
	// be: between two round trips the network stack evicts the limiter,
	// and each line it touches is a miss.
	inMu      sync.RWMutex // held (read) by requests in the limiter; Close takes it to wait them out
	closed    atomic.Bool
	inProcess bool // the backend never blocks on I/O (memory)
	// restyTime: the clock is the real one, so resty's own stamp of when
	// an attempt was sent (Request.Time, read from the same monotonic
	// clock) dates the attempt, and the hook need not read the clock.
	restyTime bool
	// needHost: host limits or profiles read a request's host:port.
	// needURL: some option reads a request's URL beyond its key (those, or
	// scopes), so a cached key's URL parts are copied.
	needHost   bool
	needURL    bool
	hot        atomic.Pointer[hostEntry] // the entry used last: most clients call one host
	blockMax   atomic.Int64              // the latest end of any block in blocks (below)
	base       time.Time
	ownMemory  *memory.Backend // the backend when New made it, on the limiter's clock
	backend    srl.Backend
	parser     headerparse.Parser
	hostParser map[string]*headerparse.Parser
	cfg        config // its per-request fields first too

	ownBackend bool

	// overridden remembers the keys whose host limits were set in the
	// backend; only hosts configured with WithHostLimits are tracked.
	overridden sync.Map // key -> int64, when they were last set (l.now())

	// known holds the keys this process had a response from (read on
	// every request, so lock-free); knownN counts them.
	known  sync.Map
	knownN atomic.Int64

	// keys caches the key of each URL authority seen (bounded).
	keys  sync.Map // authority prefix -> *hostEntry
	keysN atomic.Int64

	mu      sync.Mutex
	gates   map[string]chan struct{} // keys whose first response is awaited
	waiting map[string]int           // callers sleeping per key
	// blocks holds key -> blocked until (clock ns since base), learned in
	// this process; blockMax above is the latest of them: once it has
	// passed, no key is blocked and a request need not look.
	blocks  map[string]int64
	closing chan struct{}

	// tickets holds the ticket of each request between its before hook
	// and the end of its Execute (every attempt included).
	tickets ticketTable
}

// New returns a limiter configured by opts. Without [WithBackend] it owns
// a new in-memory backend, closed by [Limiter.Close].
func New(opts ...Option) (*Limiter, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	l := &Limiter{
		cfg:     cfg,
		parser:  headerparse.Parser{Mapping: cfg.mapping},
		waiting: map[string]int{},
		gates:   map[string]chan struct{}{},
		blocks:  map[string]int64{},
		closing: make(chan struct{}),
		base:    cfg.clock.Now(),
	}
	l.restyTime = cfg.clock == clock.Real
	l.needHost = cfg.hostLimits != nil || len(cfg.hostMappings) > 0
	l.needURL = l.needHost || len(cfg.scopes) > 0
	if len(cfg.hostMappings) > 0 {
		l.hostParser = map[string]*headerparse.Parser{}
		for h, m := range cfg.hostMappings {
			l.hostParser[h] = &headerparse.Parser{Mapping: m}
		}
	}
	l.backend = cfg.backend
	if l.backend == nil {
		b, err := memory.New(memory.WithClock(cfg.clock), memory.WithLogger(cfg.logger))
		if err != nil {
			return nil, err
		}
		l.backend, l.ownBackend, l.ownMemory = b, true, b
	}
	_, l.inProcess = l.backend.(*memory.Backend)
	return l, nil
}

// Attach installs the limiter on c and returns c: an OnBeforeRequest hook
// that waits for the request's slot (or refuses it), and hooks that learn
// limits from every response — OnAfterResponse for each attempt, a retry
// hook and OnSuccess/OnError for the attempts OnAfterResponse skips (a
// response read with SetDoNotParseResponse, or a body that failed to
// read). The client's transport is left as it is.
func (l *Limiter) Attach(c *resty.Client) *resty.Client {
	c.OnBeforeRequest(l.beforeRequest)
	c.OnAfterResponse(l.afterResponse)
	c.AddRetryHook(l.onRetry)
	c.OnError(l.onError)
	c.OnSuccess(l.onSuccess)
	c.OnPanic(l.onPanic)
	return c
}

// Client returns a new resty client with a limiter attached: the one call
// for the common case. Close the limiter when done.
func Client(opts ...Option) (*resty.Client, *Limiter, error) {
	l, err := New(opts...)
	if err != nil {
		return nil, nil, err
	}
	return l.Attach(resty.New()), l, nil
}

// Backend returns the limiter's backend.
func (l *Limiter) Backend() srl.Backend { return l.backend }

type costKey struct{}

// WithRequestCost returns a context carrying a request's cost (for example
// its tokens); set it with resty's Request.SetContext. It takes precedence
// over [WithCost].
func WithRequestCost(ctx context.Context, costs ...srl.Cost) context.Context {
	return context.WithValue(ctx, costKey{}, costs)
}

// hostEntry is what the limiter remembers of a URL authority
// (scheme://host:port) it has seen: the key function's key and the parts
// of the URL, and whether the key had a response in this process.
type hostEntry struct {
	prefix string
	key    string
	known  atomic.Bool // key is in l.known; once set it stays (a key known once is not held back again)
	u      URL         // last: read only when l.needURL
}

// maxBlocks bounds the blocks this process remembers for waking sleepers
// (expired ones are dropped first; the backend keeps every block anyway).
const maxBlocks = 100_000

// maxCachedKeys bounds the authority -> key cache.
const maxCachedKeys = 10_000

// hostKey returns the key function's key for the request's URL. Keys of
// URLs whose authority (scheme://host:port, no user info) was seen before
// come from a cache without parsing, with the authority's entry; the path
// is then read only when scopes need it.
func (l *Limiter) hostKey(c *resty.Client, r *resty.Request) (string, URL, *hostEntry, error) {
	raw, i, _ := target(c, r)
	prefix, cacheable := authorityAt(raw, i)
	if cacheable {
		e := l.hot.Load()
		if e == nil || e.prefix != prefix {
			if v, ok := l.keys.Load(prefix); ok {
				e = v.(*hostEntry)
				l.hot.Store(e)
			} else {
				e = nil
			}
		}
		if e != nil {
			var u URL
			if !l.needURL {
				return e.key, u, e, nil
			}
			u = e.u
			if len(l.cfg.scopes) > 0 {
				full, err := resolve(c, r)
				if err != nil {
					return "", full, nil, err
				}
				u.Path = full.Path
			}
			return e.key, u, e, nil
		}
	}
	u, err := resolve(c, r)
	if err != nil {
		return "", u, nil, err
	}
	if l.cfg.keyFunc != nil {
		return l.cfg.keyFunc(u), u, nil, nil
	}
	key := HostKey(u)
	if !cacheable {
		return key, u, nil, nil
	}
	if l.keysN.Add(1) > maxCachedKeys {
		l.keys.Clear()
		l.keysN.Store(0)
	}
	e := &hostEntry{prefix: strings.Clone(prefix), key: key, u: URL{Scheme: u.Scheme, Host: u.Host, Port: u.Port}}
	l.keys.Store(e.prefix, e)
	l.hot.Store(e)
	return key, u, e, nil
}

// target returns the URL whose authority a request goes to — its own when
// absolute, else the client's base URL — where its scheme ends (schemeEnd,
// -1 for none), and whether it is the request's own.
func target(c *resty.Client, r *resty.Request) (raw string, i int, own bool) {
	if i := schemeEnd(r.URL); i >= 0 {
		return r.URL, i, true
	}
	raw = c.BaseURL
	if raw == "" {
		raw = c.HostURL
	}
	return raw, schemeEnd(raw), false
}

// authorityAt returns the "scheme://host:port" prefix of an absolute URL
// whose scheme ends at i (schemeEnd, -1 for a relative URL) without user
// info, and whether there is one.
func authorityAt(raw string, i int) (string, bool) {
	if i < 0 {
		return "", false
	}
	end := len(raw)
	for j := i + 3; j < len(raw); j++ {
		if c := raw[j]; c == '/' || c == '?' || c == '#' {
			end = j
			break
		} else if c == '@' || c == '{' {
			return "", false
		}
	}
	if end == i+3 {
		return "", false
	}
	return raw[:end], true
}

// inScope reports whether path is prefix or below it: "/search" covers
// "/search" and "/search/code", not "/searchable".
func inScope(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || strings.HasSuffix(prefix, "/") || path[len(prefix)] == '/'
}

// keyFor computes the bucket key of a request, with the entry of its
// authority when the key is the entry's (no scope or partition added).
func (l *Limiter) keyFor(c *resty.Client, r *resty.Request) (string, URL, *hostEntry, error) {
	key, u, e, err := l.hostKey(c, r)
	if err != nil {
		return "", u, nil, err
	}
	for _, s := range l.cfg.scopes {
		if s.host == u.hostPort() && inScope(u.Path, s.prefix) {
			key += s.prefix
			e = nil
			break
		}
	}
	if l.cfg.partition != nil {
		if p := l.cfg.partition(c, r); p != "" {
			key += "#" + hashPartition(l.cfg.partitionSecret, p)
			e = nil
		}
	}
	return key, u, e, nil
}

func (l *Limiter) beforeRequest(c *resty.Client, r *resty.Request) error {
	l.inMu.RLock()
	defer l.inMu.RUnlock()
	if l.closed.Load() {
		return srl.ErrClosed
	}
	key, u, e, err := l.keyFor(c, r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	var costs []srl.Cost
	if v, ok := ctx.Value(costKey{}).([]srl.Cost); ok {
		costs = v
	} else if l.cfg.costFunc != nil {
		costs = l.cfg.costFunc(r)
	}
	host := ""
	if l.needHost { // host limits or profiles
		host = u.hostPort()
		if err := l.ensureOverride(ctx, key, host); err != nil {
			return err
		}
	}
	t := l.tickets.open(r)
	if t.key != key {
		if t.probe { // a retry to another key (resty's SRV addresses)
			l.learned(t.key)
		}
		t.reset()
		t.key = key
	}
	t.host = host
	var gateWait time.Duration // waited for the key's first response
	if e != nil && e.known.Load() {
		t.known = true
	} else if _, ok := l.known.Load(key); ok {
		t.known = true
		if e != nil {
			e.known.Store(true)
		}
	} else if !t.probe { // a retry of the probe does not wait for itself
		if t.probe, gateWait, err = l.awaitFirstContact(ctx, key); err != nil {
			return err
		}
	}
	seq, err := l.wait(ctx, key, costs, gateWait)
	if err != nil {
		return err // the ticket's end (OnError) opens a probe's gate
	}
	t.seq = seq
	if !l.restyTime {
		t.sent = l.now()
	}
	t.observed = false
	return nil
}

// firstContactWait bounds how long callers wait for the first response
// from a key before going ahead under the default limits.
const firstContactWait = 2 * time.Second

// maxKnown bounds the set of keys this process has seen a response from;
// past it the set starts over (a key then waits for one more first
// response, which costs at most one round trip). Keys whose host entry
// is cached stay known through that entry.
const maxKnown = 100_000

// awaitFirstContact lets the first caller of a key this process has never
// had a response from go ahead as a probe and makes concurrent callers wait
// (at most firstContactWait, and never for fail-fast limiters) until that
// response arrives: then they are paced by the limits the server announced
// instead of reserving slots under the defaults first. It reports whether
// the caller is the probe, and how long it waited.
func (l *Limiter) awaitFirstContact(ctx context.Context, key string) (bool, time.Duration, error) {
	if _, ok := l.known.Load(key); ok || l.cfg.failFast {
		return false, 0, nil
	}
	l.mu.Lock()
	if _, ok := l.known.Load(key); ok {
		l.mu.Unlock()
		return false, 0, nil
	}
	g, waiting := l.gates[key]
	if !waiting {
		g = make(chan struct{})
		l.gates[key] = g
	}
	l.mu.Unlock()
	if !waiting {
		return true, 0, nil
	}
	// The wait for the probe is bounded by the caller's max wait (and
	// counts against it), and takes at most half the time left before its
	// deadline, leaving the rest to the request: past that the caller goes
	// on to its slot under the defaults (refused when too far away).
	wait := min(firstContactWait, l.cfg.maxWait)
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl)/2)
	}
	if wait <= 0 {
		return false, 0, nil
	}
	start := l.now()
	t := l.cfg.clock.NewTimer(wait)
	defer t.Stop()
	select {
	case <-g:
	case <-t.C():
		if wait == firstContactWait {
			l.learned(key) // no first response in time: stop holding anyone back
		}
	case <-ctx.Done():
		return false, 0, l.refuse(&srl.LimitError{Key: key, Reason: srl.ReasonCanceled, Err: ctx.Err()})
	case <-l.closing:
		return false, 0, srl.ErrClosed
	}
	return false, time.Duration(max(l.now()-start, 0)), nil
}

// learned records that key had a response (or that its probe ended) and
// opens its gate.
func (l *Limiter) learned(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if g, ok := l.gates[key]; ok {
		close(g)
		delete(l.gates, key)
	}
	if _, ok := l.known.LoadOrStore(key, struct{}{}); !ok && l.knownN.Add(1) > maxKnown {
		l.known.Clear()
		l.knownN.Store(0)
	}
}

// overrideRefresh is how often a key's configured host limits are set
// again: another process sharing the backend may have cleared them.
// Setting the same limits again keeps their windows.
const overrideRefresh = 30 * time.Second

// ensureOverride puts a host's configured limits on a key the first time
// the key is seen, and again every overrideRefresh.
func (l *Limiter) ensureOverride(ctx context.Context, key, host string) error {
	limits, ok := l.cfg.hostLimits[host]
	if !ok {
		return nil
	}
	now := l.now()
	if v, done := l.overridden.Load(key); done && now-v.(int64) < int64(overrideRefresh) {
		return nil
	}
	if err := l.backend.SetLimits(ctx, key, limits); err != nil {
		return backendError(ctx, key, err)
	}
	l.overridden.Store(key, now)
	return nil
}

// Wait waits for a slot for one request to key (as the hook does) and
// returns when the request may go, or a [*srl.LimitError]; for callers
// that limit something other than a resty request.
func (l *Limiter) Wait(ctx context.Context, key string, costs ...srl.Cost) error {
	l.inMu.RLock()
	defer l.inMu.RUnlock()
	if l.closed.Load() {
		return srl.ErrClosed
	}
	_, err := l.wait(ctx, key, costs, 0)
	return err
}

func (l *Limiter) now() int64 { return int64(l.cfg.clock.Since(l.base)) }

// wait acquires a slot and sleeps until it; before is how long the caller
// already waited for the key's first response, which counts against its
// max wait (not against OnWait's figure, the wait for the slot). After the
// sleep it checks whether a response learned in this process, or a block
// in a shared backend, blocked the key meanwhile, and if so takes a new
// slot after the block.
func (l *Limiter) wait(ctx context.Context, key string, costs []srl.Cost, before time.Duration) (uint64, error) {
	var waited time.Duration
	for attempt := 0; ; attempt++ {
		maxWait := l.cfg.maxWait
		if l.cfg.failFast {
			maxWait = 0
		}
		maxWait -= min(before+waited, maxWait) // the configured bound covers the whole wait
		reason := srl.ReasonMaxWait
		if dl, ok := ctx.Deadline(); ok {
			if left := time.Until(dl); left < maxWait {
				maxWait, reason = max(left, 0), srl.ReasonDeadline
			}
		}
		res, err := l.backend.Acquire(ctx, srl.AcquireRequest{Key: key, Defaults: l.cfg.defaults, Costs: costs, MaxWait: maxWait})
		if err != nil {
			return 0, backendError(ctx, key, err)
		}
		if !res.OK {
			return 0, l.refuse(&srl.LimitError{Key: key, Wait: res.Wait, Limit: res.Limit, Blocked: res.Blocked, Reason: reason})
		}
		if res.Wait > 0 {
			if err := l.sleep(ctx, key, res.Wait); err != nil {
				l.cancel(key, res, costs)
				if errors.Is(err, srl.ErrClosed) {
					return 0, srl.ErrClosed
				}
				return 0, l.refuse(&srl.LimitError{Key: key, Wait: res.Wait, Limit: res.Limit, Blocked: res.Blocked, Reason: srl.ReasonCanceled, Err: err})
			}
			waited += res.Wait
		}
		if attempt < 8 && (l.blockedAfter(key) || res.Wait > 0 && l.blockedElsewhere(ctx, key)) {
			l.cancel(key, res, costs) // its slot fell inside the block: take a new one after it
			continue
		}
		if waited > 0 && l.cfg.hooks.OnWait != nil {
			l.cfg.hooks.OnWait(key, waited)
		}
		return res.Seq, nil
	}
}

// backendError is the error of a failed backend call for key. A context
// that ended (before or during the call) is the caller's giving up, not a
// backend outage: it is reported as the context's error, neither
// ErrBackendUnavailable (which a backend may wrap it in) nor "rate
// limited". Any other failure is a backend failure, never "rate limited".
func backendError(ctx context.Context, key string, err error) error {
	if errors.Is(err, srl.ErrCostExceedsLimit) || errors.Is(err, srl.ErrClosed) || errors.Is(err, srl.ErrInvalidLimit) {
		return err
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("smartratelimit: %s: the request's context ended before its slot was taken: %w", key, cerr)
	}
	if errors.Is(err, srl.ErrBackendUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", srl.ErrBackendUnavailable, err)
}

// cancel gives back a reservation that will not be used, when the
// backend can take it back ([srl.Canceler]); otherwise its slot stays
// spent, which is safe.
func (l *Limiter) cancel(key string, res srl.Reservation, costs []srl.Cost) {
	c, ok := l.backend.(srl.Canceler)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.observeTimeout)
	defer cancel()
	if err := c.Cancel(ctx, key, res, costs); err != nil {
		l.cfg.logger.Debug("smartratelimit: could not give back a reservation", "key", key, "error", err)
	}
}

func (l *Limiter) refuse(e *srl.LimitError) error {
	if l.cfg.hooks.OnRefuse != nil {
		l.cfg.hooks.OnRefuse(e)
	}
	return e
}

// blockedAfter reports whether this process learned a block of key that
// ends in the future (a 429 arrived while the caller slept).
func (l *Limiter) blockedAfter(key string) bool {
	if until := l.blockMax.Load(); until == 0 || until <= l.now() {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	until, ok := l.blocks[key]
	if !ok {
		return false
	}
	if until <= l.now() {
		delete(l.blocks, key)
		return false
	}
	return true
}

// blockedElsewhere reports whether a backend shared with other processes
// holds a block of key that ends in the future: another process learned a
// 429 while this caller slept. A backend of this process only holds the
// blocks blockedAfter knows; a failed check is taken as no block.
func (l *Limiter) blockedElsewhere(ctx context.Context, key string) bool {
	if l.inProcess {
		return false
	}
	st, err := l.backend.Status(ctx, key)
	return err == nil && st.BlockedUntil.After(l.cfg.clock.Now())
}

func (l *Limiter) sleep(ctx context.Context, key string, d time.Duration) error {
	l.mu.Lock()
	l.waiting[key]++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		if l.waiting[key]--; l.waiting[key] <= 0 {
			delete(l.waiting, key)
		}
		l.mu.Unlock()
	}()
	t := l.cfg.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.closing:
		return srl.ErrClosed
	}
}

// afterResponse learns from each attempt's response.
func (l *Limiter) afterResponse(_ *resty.Client, resp *resty.Response) error {
	l.learnResponse(resp)
	return nil
}

// onRetry learns from an attempt about to be retried, when OnAfterResponse
// did not (SetDoNotParseResponse, a body that failed to read): before the
// retry waits, so that a 429 blocks the key for everyone first.
func (l *Limiter) onRetry(resp *resty.Response, _ error) { l.learnResponse(resp) }

// onSuccess learns from the last attempt when OnAfterResponse did not
// (SetDoNotParseResponse) and ends the request's ticket.
func (l *Limiter) onSuccess(_ *resty.Client, resp *resty.Response) {
	if resp != nil {
		l.endTicket(resp.Request, resp)
	}
}

// onError learns from the last attempt's response, when there was one that
// OnAfterResponse did not see, and ends the request's ticket.
func (l *Limiter) onError(r *resty.Request, err error) {
	var resp *resty.Response
	if re, ok := errors.AsType[*resty.ResponseError](err); ok {
		resp = re.Response
	}
	l.endTicket(r, resp)
}

func (l *Limiter) onPanic(r *resty.Request, _ error) { l.endTicket(r, nil) }

// endTicket ends a request: it learns from its last response (resp, when
// not nil) if that was not learned yet, and a probe that got no response
// opens its key's gate, so the callers behind it do not wait for nothing.
func (l *Limiter) endTicket(r *resty.Request, resp *resty.Response) {
	t := l.tickets.get(r)
	if t == nil {
		return
	}
	if resp != nil && resp.Request == r {
		l.learnTicket(t, resp)
	}
	if t.probe {
		l.learned(t.key)
	}
	l.tickets.close(r, t)
}

// learnResponse applies a response's headers to its request's key, once
// per attempt. A response that a redirect brought from another host is
// not the key's: it is not learned.
func (l *Limiter) learnResponse(resp *resty.Response) {
	if resp == nil || resp.RawResponse == nil || resp.Request == nil {
		return
	}
	if t := l.tickets.get(resp.Request); t != nil {
		l.learnTicket(t, resp)
	}
}

// learnTicket learns from resp, the response of t's current attempt,
// unless that was done.
func (l *Limiter) learnTicket(t *ticket, resp *resty.Response) {
	if t.observed || resp.RawResponse == nil {
		return
	}
	t.observed = true
	if raw := resp.Request.RawRequest; raw != nil && resp.RawResponse.Request != nil &&
		resp.RawResponse.Request != raw && !sameAuthority(raw.URL, resp.RawResponse.Request.URL) {
		return
	}
	if l.restyTime {
		// resty stamps Request.Time after the before hooks, as it hands
		// the attempt to the transport.
		if sent := resp.Request.Time; !sent.IsZero() {
			t.sent = int64(sent.Sub(l.base))
		} else {
			t.sent = l.now()
		}
	}
	l.learn(t, resp.RawResponse, resp.ReceivedAt())
}

// parserFor returns the header parser of a host ("host" or "host:port" as
// WithHostProfile names it): its profile's, or the limiter's.
func (l *Limiter) parserFor(host string) *headerparse.Parser {
	if p, ok := l.hostParser[host]; ok {
		return p
	}
	return &l.parser
}

// learn applies a response's headers to t's key.
func (l *Limiter) learn(t *ticket, resp *http.Response, received time.Time) {
	if l.closed.Load() {
		return
	}
	first := t.probe // the key's first response in this process: open its gate after
	if !first && !t.known {
		_, known := l.known.Load(t.key)
		first = !known
		t.known = true
	}
	l.apply(t, resp, received)
	if first { // not reached when apply panics: the probe's gate opens at the ticket's end then
		t.probe = false
		l.learned(t.key) // after the backend has the limits
	}
}

// apply parses a response into t's buffers and reports what it says to
// the backend.
func (l *Limiter) apply(t *ticket, resp *http.Response, received time.Time) {
	obs := &t.buf.obs
	l.parserFor(t.host).ParseInto(obs, resp.StatusCode, resp.Header, received)
	if obs.Empty() {
		return
	}
	// Resets and Retry-After count from when the response was received,
	// which may be well before this hook runs (a body saved to a file,
	// other hooks first). The limiter's own memory backend takes the
	// update dated then: on the real clock that is resty's own stamp
	// (from the same monotonic clock), so learning reads no clock. Any
	// other backend counts from its Observe call: the clock is read and
	// the time since the receipt subtracted.
	var now int64
	var elapsed time.Duration
	dated := l.restyTime && l.ownMemory != nil && !received.IsZero()
	if dated {
		now = int64(received.Sub(l.base))
	} else {
		now = l.now()
		if !received.IsZero() {
			elapsed = l.base.Add(time.Duration(now)).Sub(received)
		}
	}
	u := l.update(obs, elapsed, t.buf.quotas[:0])
	t.buf.quotas = u.Quotas[:0]
	u.SentSeq = t.seq
	u.SentAgo = time.Duration(max(now-t.sent, 1))
	if len(u.Quotas) == 0 && u.BlockFor <= 0 {
		return
	}
	// The hooks' durations count from their call: an update dated at the
	// receipt is that much older (the clock is read for them only).
	var late time.Duration
	if dated && (l.cfg.hooks.OnThrottled != nil || l.cfg.hooks.OnLearn != nil) {
		late = time.Duration(max(l.now()-now, 0))
	}
	if u.BlockFor > 0 {
		l.block(t.key, now, u.BlockFor)
		if l.cfg.hooks.OnThrottled != nil {
			l.cfg.hooks.OnThrottled(t.key, resp.StatusCode, max(u.BlockFor-late, 0))
		}
	}
	if err := l.observe(t.key, u, now); err != nil {
		l.cfg.logger.Warn("smartratelimit: could not record response limits", "key", t.key, "error", err)
		return
	}
	if len(u.Quotas) > 0 && l.cfg.hooks.OnLearn != nil {
		qs := slices.Clone(u.Quotas) // u.Quotas is reused
		for i := range qs {
			if qs[i].HasReset {
				qs[i].ResetIn = max(qs[i].ResetIn-late, 0)
			}
		}
		l.cfg.hooks.OnLearn(t.key, qs)
	}
}

// block remembers that key is blocked for d from now, so that callers of
// this process sleeping on a slot inside the block take a new one.
func (l *Limiter) block(key string, now int64, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.blocks) >= maxBlocks {
		for k, until := range l.blocks {
			if until <= now {
				delete(l.blocks, k)
			}
		}
	}
	if until := now + int64(d); until > l.blocks[key] && len(l.blocks) < maxBlocks {
		l.blocks[key] = until
		if until > l.blockMax.Load() {
			l.blockMax.Store(until) // under l.mu
		}
	}
}

// observe stores an update. The caller's context may end before it is
// stored; it is still worth storing, so it gets a context of its own.
func (l *Limiter) observe(key string, u srl.Update, now int64) error {
	if l.ownMemory != nil { // on the limiter's clock: u counts from now, not from the call
		return l.ownMemory.ObserveAt(context.Background(), key, u, l.base.Add(time.Duration(now)))
	}
	if l.inProcess {
		return l.backend.Observe(context.Background(), key, u)
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.observeTimeout)
	defer cancel()
	return l.backend.Observe(ctx, key, u)
}

// learnBuf holds the buffers of one learn call: responses are parsed into
// them without allocating. Backends do not keep an Update's Quotas.
type learnBuf struct {
	obs    srl.Observation
	quotas []srl.QuotaUpdate
}

// update turns an observation into a backend update, appending its quotas
// to dst: it resolves each quota's window and decides how long a
// rate-limit status blocks the key. elapsed is the time since the
// response was received.
func (l *Limiter) update(obs *srl.Observation, elapsed time.Duration, dst []srl.QuotaUpdate) srl.Update {
	u := srl.Update{Quotas: dst}
	elapsed = max(elapsed, 0)
	var exhaustedUntil time.Duration
	for _, q := range obs.Quotas {
		resetIn, hasReset := q.ResetIn.Get()
		if hasReset {
			resetIn = max(resetIn-elapsed, 0)
		}
		rem, hasRem := q.Remaining.Get()
		if hasRem && rem <= 0 && hasReset {
			exhaustedUntil = max(exhaustedUntil, resetIn)
		}
		limit, ok := q.Limit.Get()
		if !ok || limit <= 0 {
			continue // remaining without a limit: only an exhausted quota matters (above)
		}
		window, ok := q.Window.Get()
		if !ok {
			if !hasReset {
				continue // neither window nor reset: no window to enforce
			}
			window = InferWindow(resetIn)
		} else if hasReset && resetIn > window {
			window = InferWindow(resetIn) // a window cannot end later than its length
		}
		qu := srl.QuotaUpdate{
			Limit:        srl.Limit{Name: q.Name, Dimension: q.Dimension.OrRequests(), Limit: limit, Window: min(window, srl.MaxWindow)},
			Remaining:    rem,
			HasRemaining: hasRem,
			ResetIn:      resetIn,
			HasReset:     hasReset,
		}
		if qu.Limit.Validate() != nil {
			continue
		}
		u.Quotas = append(u.Quotas, qu)
	}
	if obs.Limited {
		block := l.cfg.defaultBlock
		if ra, ok := obs.RetryAfter.Get(); ok && ra > 0 {
			block = max(ra-elapsed, time.Millisecond)
		} else if exhaustedUntil > 0 {
			block = exhaustedUntil
		}
		u.BlockFor = min(block, srl.MaxWindow)
	}
	return u
}

// InferWindow guesses a quota's window from the time until it resets when
// the server does not say: the shortest common window (a second, minute,
// quarter hour, hour or day) that is at least that long. GitHub's hourly
// limit reset in 40 minutes is an hour.
func InferWindow(resetIn time.Duration) time.Duration {
	switch {
	case resetIn <= time.Second:
		return time.Second
	case resetIn <= time.Minute:
		return time.Minute
	case resetIn <= 15*time.Minute:
		return 15 * time.Minute
	case resetIn <= time.Hour:
		return time.Hour
	case resetIn <= 24*time.Hour:
		return 24 * time.Hour
	}
	return min(resetIn, srl.MaxWindow)
}

// Status returns the state of a key — its limits with remaining units,
// reset times, sources and utilization, when it is blocked until — and how
// many callers of this process wait on it. Find a host's key with [KeyOf].
func (l *Limiter) Status(ctx context.Context, key string) (Status, error) {
	st, err := l.backend.Status(ctx, key)
	if err != nil {
		return Status{}, err
	}
	l.mu.Lock()
	w := l.waiting[key]
	l.mu.Unlock()
	return Status{Status: st, Waiting: w}, nil
}

// Status is a key's state as seen by one limiter.
type Status struct {
	srl.Status
	// Waiting is how many callers of this process wait for a slot of the key.
	Waiting int `json:"waiting"`
}

// Keys lists the tracked keys.
func (l *Limiter) Keys(ctx context.Context) ([]string, error) { return l.backend.Keys(ctx) }

// SetLimits overrides a key's limits (nil removes the override).
func (l *Limiter) SetLimits(ctx context.Context, key string, limits ...srl.Limit) error {
	return l.backend.SetLimits(ctx, key, limits)
}

// Clear forgets one key.
func (l *Limiter) Clear(ctx context.Context, key string) error {
	l.overridden.Delete(key)
	l.mu.Lock()
	delete(l.blocks, key)
	l.mu.Unlock()
	return l.backend.Clear(ctx, key)
}

// ClearAll forgets every key.
func (l *Limiter) ClearAll(ctx context.Context) error {
	l.overridden.Clear()
	l.mu.Lock()
	clear(l.blocks)
	l.mu.Unlock()
	return l.backend.ClearAll(ctx)
}

// Close wakes every waiting caller with [srl.ErrClosed], makes later
// requests fail with it, waits for requests inside the limiter to leave,
// and closes the backend when the limiter created it.
func (l *Limiter) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	close(l.closing)
	l.inMu.Lock() // waits for every request still inside the limiter
	//lint:ignore SA2001 the lock is taken only to wait for the requests inside
	l.inMu.Unlock()
	if l.ownBackend {
		return l.backend.Close()
	}
	return nil
}
