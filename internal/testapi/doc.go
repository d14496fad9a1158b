// Package testapi is a local, rate-limited HTTP API for tests, examples, the
// demo and benchmarks. It enforces a limit on the server side and announces it
// in one of the header styles real APIs use ([StyleGitHub], [StyleIETF],
// [StyleIETFLegacy], [StyleOpenAI], [StyleRetryAfter], [StyleNone]), so the
// client-side limiter can be measured against a server that really counts.
//
// [NewServer] listens on 127.0.0.1 only (never another interface, never IPv6)
// and [Server.Close] releases the listener, every connection and every
// goroutine it started. [NewHandler] gives the bare [http.Handler] for
// [net/http/httptest] recorders.
//
// # Paths
//
//   - GET /stats returns [Stats] as JSON. It is neither rate limited nor counted.
//   - POST /reset zeroes the counters (see [Handler.Reset]); other methods get 405.
//   - Every other path, with any method, is rate limited identically and
//     answers 200 {"ok":true,"n":N}, N being the request's 1-based arrival
//     number since the last reset, or 429 {"error":"rate limited"}.
//     /slow is not special: [Config.Latency] delays every 200 response.
//
// # Request headers understood
//
//   - X-Test-Key: the request is counted in the bucket of that key instead of the
//     bucket shared by all requests without the header. At most [MaxKeys] keys
//     are kept; idle buckets are evicted when the table is full, and if none is
//     idle a new key gets 503.
//   - X-Test-Tokens: the request's token cost in the OpenAI style (default 10).
//     A value that is not a non-negative integer, or that exceeds
//     [Config.TokenLimit] (it could never be admitted), gets 400.
//
// # Algorithms
//
// The fixed window (the default) counts requests in windows aligned to the Unix
// epoch grid: a window starts at a multiple of Window since 1970-01-01 UTC, so
// with a whole-second Window the epoch-second reset of [StyleGitHub] is exact.
// The token bucket holds Limit tokens and refills Limit per Window continuously;
// its arithmetic is exact integer arithmetic (no float rounding). A throttled
// request never consumes quota.
//
// Header fields that carry whole seconds round up, as real servers do, so a
// sub-second Window is announced as w=1 and a reset 300ms away as t=1.
package testapi
