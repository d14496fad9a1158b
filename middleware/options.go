package middleware

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/go-resty/resty/v2"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/headerparse"
	"github.com/smartratelimit/smartratelimit/internal/clock"
)

// Option configures a [Limiter]. Invalid options make [New] return an
// error wrapping [srl.ErrInvalidLimit].
type Option func(*config) error

type config struct {
	// Read by every request: kept together.
	defaults   []srl.Limit
	maxWait    time.Duration
	failFast   bool
	scopes     []scope
	keyFunc    KeyFunc
	partition  func(c *resty.Client, r *resty.Request) string
	costFunc   CostFunc
	hostLimits map[string][]srl.Limit
	hooks      Hooks

	backend         srl.Backend
	partitionSecret []byte
	mapping         *headerparse.Mapping
	hostMappings    map[string]*headerparse.Mapping
	clock           clock.Clock
	logger          *slog.Logger
	defaultBlock    time.Duration
	observeTimeout  time.Duration
}

type scope struct{ host, prefix string }

// Defaults of every option.
const (
	// DefaultPerSecond, DefaultPerMinute and DefaultPerHour are the default
	// limits, enforced together until a server announces its own.
	DefaultPerSecond = 10
	DefaultPerMinute = 300
	DefaultPerHour   = 10000
	// DefaultBlock is how long a key is blocked after a 429 (or other
	// rate-limit status) that says nothing about when to retry.
	DefaultBlock = time.Second
)

func defaultConfig() config {
	return config{
		defaults: []srl.Limit{
			srl.PerSecond(DefaultPerSecond),
			srl.PerMinute(DefaultPerMinute),
			srl.PerHour(DefaultPerHour),
		},
		maxWait:         srl.Forever,
		partitionSecret: defaultPartitionSecret,
		clock:           clock.Real,
		logger:          slog.New(slog.DiscardHandler),
		defaultBlock:    DefaultBlock,
		observeTimeout:  5 * time.Second,
	}
}

// badHost says what a host option takes; the host given is not quoted (it
// may hold user info).
const badHost = `want "host", "host:port" or "scheme://host[:port]"`

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", srl.ErrInvalidLimit, fmt.Sprintf(format, args...))
}

// WithBackend sets where bucket state lives (default: a new in-memory
// backend owned by the limiter). Open one by URL ("memory",
// "postgres://…") with backend.Open. The limiter does not close a backend
// given here; close it after the limiter.
func WithBackend(b srl.Backend) Option {
	return func(c *config) error {
		if b == nil {
			return invalid("nil backend")
		}
		c.backend = b
		return nil
	}
}

// WithDefaultLimits sets the limits used for a host until its server
// announces its own (default: 10 per second, 300 per minute and 10,000 per
// hour, all enforced together). Zero values disable a window:
// WithDefaultLimits(20, 0, 0) enforces only 20 requests per second.
func WithDefaultLimits(perSecond, perMinute, perHour float64) Option {
	return func(c *config) error {
		var ls []srl.Limit
		for _, l := range []srl.Limit{srl.PerSecond(perSecond), srl.PerMinute(perMinute), srl.PerHour(perHour)} {
			if l.Limit == 0 {
				continue
			}
			if err := l.Validate(); err != nil {
				return err
			}
			ls = append(ls, l)
		}
		c.defaults = ls
		return nil
	}
}

// WithDefaults sets the default limits as a list, for windows other than a
// second, minute and hour. An empty list means no limit until a server
// announces one.
func WithDefaults(limits ...srl.Limit) Option {
	return func(c *config) error {
		for _, l := range limits {
			if err := l.Validate(); err != nil {
				return err
			}
		}
		c.defaults = append([]srl.Limit(nil), limits...)
		return nil
	}
}

// WithHostLimits overrides the limits of one host ("api.example.com", or
// "api.example.com:8443" for a port other than the scheme's default):
// they replace the defaults and are enforced together with whatever the
// server announces (Status reports them with source "override").
//
// The host of WithHostLimits, WithHostProfile and WithScope names the
// scheme's default port when it has none: "api.example.com" matches
// https://api.example.com and http://api.example.com. "host:443" and
// "host:80" are the same as "host"; another port is matched as given. A
// URL without path, "https://api.example.com" or
// "http://api.example.com:443", is read as a request URL is (that one
// matches only http on port 443). Any other host (a path, a query, user
// info, a bad port) makes New fail.
func WithHostLimits(host string, limits ...srl.Limit) Option {
	return func(c *config) error {
		if len(limits) == 0 {
			return invalid("WithHostLimits needs a host and at least one limit")
		}
		h, ok := optionHost(host)
		if !ok {
			return invalid("WithHostLimits: %s", badHost)
		}
		for _, l := range limits {
			if err := l.Validate(); err != nil {
				return err
			}
		}
		if c.hostLimits == nil {
			c.hostLimits = map[string][]srl.Limit{}
		}
		c.hostLimits[h] = append([]srl.Limit(nil), limits...)
		return nil
	}
}

// WithHeaderMapping names the headers of a server that uses its own
// rate-limit header names (the Python library's headers_map). The mapped
// headers are read first; the standard formats still apply.
func WithHeaderMapping(m headerparse.Mapping) Option {
	return func(c *config) error {
		c.mapping = &m
		return nil
	}
}

// WithHostProfile sets the header mapping for one host only (named as for
// [WithHostLimits]), for example a host whose reset header is delta
// milliseconds.
func WithHostProfile(host string, m headerparse.Mapping) Option {
	return func(c *config) error {
		h, ok := optionHost(host)
		if !ok {
			return invalid("WithHostProfile: %s", badHost)
		}
		if c.hostMappings == nil {
			c.hostMappings = map[string]*headerparse.Mapping{}
		}
		c.hostMappings[h] = &m
		return nil
	}
}

// WithFailFast refuses a request at once, with a [*srl.LimitError] saying
// how long to wait, instead of waiting (the Python library's
// raise_on_limit). Default: wait.
func WithFailFast() Option {
	return func(c *config) error {
		c.failFast = true
		return nil
	}
}

// WithMaxWait bounds how long a request may wait for its slot; a request
// that would wait longer fails at once with a [*srl.LimitError] and
// reserves nothing (default: no bound beyond the request's context).
func WithMaxWait(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return invalid("negative max wait %v", d)
		}
		c.maxWait = d
		return nil
	}
}

// KeyFunc maps a request's resolved URL to its bucket key. The URL has no
// user info and no query. The default is [HostKey].
type KeyFunc func(u URL) string

// URL is the part of a request URL a key may depend on.
type URL struct {
	Scheme string // "https"
	Host   string // lower case, without port
	Port   string // explicit or the scheme's default ("443")
	Path   string // the path, without query
}

// HostKey is the default key: scheme://host:port.
func HostKey(u URL) string { return u.Scheme + "://" + u.Host + ":" + u.Port }

// WithKeyFunc replaces the default key function (scheme + host + port).
func WithKeyFunc(f KeyFunc) Option {
	return func(c *config) error {
		if f == nil {
			return invalid("nil key function")
		}
		c.keyFunc = f
		return nil
	}
}

// WithScope limits requests whose path starts with prefix on host (named
// as for [WithHostLimits]) apart from the rest of the host: they get a
// bucket of their own (key suffix the prefix), as GitHub's /search has
// limits of its own.
func WithScope(host, prefix string) Option {
	return func(c *config) error {
		h, ok := optionHost(host)
		if !ok || !strings.HasPrefix(prefix, "/") {
			return invalid("WithScope needs a host (%s) and a path prefix starting with /", badHost)
		}
		c.scopes = append(c.scopes, scope{h, prefix})
		return nil
	}
}

// PartitionFunc returns a request's partition (for example a tenant or API
// key id); requests with different partitions of one host have separate
// buckets. The value is hashed before it becomes part of a key, so it is
// never stored or logged as is. Empty means no partition.
type PartitionFunc func(r *resty.Request) string

// WithPartition partitions buckets by f.
func WithPartition(f PartitionFunc) Option {
	return func(c *config) error {
		if f == nil {
			return invalid("nil partition function")
		}
		c.partition = func(_ *resty.Client, r *resty.Request) string { return f(r) }
		return nil
	}
}

// WithPartitionByAuthorization partitions buckets by the request's
// credentials — the Authorization value it sends, from its token or the
// client's, basic auth, a header set by hand, or the user info of its URL
// (or of the client's base URL) — hashed, so the secret itself is never
// stored: two API keys of one host have separate limits, and one key has
// one bucket however it is given.
func WithPartitionByAuthorization() Option {
	return func(c *config) error {
		c.partition = credentials
		return nil
	}
}

// credentials returns what identifies a request's credentials: the
// Authorization value resty and net/http send, so that one credential has
// one partition however it is given. resty adds that header from tokens
// and basic auth only after the before-request hooks, so those are read
// from the request and client, in the order they win: a token over basic
// auth, either over an Authorization header set by hand, and URL user info
// only when no Authorization header is sent.
func credentials(c *resty.Client, r *resty.Request) string {
	switch {
	case r.Token != "":
		return strings.TrimSpace(r.AuthScheme + " " + r.Token)
	case c.Token != "":
		return strings.TrimSpace(r.AuthScheme + " " + c.Token)
	case r.UserInfo != nil:
		return basicAuth(r.UserInfo.Username, r.UserInfo.Password)
	case c.UserInfo != nil:
		return basicAuth(c.UserInfo.Username, c.UserInfo.Password)
	}
	if v := r.Header.Get("Authorization"); v != "" {
		return v
	}
	if v := c.Header.Get("Authorization"); v != "" {
		return v
	}
	return urlCredentials(c, r)
}

// basicAuth is the Authorization value of basic auth, as net/http writes it.
func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// urlCredentials returns the user info of the URL a request goes to (its
// own when absolute, else the client's base URL) as the basic auth value
// net/http sends for it when no Authorization header is set. It is read
// only for WithPartitionByAuthorization, and parses only a URL whose
// authority has an '@'.
func urlCredentials(c *resty.Client, r *resty.Request) string {
	raw, i, own := target(c, r)
	if i < 0 {
		return ""
	}
	if own && strings.IndexByte(raw, '{') >= 0 {
		raw = expandPathParams(c, r) // resty fills path parameters anywhere in the URL
		if i = schemeEnd(raw); i < 0 {
			return ""
		}
	}
	authority := raw[i+3:]
	if j := strings.IndexAny(authority, "/?#"); j >= 0 {
		authority = authority[:j]
	}
	at := strings.LastIndexByte(authority, '@')
	if at < 0 {
		return ""
	}
	u, err := url.Parse(raw[:i+3+len(authority)])
	if err != nil || u.User == nil {
		// Not sent as basic auth (resty fails on such a URL); the raw
		// user info still tells credentials apart, hashed like the rest.
		return "userinfo " + authority[:at]
	}
	password, _ := u.User.Password()
	return basicAuth(u.User.Username(), password)
}

// WithPartitionSecret keys the hash that turns partition values
// (credentials) into bucket keys. Give every process sharing a PostgreSQL
// table the same secret; without one a built-in key is used, and anyone
// able to read the table could test guesses of weak credentials.
func WithPartitionSecret(secret []byte) Option {
	return func(c *config) error {
		if len(secret) < 16 {
			return invalid("partition secret must be at least 16 bytes")
		}
		c.partitionSecret = append([]byte(nil), secret...)
		return nil
	}
}

// CostFunc returns what a request consumes, for example the tokens of an
// LLM request, checked against the server's token quotas. A request always
// costs one request unless the CostFunc says otherwise for DimRequests.
type CostFunc func(r *resty.Request) []srl.Cost

// WithCost sets how a request's cost is computed. A cost set on the
// request's context with [WithRequestCost] takes precedence.
func WithCost(f CostFunc) Option {
	return func(c *config) error {
		if f == nil {
			return invalid("nil cost function")
		}
		c.costFunc = f
		return nil
	}
}

// WithClock sets the clock (default: the real clock); tests use a fake.
func WithClock(clk clock.Clock) Option {
	return func(c *config) error {
		if clk == nil {
			return invalid("nil clock")
		}
		c.clock = clk
		return nil
	}
}

// WithLogger sets the logger (default: discard). Keys are logged; URLs
// with credentials or query strings never are.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return invalid("nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithHooks sets callbacks for waits, refusals, throttled responses and
// learned limits, for users' own metrics. They run synchronously on the
// request's goroutine: keep them fast.
func WithHooks(h Hooks) Option {
	return func(c *config) error {
		c.hooks = h
		return nil
	}
}

// WithDefaultBlock sets how long a 429 without a retry hint blocks its
// key (default [DefaultBlock]).
func WithDefaultBlock(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return invalid("default block %v must be positive", d)
		}
		c.defaultBlock = d
		return nil
	}
}

// Hooks are callbacks for users' own metrics. Any may be nil. They run
// on the request's goroutine while it is inside the limiter: they must not
// call [Limiter.Close], which waits for such requests.
type Hooks struct {
	// OnWait runs when a request waited for its slot, after the wait.
	OnWait func(key string, waited time.Duration)
	// OnRefuse runs when the limiter refused a request (fail fast, max
	// wait, deadline or cancellation).
	OnRefuse func(err *srl.LimitError)
	// OnThrottled runs when a server answered with a rate-limit status
	// (429; 503 or 403 with a retry hint); blockFor is how long from the
	// call the key is blocked for every caller (0 when the block was over
	// by the time the response was learned, e.g. after a slow body).
	OnThrottled func(key string, status int, blockFor time.Duration)
	// OnLearn runs when a response announced limits; each quota's ResetIn
	// counts from the call.
	OnLearn func(key string, quotas []srl.QuotaUpdate)
}

// defaultPort returns the port a scheme uses when the URL names none.
func defaultPort(scheme string) string {
	switch scheme {
	case "http", "ws":
		return "80"
	case "https", "wss":
		return "443"
	}
	return ""
}
