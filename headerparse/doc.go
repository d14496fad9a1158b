// Package headerparse turns an HTTP response's status and headers into a
// [smartratelimit.Observation]: every quota the server announced, its retry
// hint, and whether the response is itself a rate-limit rejection.
//
// Everything here is a pure function of its arguments: no clock reads, no
// I/O, no mutable global state. [Parse] reads the standard formats;
// a [Parser] with a [Mapping] also reads an API's own headers (the caller
// picks the Mapping per host).
//
// # Understood formats
//
// Header names are matched case-insensitively. Source is the value of
// [smartratelimit.Quota].Source.
//
//	Source             Headers                                                 Reset / window
//	x-ratelimit        X-RateLimit-Limit, -Remaining, -Reset, -Used            reset guessed (see ResetAuto); Limit may be
//	                   (Reddit: Used + float Remaining, Limit = their sum;      a draft-03 list "10, 10;w=1" (Envoy);
//	                   Atlassian DC: X-RateLimit-Interval-Seconds)             window from w or Interval-Seconds
//	github             the same + X-RateLimit-Resource (the quota name)        epoch seconds
//	discord            the same + X-RateLimit-Reset-After, X-RateLimit-Bucket  Reset-After (float seconds) preferred over
//	                   (partition key)                                         the fractional epoch Reset
//	x-rate-limit       X-Rate-Limit-Limit, -Remaining, -Reset, -Duration       reset guessed (Okta, X: epoch seconds);
//	                   (Okta, X/Twitter, tollbooth; Zendesk's X-Rate-Limit)    window from -Duration
//	ietf-draft03       RateLimit-Limit "N[, n;w=s…]", -Remaining, -Reset       delta seconds (epoch when > 1e9: Twitch);
//	                   (also Docker Hub "100;w=21600", Kong, Zendesk)          each n;w=s policy is a quota
//	ietf-draft06       the same trio + RateLimit-Policy "n;w=s, …"             delta seconds
//	ietf-draft07       RateLimit "limit=…, remaining=…, reset=…"               delta seconds; window from RateLimit-Policy
//	                   + RateLimit-Policy "n;w=s"
//	ietf-draft10       RateLimit-Policy "name";q=…;w=…;qu=…;pk=… and           t = delta seconds; one quota per policy,
//	                   RateLimit "name";r=…;t=…;pk=… (drafts -08 to -10,       joined on the name; qu sets the dimension;
//	                   Cloudflare, express-rate-limit draft-8)                 pk is the partition key (base64 text)
//	beta-ietf-draft*   Beta-RateLimit, Beta-RateLimit-Policy, … (Jira)         as above
//	gitlab             RateLimit-* + RateLimit-Name, -Observed, -ResetTime     epoch seconds or HTTP-date; window 1m
//	openai             x-ratelimit-{limit,remaining,reset}-{requests,tokens}   Go duration ("6m0s", "20ms"); window 1m
//	                   (and other x-ratelimit-*-<name> with them)
//	kong               X-RateLimit-{Limit,Remaining}-{Second,Minute,Hour,      window from the suffix (month = 31 days,
//	                   Day,Month,Year} and -<name>-<Window>                    year = MaxWindow)
//	linear             X-RateLimit-{Requests,Complexity}-{Limit,Remaining,     epoch milliseconds
//	                   Reset}
//	anthropic          anthropic-ratelimit-{requests,tokens,input-tokens,      RFC 3339; window 1m
//	                   output-tokens}-{limit,remaining,reset}
//	shopify            X-Shopify-Shop-Api-Call-Limit "32/40" (used/limit)      no reset, no window (leaky bucket)
//	salesforce         Sforce-Limit-Info "api-usage=18/5000; …" (used/limit,   no reset; window 24h for api-usage and
//	                   appName as partition key)                               per-app-api-usage
//	hubspot            X-HubSpot-RateLimit-Max/-Remaining (window from         no reset; windows: the interval, 1s
//	                   -Interval-Milliseconds), -Secondly(-Remaining),         (secondly), 24h (daily)
//	                   -Daily(-Remaining)
//	azure              x-ms-ratelimit-remaining-<scope> and the resource form  remaining only, no reset
//	                   "Name;197,Name2;1297"
//	mapping            the headers a Mapping names                             the Mapping's ResetFormat and Window
//
// Retry hints, most precise first: retry-after-ms (milliseconds),
// Retry-After (seconds, decimals allowed, or an HTTP-date in any of the
// three forms of RFC 9110), X-Retry-In (a Go duration, Traefik),
// X-RateLimit-Retry-After. A Mapping's RetryAfter header comes before all.
// A hint of zero gives way to a later one above zero.
//
// # Rules
//
// A reset whose format the header name does not settle is guessed: a
// number above 1e12 is epoch milliseconds, above 1e9 epoch seconds,
// otherwise seconds from now; then an HTTP-date; then RFC 3339 / ISO 8601
// (including Jira's minute-precision "2006-01-02T15:04Z"). Absolute times
// are converted against the response's Date header when it is valid
// (ResetIn = reset − Date), else against the received time, so a client
// clock that is wrong changes nothing. Past times give 0; no duration is
// negative or longer than [smartratelimit.MaxWindow].
//
// Limited is true for 429, for 503 with a retry hint, and for 403 with a
// retry hint or a quota whose remaining count is 0 (GitHub's primary and
// secondary limits). A retry hint of zero is no guidance here (Atlassian
// Data Center sends "retry-after: 0" while tokens remain); RetryAfter
// still reports it.
//
// The RateLimit fields of the drafts are Structured Fields (RFC 9651):
// duplicate field lines are read as one list, as if joined with ", "; a
// malformed field is ignored whole, as the drafts require. On a response
// served from a cache (Age > 0) every family's quotas are ignored, not
// only the drafts' fields: it did not reach the server's limiter, and its
// counts and resets are those of when it was generated; its status and
// retry hints still count. A family whose
// values overlap another's (express-rate-limit's legacy and draft headers,
// Kong's per-window and RateLimit-* headers) is merged into one quota.
//
// Values that make no sense are ignored, never read as zero: unknown stays
// unknown ([smartratelimit.Opt] with Valid false). A known limit is
// positive and finite, a known remaining count non-negative and finite.
// Negative numbers (Azure's -1), NaN, Inf, exponents, counts above 1e15
// and over-long values are dropped. At most 64 quotas are reported and at
// most 64 members of a list are read, so work and memory stay bounded
// whatever the server sends.
//
// Quotas are listed in a fixed order: the Mapping's first, then the
// families in the order of the table above (map order of http.Header is
// random, so header order cannot be kept; names with a meaningful suffix,
// and names in non-canonical form, are taken in name order, so the same
// headers always give the same quotas in the same order).
//
// # Speed
//
// Parse makes one pass over the header names to see which families are
// present and to find names stored in a non-canonical form (set by direct
// map assignment); then it reads each header it needs with a direct map
// lookup of its precomputed canonical name, and skips the families it did
// not see. Quotas are gathered on the stack: a typical response costs one
// allocation (the Quotas slice); names with a meaningful suffix (Kong,
// Azure) or in non-canonical form cost one more.
package headerparse
