package testapi

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// ErrInvalidConfig is wrapped by every error [NewHandler], [NewServer] and
// [ParseStyle] return for a bad setting.
var ErrInvalidConfig = errors.New("testapi: invalid config")

// Style selects the rate-limit headers the server sends.
type Style string

// The header styles. Each mirrors a family of real servers; see
// /work/shared/reference/rate-limit-headers.md for the sources.
const (
	// StyleGitHub sends X-RateLimit-Limit, X-RateLimit-Remaining,
	// X-RateLimit-Used, X-RateLimit-Reset (epoch seconds, the reset instant
	// rounded up) and X-RateLimit-Resource: core on every response, plus
	// Retry-After (seconds, rounded up) on 429.
	StyleGitHub Style = "github"
	// StyleIETF sends draft-ietf-httpapi-ratelimit-headers-10 structured
	// fields: RateLimit-Policy: "default";q=<limit>;w=<window seconds> and
	// RateLimit: "default";r=<remaining>;t=<seconds until reset>, plus
	// Retry-After on 429.
	StyleIETF Style = "ietf"
	// StyleIETFLegacy sends the draft -04…-06 fields RateLimit-Limit,
	// RateLimit-Remaining, RateLimit-Reset (delta seconds) and
	// RateLimit-Policy: <limit>;w=<window seconds>, plus Retry-After on 429.
	StyleIETFLegacy Style = "ietf-legacy"
	// StyleOpenAI sends x-ratelimit-{limit,remaining,reset}-{requests,tokens};
	// resets are Go durations rounded up to the millisecond ("1s", "6m0s",
	// "20ms"). On 429 it adds retry-after (seconds) and retry-after-ms.
	StyleOpenAI Style = "openai"
	// StyleRetryAfter sends nothing on success and Retry-After (integer
	// seconds, rounded up) on 429.
	StyleRetryAfter Style = "retry-after"
	// StyleNone sends no rate-limit header at all, not even on 429.
	StyleNone Style = "none"
)

var styles = []Style{StyleGitHub, StyleIETF, StyleIETFLegacy, StyleOpenAI, StyleRetryAfter, StyleNone}

// Styles returns every style, in a fixed order; the slice is the caller's.
func Styles() []Style { return append([]Style(nil), styles...) }

// ParseStyle returns the style named s (case-insensitive, surrounding space
// ignored). An unknown name is an error wrapping [ErrInvalidConfig].
func ParseStyle(s string) (Style, error) {
	name := Style(strings.ToLower(strings.TrimSpace(s)))
	for _, st := range styles {
		if st == name {
			return st, nil
		}
	}
	return "", fmt.Errorf("%w: unknown style %q (want one of %v)", ErrInvalidConfig, s, styles)
}

// Algorithm selects how the server counts.
type Algorithm string

const (
	// FixedWindow counts at most Limit requests per window; windows are aligned
	// to the Unix epoch grid. It is the default.
	FixedWindow Algorithm = "fixed-window"
	// TokenBucket holds Limit tokens and refills Limit per Window continuously.
	TokenBucket Algorithm = "token-bucket"
)

// Defaults applied by [NewHandler] to zero fields of [Config].
const (
	DefaultLimit     = 20
	DefaultWindow    = time.Second
	DefaultTokenCost = 10 // OpenAI style cost of a request without X-Test-Tokens
	// MaxKeys bounds the per-key buckets (X-Test-Key).
	MaxKeys = 10_000
	// MaxWindows bounds Stats.Windows: only the latest windows are kept.
	MaxWindows = 10_000
)

// Config describes the server's limit. The zero value is valid: 20 requests
// per second, fixed window, GitHub headers.
type Config struct {
	// Limit is the number of requests per Window (default 20).
	Limit int
	// Window is the limit's period (default 1s). Any positive duration is
	// allowed; header fields in whole seconds round up.
	Window time.Duration
	// Style selects the headers (default StyleGitHub); the name is matched
	// as by [ParseStyle].
	Style Style
	// Algorithm selects the counting (default FixedWindow).
	Algorithm Algorithm
	// TokenLimit is, in the OpenAI style only, the tokens per Window (default
	// 100*Limit). A request costs the integer in its X-Test-Tokens header
	// (default 10); it is admitted only if both the request and the token
	// quota have room.
	TokenLimit int
	// Latency delays every 200 response by this much (default none). Throttled
	// responses are immediate, as real limiters reject before doing work.
	Latency time.Duration
	// Now is the clock (default time.Now). The Date header uses it too.
	Now func() time.Time
}

// withDefaults validates c and fills its zero fields.
func (c Config) withDefaults() (Config, error) {
	bad := func(format string, args ...any) (Config, error) {
		return Config{}, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case c.Limit < 0:
		return bad("Limit %d is negative", c.Limit)
	case c.Window < 0:
		return bad("Window %v is negative", c.Window)
	case c.TokenLimit < 0:
		return bad("TokenLimit %d is negative", c.TokenLimit)
	case c.Latency < 0:
		return bad("Latency %v is negative", c.Latency)
	}
	if c.Limit == 0 {
		c.Limit = DefaultLimit
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Style == "" {
		c.Style = StyleGitHub
	}
	st, err := ParseStyle(string(c.Style))
	if err != nil {
		return Config{}, err
	}
	c.Style = st
	switch c.Algorithm {
	case "":
		c.Algorithm = FixedWindow
	case FixedWindow, TokenBucket:
	default:
		return bad("unknown Algorithm %q (want %q or %q)", c.Algorithm, FixedWindow, TokenBucket)
	}
	if c.TokenLimit == 0 {
		if c.Limit > math.MaxInt/100 {
			return bad("Limit %d too large for the default TokenLimit", c.Limit)
		}
		c.TokenLimit = 100 * c.Limit
	}
	// The token bucket keeps its level in units of token*Window nanoseconds.
	if c.Algorithm == TokenBucket {
		sizes := []int{c.Limit}
		if c.Style == StyleOpenAI {
			sizes = append(sizes, c.TokenLimit)
		}
		for _, n := range sizes {
			if int64(n) > math.MaxInt64/int64(c.Window) {
				return bad("token bucket of %d per %v overflows the arithmetic", n, c.Window)
			}
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}
