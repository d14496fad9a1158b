package headerparse

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
)

// t0 is the Date of most test responses: Thu, 26 Nov 2026 12:00:00 GMT (Unix 1795694400).
var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

const date0 = "Date: Thu, 26 Nov 2026 12:00:00 GMT"

func n(v float64) srl.Opt[float64]             { return srl.Some(v) }
func d(v time.Duration) srl.Opt[time.Duration] { return srl.Some(v) }

// hdr builds a header from "Name: value" lines with Header.Add (canonical keys).
func hdr(lines ...string) http.Header {
	h := http.Header{}
	for _, l := range lines {
		k, v, _ := strings.Cut(l, ":")
		h.Add(k, strings.TrimSpace(v))
	}
	return h
}

type parseCase struct {
	name     string
	status   int
	h        http.Header
	received time.Time // zero: t0
	want     []srl.Quota
	retry    srl.Opt[time.Duration]
	limited  bool
}

func runCases(t *testing.T, p *Parser, cases []parseCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status := tc.status
			if status == 0 {
				status = 200
			}
			recv := tc.received
			if recv.IsZero() {
				recv = t0
			}
			got := p.Parse(status, tc.h, recv)
			assert.Equal(t, tc.want, got.Quotas, "quotas")
			assert.Equal(t, tc.retry, got.RetryAfter, "retry after")
			assert.Equal(t, tc.limited, got.Limited, "limited")
			assert.Equal(t, status, got.Status)
			assert.Equal(t, recv, got.Received)
			checkInvariants(t, &got)
		})
	}
}

func TestParseProviders(t *testing.T) { runCases(t, &Parser{}, providerCases()) }

func providerCases() []parseCase {
	return []parseCase{
		{
			// GitHub REST v3 docs, "Rate limiting" sample (2013): reset is epoch
			// seconds, 1247 s after the Date header. The client clock is a day off.
			name: "github classic docs sample",
			h: hdr("Date: Mon, 01 Jul 2013 17:27:06 GMT", "X-RateLimit-Limit: 60",
				"X-RateLimit-Remaining: 56", "X-RateLimit-Reset: 1372700873"),
			received: time.Date(2013, 7, 2, 17, 27, 6, 0, time.UTC),
			want:     []srl.Quota{{Dimension: "requests", Limit: n(60), Remaining: n(56), ResetIn: d(1247 * time.Second), Source: "x-ratelimit"}},
		},
		{
			// A real GitHub response quoted in GitLab's docs (api/import.md);
			// names per GitHub docs rate-limits-for-the-rest-api.md.
			name: "github with resource",
			h: hdr("Date: Tue, 18 Oct 2022 21:42:55 GMT", "Server: GitHub.com",
				"X-RateLimit-Limit: 5000", "X-RateLimit-Remaining: 4997", "X-RateLimit-Reset: 1666132381",
				"X-RateLimit-Used: 3", "X-RateLimit-Resource: core"),
			want: []srl.Quota{{Name: "core", Dimension: "requests", Limit: n(5000), Remaining: n(4997), ResetIn: d(3006 * time.Second), Source: "github"}},
		},
		{
			// GitHub docs: primary limit exceeded gives 403 or 429 with remaining 0.
			name:   "github primary limit 403",
			status: 403,
			h: hdr(date0, "x-ratelimit-limit: 5000", "x-ratelimit-remaining: 0", "x-ratelimit-used: 5000",
				"x-ratelimit-reset: 1795694460", "x-ratelimit-resource: core"),
			want:    []srl.Quota{{Name: "core", Dimension: "requests", Limit: n(5000), Remaining: n(0), ResetIn: d(time.Minute), Source: "github"}},
			limited: true,
		},
		{
			// GitHub docs: secondary limit, 403 with retry-after seconds.
			name:   "github secondary limit 403 retry-after",
			status: 403,
			h: hdr(date0, "x-ratelimit-limit: 5000", "x-ratelimit-remaining: 4990",
				"x-ratelimit-reset: 1795694460", "x-ratelimit-resource: core", "retry-after: 60"),
			want:    []srl.Quota{{Name: "core", Dimension: "requests", Limit: n(5000), Remaining: n(4990), ResetIn: d(time.Minute), Source: "github"}},
			retry:   d(time.Minute),
			limited: true,
		},
		{
			// Discord docs (discord-api-docs docs/topics/rate-limits.md), example
			// exceeded user rate limit response: Reset-After preferred over Reset.
			name:   "discord 429 docs sample",
			status: 429,
			h: hdr("Retry-After: 65", "X-RateLimit-Limit: 10", "X-RateLimit-Remaining: 0",
				"X-RateLimit-Reset: 1470173023.123", "X-RateLimit-Reset-After: 64.57",
				"X-RateLimit-Bucket: abcd1234", "X-RateLimit-Scope: user"),
			want:    []srl.Quota{{Dimension: "requests", Limit: n(10), Remaining: n(0), ResetIn: d(64570 * time.Millisecond), PartitionKey: "abcd1234", Source: "discord"}},
			retry:   d(65 * time.Second),
			limited: true,
		},
		{
			// Discord docs: Reset is epoch seconds with decimals.
			name: "discord fractional epoch without reset-after",
			h: hdr("Date: Tue, 02 Aug 2016 21:23:40 GMT", "X-RateLimit-Limit: 5",
				"X-RateLimit-Remaining: 0", "X-RateLimit-Reset: 1470173023.123"),
			want: []srl.Quota{{Dimension: "requests", Limit: n(5), Remaining: n(0), ResetIn: d(3123 * time.Millisecond), Source: "x-ratelimit"}},
		},
		{
			// Reddit (prawcore rate_limit.py): Used + float Remaining, Reset in
			// seconds, no Limit header; limit = used + remaining.
			name: "reddit used and float remaining",
			h:    hdr("X-Ratelimit-Used: 4", "X-Ratelimit-Remaining: 596.0", "X-Ratelimit-Reset: 412"),
			want: []srl.Quota{{Dimension: "requests", Limit: n(600), Remaining: n(596), ResetIn: d(412 * time.Second), Source: "x-ratelimit"}},
		},
		{
			// Envoy ratelimit_headers.cc with DRAFT_VERSION_03: limit list with a
			// named policy; the expiring limit takes the policy's window.
			name: "envoy draft-03 x-ratelimit",
			h: hdr(`x-ratelimit-limit: 10, 10;w=1;name="per-second"`, "x-ratelimit-remaining: 5",
				"x-ratelimit-reset: 1"),
			want: []srl.Quota{{Name: "per-second", Dimension: "requests", Limit: n(10), Remaining: n(5), ResetIn: d(time.Second), Window: d(time.Second), Source: "x-ratelimit"}},
		},
		{
			// Okta docs (rl-best-practices): 1200 / 1199 / 1609459200 epoch seconds.
			name: "okta x-rate-limit",
			h: hdr("Date: Thu, 31 Dec 2020 23:59:00 GMT", "X-Rate-Limit-Limit: 1200",
				"X-Rate-Limit-Remaining: 1199", "X-Rate-Limit-Reset: 1609459200"),
			want: []srl.Quota{{Dimension: "requests", Limit: n(1200), Remaining: n(1199), ResetIn: d(time.Minute), Source: "x-rate-limit"}},
		},
		{
			// X docs (fundamentals/rate-limits): 900 / 847 / 1705420800.
			name: "x twitter",
			h: hdr("Date: Tue, 16 Jan 2024 15:50:00 GMT", "x-rate-limit-limit: 900",
				"x-rate-limit-remaining: 847", "x-rate-limit-reset: 1705420800"),
			want: []srl.Quota{{Dimension: "requests", Limit: n(900), Remaining: n(847), ResetIn: d(10 * time.Minute), Source: "x-rate-limit"}},
		},
		{
			// tollbooth.go (2025): float limit, window in X-Rate-Limit-Duration,
			// plus RateLimit-* fields.
			name: "tollbooth",
			h: hdr("X-Rate-Limit-Limit: 20.00", "X-Rate-Limit-Duration: 1",
				"RateLimit-Limit: 20", "RateLimit-Remaining: 19", "RateLimit-Reset: 1"),
			want: []srl.Quota{
				{Dimension: "requests", Limit: n(20), Window: d(time.Second), Source: "x-rate-limit"},
				{Dimension: "requests", Limit: n(20), Remaining: n(19), ResetIn: d(time.Second), Source: "ietf-draft03"},
			},
		},
		{
			// Twilio SendGrid v3 docs: epoch reset 1392815263; no Date header, so
			// it counts from the received time.
			name:     "sendgrid no date header",
			h:        hdr("X-RateLimit-Limit: 500", "X-RateLimit-Remaining: 499", "X-RateLimit-Reset: 1392815263"),
			received: time.Unix(1392815203, 0).UTC(),
			want:     []srl.Quota{{Dimension: "requests", Limit: n(500), Remaining: n(499), ResetIn: d(time.Minute), Source: "x-ratelimit"}},
		},
		{
			// OpenAI docs (guides/rate-limits) sample: 60 / 150000 / 59 / 149984 / 1s / 6m0s.
			name: "openai docs sample",
			h: hdr("x-ratelimit-limit-requests: 60", "x-ratelimit-limit-tokens: 150000",
				"x-ratelimit-remaining-requests: 59", "x-ratelimit-remaining-tokens: 149984",
				"x-ratelimit-reset-requests: 1s", "x-ratelimit-reset-tokens: 6m0s"),
			want: []srl.Quota{
				{Name: "requests", Dimension: "requests", Limit: n(60), Remaining: n(59), ResetIn: d(time.Second), Window: d(time.Minute), Source: "openai"},
				{Name: "tokens", Dimension: "tokens", Limit: n(150000), Remaining: n(149984), ResetIn: d(6 * time.Minute), Window: d(time.Minute), Source: "openai"},
			},
		},
		{
			// OpenAI community thread 541210 (observed): fractional Go durations.
			name: "openai observed durations",
			h: hdr("x-ratelimit-limit-requests: 10000", "x-ratelimit-remaining-requests: 9999",
				"x-ratelimit-reset-requests: 20ms", "x-ratelimit-limit-tokens: 2000000",
				"x-ratelimit-remaining-tokens: 1990000", "x-ratelimit-reset-tokens: 4m12.172s"),
			want: []srl.Quota{
				{Name: "requests", Dimension: "requests", Limit: n(10000), Remaining: n(9999), ResetIn: d(20 * time.Millisecond), Window: d(time.Minute), Source: "openai"},
				{Name: "tokens", Dimension: "tokens", Limit: n(2000000), Remaining: n(1990000), ResetIn: d(4*time.Minute + 12172*time.Millisecond), Window: d(time.Minute), Source: "openai"},
			},
		},
		{
			// Azure OpenAI Q&A 5625878 (observed): -1 sentinel, integer-second reset.
			name: "azure openai sentinel",
			h: hdr("x-ratelimit-limit-tokens: 30000", "x-ratelimit-remaining-tokens: -1",
				"x-ratelimit-reset-tokens: 4"),
			want: []srl.Quota{{Name: "tokens", Dimension: "tokens", Limit: n(30000), ResetIn: d(4 * time.Second), Window: d(time.Minute), Source: "openai"}},
		},
		{
			// Anthropic docs (api/rate-limits): RFC 3339 resets, per-minute limits,
			// retry-after seconds on 429. Values illustrative.
			name:   "anthropic",
			status: 429,
			h: hdr(date0, "retry-after: 12",
				"anthropic-ratelimit-requests-limit: 50", "anthropic-ratelimit-requests-remaining: 0",
				"anthropic-ratelimit-requests-reset: 2026-11-26T12:00:12Z",
				"anthropic-ratelimit-tokens-limit: 90000", "anthropic-ratelimit-tokens-remaining: 88000",
				"anthropic-ratelimit-tokens-reset: 2026-11-26T12:00:01.5Z",
				"anthropic-ratelimit-input-tokens-limit: 80000", "anthropic-ratelimit-input-tokens-remaining: 79000",
				"anthropic-ratelimit-input-tokens-reset: 2026-11-26T12:00:01Z",
				"anthropic-ratelimit-output-tokens-limit: 10000", "anthropic-ratelimit-output-tokens-remaining: 9000",
				"anthropic-ratelimit-output-tokens-reset: 2026-11-26T13:00:06+01:00"),
			want: []srl.Quota{
				{Name: "requests", Dimension: "requests", Limit: n(50), Remaining: n(0), ResetIn: d(12 * time.Second), Window: d(time.Minute), Source: "anthropic"},
				{Name: "tokens", Dimension: "tokens", Limit: n(90000), Remaining: n(88000), ResetIn: d(1500 * time.Millisecond), Window: d(time.Minute), Source: "anthropic"},
				{Name: "input-tokens", Dimension: "input_tokens", Limit: n(80000), Remaining: n(79000), ResetIn: d(time.Second), Window: d(time.Minute), Source: "anthropic"},
				{Name: "output-tokens", Dimension: "output_tokens", Limit: n(10000), Remaining: n(9000), ResetIn: d(6 * time.Second), Window: d(time.Minute), Source: "anthropic"},
			},
			retry:   d(12 * time.Second),
			limited: true,
		},
		{
			// IETF draft-ietf-httpapi-ratelimit-headers-03, example verbatim:
			// the expiring limit 10 is the 10;w=1 policy; the others are quotas too.
			name: "ietf draft-03",
			h: hdr("RateLimit-Limit: 10, 10;w=1, 50;w=60, 1000;w=3600, 5000;w=86400",
				"RateLimit-Remaining: 1", "RateLimit-Reset: 7"),
			want: []srl.Quota{
				{Dimension: "requests", Limit: n(10), Remaining: n(1), ResetIn: d(7 * time.Second), Window: d(time.Second), Source: "ietf-draft03"},
				{Dimension: "requests", Limit: n(50), Window: d(time.Minute), Source: "ietf-draft03"},
				{Dimension: "requests", Limit: n(1000), Window: d(time.Hour), Source: "ietf-draft03"},
				{Dimension: "requests", Limit: n(5000), Window: d(24 * time.Hour), Source: "ietf-draft03"},
			},
		},
		{
			// IETF draft -04..-06: RateLimit-Policy example verbatim.
			name: "ietf draft-06",
			h: hdr("RateLimit-Limit: 10", "RateLimit-Remaining: 1", "RateLimit-Reset: 7",
				"RateLimit-Policy: 10;w=1, 50;w=60, 1000;w=3600, 5000;w=86400"),
			want: []srl.Quota{
				{Dimension: "requests", Limit: n(10), Remaining: n(1), ResetIn: d(7 * time.Second), Window: d(time.Second), Source: "ietf-draft06"},
				{Dimension: "requests", Limit: n(50), Window: d(time.Minute), Source: "ietf-draft06"},
				{Dimension: "requests", Limit: n(1000), Window: d(time.Hour), Source: "ietf-draft06"},
				{Dimension: "requests", Limit: n(5000), Window: d(24 * time.Hour), Source: "ietf-draft06"},
			},
		},
		{
			// IETF draft-07: RateLimit dictionary; "limit=100, remaining=50, reset=5"
			// with "RateLimit-Policy: 100;w=10" (the draft's examples).
			name: "ietf draft-07",
			h:    hdr("RateLimit: limit=100, remaining=50, reset=5", "RateLimit-Policy: 100;w=10"),
			want: []srl.Quota{{Dimension: "requests", Limit: n(100), Remaining: n(50), ResetIn: d(5 * time.Second), Window: d(10 * time.Second), Source: "ietf-draft07"}},
		},
		{
			// IETF draft-10: policy list example verbatim, RateLimit items per policy.
			name: "ietf draft-10 multi policy",
			h: hdr(`RateLimit-Policy: "burst";q=100;w=60,"daily";q=1000;w=86400`,
				`RateLimit: "burst";r=50;t=30, "daily";r=950;t=3600`),
			want: []srl.Quota{
				{Name: "burst", Dimension: "requests", Limit: n(100), Remaining: n(50), ResetIn: d(30 * time.Second), Window: d(time.Minute), Source: "ietf-draft10"},
				{Name: "daily", Dimension: "requests", Limit: n(1000), Remaining: n(950), ResetIn: d(time.Hour), Window: d(24 * time.Hour), Source: "ietf-draft10"},
			},
		},
		{
			// IETF draft-10 examples verbatim: a partition key on the policy, and a
			// RateLimit item naming a policy not in RateLimit-Policy.
			name: "ietf draft-10 partition key and unmatched item",
			h: hdr(`RateLimit-Policy: "peruser";q=100;w=60;pk=:cHsdsRa894==:`,
				`RateLimit: "default";r=50;t=30`),
			want: []srl.Quota{
				{Name: "peruser", Dimension: "requests", Limit: n(100), Window: d(time.Minute), PartitionKey: "cHsdsRa894==", Source: "ietf-draft10"},
				{Name: "default", Dimension: "requests", Remaining: n(50), ResetIn: d(30 * time.Second), Source: "ietf-draft10"},
			},
		},
		{
			// IETF draft-10 example verbatim: quota unit content-bytes.
			name: "ietf draft-10 content-bytes",
			h: hdr(`RateLimit-Policy: "peruser";q=65535;qu="content-bytes";w=10;pk=:sdfjLJUOUH==:`,
				`RateLimit: "peruser";r=999;pk=:sdfjLJUOUH==:`),
			want: []srl.Quota{{Name: "peruser", Dimension: "bytes", Limit: n(65535), Remaining: n(999), Window: d(10 * time.Second), PartitionKey: "sdfjLJUOUH==", Source: "ietf-draft10"}},
		},
		{
			// express-rate-limit draft-8 (source/headers.ts) appends one field line
			// per policy; lines join with ", ".
			name: "ietf draft-10 split over field lines",
			h: hdr(`RateLimit-Policy: "100-in-1min"; q=100; w=60; pk=:ZDM4MmIyNzkwYzg2:`,
				`RateLimit-Policy: "5000-in-1day"; q=5000; w=86400`,
				`RateLimit: "100-in-1min"; r=99; t=60`, `RateLimit: "5000-in-1day"; r=4000; t=7200`),
			want: []srl.Quota{
				{Name: "100-in-1min", Dimension: "requests", Limit: n(100), Remaining: n(99), ResetIn: d(time.Minute), Window: d(time.Minute), PartitionKey: "ZDM4MmIyNzkwYzg2", Source: "ietf-draft10"},
				{Name: "5000-in-1day", Dimension: "requests", Limit: n(5000), Remaining: n(4000), ResetIn: d(2 * time.Hour), Window: d(24 * time.Hour), Source: "ietf-draft10"},
			},
		},
		{
			// Cloudflare API docs (fundamentals/api/reference/limits): 1200 per 5
			// minutes, Ratelimit / Ratelimit-Policy field casing.
			name:   "cloudflare",
			status: 429,
			h:      hdr(`Ratelimit: "default";r=0;t=30`, `Ratelimit-Policy: "default";q=1200;w=300`, "Retry-After: 30"),
			want: []srl.Quota{
				{Name: "default", Dimension: "requests", Limit: n(1200), Remaining: n(0), ResetIn: d(30 * time.Second), Window: d(5 * time.Minute), Source: "ietf-draft10"},
			},
			retry:   d(30 * time.Second),
			limited: true,
		},
		{
			// Jira Cloud beta points quota (community post 97828, observed).
			name: "jira beta ratelimit",
			h: hdr(`Beta-RateLimit-Policy: "tenant-app-quota";q=100100;w=3600`,
				`Beta-RateLimit: "tenant-app-quota";r=17842;t=2107`),
			want: []srl.Quota{{Name: "tenant-app-quota", Dimension: "requests", Limit: n(100100), Remaining: n(17842), ResetIn: d(2107 * time.Second), Window: d(time.Hour), Source: "beta-ietf-draft10"}},
		},
		{
			// Jira Cloud rate-limiting docs: X-RateLimit-Reset "yyyy-MM-ddTHH:mmZ".
			name:   "jira minute precision reset",
			status: 429,
			h: hdr(date0, "Retry-After: 300", "X-RateLimit-Limit: 350", "X-RateLimit-Remaining: 0",
				"X-RateLimit-Reset: 2026-11-26T12:05Z", "X-RateLimit-NearLimit: true"),
			want:    []srl.Quota{{Dimension: "requests", Limit: n(350), Remaining: n(0), ResetIn: d(5 * time.Minute), Source: "x-ratelimit"}},
			retry:   d(5 * time.Minute),
			limited: true,
		},
		{
			// Docker docs (docker-hub/usage/pulls.md): window from w, in both fields.
			name: "docker hub",
			h:    hdr("ratelimit-limit: 100;w=21600", "ratelimit-remaining: 76;w=21600", "docker-ratelimit-source: 192.0.2.1"),
			want: []srl.Quota{{Dimension: "requests", Limit: n(100), Remaining: n(76), Window: d(6 * time.Hour), Source: "ietf-draft03"}},
		},
		{
			// GitLab docs (user_and_ip_rate_limits#response-headers) example values;
			// RateLimit-Reset is epoch seconds here.
			name:   "gitlab",
			status: 429,
			h: hdr("RateLimit-Limit: 60", "RateLimit-Name: throttle_authenticated_web", "RateLimit-Observed: 67",
				"RateLimit-Remaining: 0", "RateLimit-Reset: 1609844400",
				"RateLimit-ResetTime: Tue, 05 Jan 2021 11:00:00 GMT", "Retry-After: 30"),
			received: time.Unix(1609844370, 0).UTC(),
			want:     []srl.Quota{{Name: "throttle_authenticated_web", Dimension: "requests", Limit: n(60), Remaining: n(0), ResetIn: d(30 * time.Second), Window: d(time.Minute), Source: "gitlab"}},
			retry:    d(30 * time.Second),
			limited:  true,
		},
		{
			// Twitch Helix guide: Ratelimit-Reset is epoch seconds despite the name.
			name: "twitch epoch ratelimit-reset",
			h:    hdr(date0, "Ratelimit-Limit: 800", "Ratelimit-Remaining: 799", "Ratelimit-Reset: 1795694460"),
			want: []srl.Quota{{Dimension: "requests", Limit: n(800), Remaining: n(799), ResetIn: d(time.Minute), Source: "ietf-draft03"}},
		},
		{
			// Kong rate-limiting plugin docs: per-window headers plus RateLimit-*
			// for the most constraining window, merged into that window's quota.
			name: "kong",
			h: hdr("X-RateLimit-Limit-Minute: 5", "X-RateLimit-Remaining-Minute: 4",
				"X-RateLimit-Limit-Hour: 100", "X-RateLimit-Remaining-Hour: 96",
				"RateLimit-Limit: 5", "RateLimit-Remaining: 4", "RateLimit-Reset: 47"),
			want: []srl.Quota{
				{Name: "minute", Dimension: "requests", Limit: n(5), Remaining: n(4), ResetIn: d(47 * time.Second), Window: d(time.Minute), Source: "kong"},
				{Name: "hour", Dimension: "requests", Limit: n(100), Remaining: n(96), Window: d(time.Hour), Source: "kong"},
			},
		},
		{
			// Kong response-ratelimiting plugin docs: X-RateLimit-Limit-<name>-<Window>.
			name: "kong response-ratelimiting",
			h:    hdr("X-RateLimit-Limit-Videos-Minute: 10", "X-RateLimit-Remaining-Videos-Minute: 9", "X-RateLimit-Limit-Second: 3", "X-RateLimit-Remaining-Second: 2"),
			want: []srl.Quota{
				{Name: "second", Dimension: "requests", Limit: n(3), Remaining: n(2), Window: d(time.Second), Source: "kong"},
				{Name: "videos-minute", Dimension: "requests", Limit: n(10), Remaining: n(9), Window: d(time.Minute), Source: "kong"},
			},
		},
		{
			// Zendesk docs (best-practices-for-avoiding-rate-limiting): both header
			// sets describe one account limit.
			name: "zendesk",
			h:    hdr("x-rate-limit: 700", "x-rate-limit-remaining: 699", "ratelimit-limit: 700", "ratelimit-remaining: 699", "ratelimit-reset: 41"),
			want: []srl.Quota{{Dimension: "requests", Limit: n(700), Remaining: n(699), ResetIn: d(41 * time.Second), Source: "x-rate-limit"}},
		},
		{
			// express-rate-limit legacy + draft-6 headers (source/headers.ts): one quota.
			name: "express legacy and draft-6",
			h: hdr(date0, "X-RateLimit-Limit: 100", "X-RateLimit-Remaining: 99", "X-RateLimit-Reset: 1795694460",
				"RateLimit-Policy: 100;w=60", "RateLimit-Limit: 100", "RateLimit-Remaining: 99", "RateLimit-Reset: 60"),
			want: []srl.Quota{{Dimension: "requests", Limit: n(100), Remaining: n(99), ResetIn: d(time.Minute), Window: d(time.Minute), Source: "x-ratelimit"}},
		},
		{
			// Shopify REST Admin docs: used/limit ratio; Retry-After "2.0" on 429.
			name:    "shopify",
			status:  429,
			h:       hdr("X-Shopify-Shop-Api-Call-Limit: 40/40", "Retry-After: 2.0"),
			want:    []srl.Quota{{Dimension: "requests", Limit: n(40), Remaining: n(0), Source: "shopify"}},
			retry:   d(2 * time.Second),
			limited: true,
		},
		{
			// Shopify REST Admin docs example "32/40".
			name: "shopify 32/40",
			h:    hdr("X-Shopify-Shop-Api-Call-Limit: 32/40"),
			want: []srl.Quota{{Dimension: "requests", Limit: n(40), Remaining: n(8), Source: "shopify"}},
		},
		{
			// Salesforce REST docs (headers_api_usage.htm) examples.
			name: "salesforce per-app",
			h:    hdr("Sforce-Limit-Info: api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)"),
			want: []srl.Quota{
				{Name: "api-usage", Dimension: "requests", Limit: n(5000), Remaining: n(4975), Window: d(24 * time.Hour), Source: "salesforce"},
				{Name: "per-app-api-usage", Dimension: "requests", Limit: n(250), Remaining: n(233), Window: d(24 * time.Hour), PartitionKey: "sample-connected-app", Source: "salesforce"},
			},
		},
		{
			// Salesforce REST docs: over the daily limit with bursts (110018/100000).
			name: "salesforce bursts",
			h:    hdr("Sforce-Limit-Info: api-usage=110018/100000; api-bursts=1/750"),
			want: []srl.Quota{
				{Name: "api-usage", Dimension: "requests", Limit: n(100000), Remaining: n(0), Window: d(24 * time.Hour), Source: "salesforce"},
				{Name: "api-bursts", Dimension: "requests", Limit: n(750), Remaining: n(749), Source: "salesforce"},
			},
		},
		{
			// HubSpot changelog 2018-11-06 (Daily, Secondly) and third-party clients
			// (Max, Remaining, Interval-Milliseconds).
			name: "hubspot",
			h: hdr("X-HubSpot-RateLimit-Daily: 250000", "X-HubSpot-RateLimit-Daily-Remaining: 249990",
				"X-HubSpot-RateLimit-Secondly: 10", "X-HubSpot-RateLimit-Secondly-Remaining: 9",
				"X-HubSpot-RateLimit-Max: 100", "X-HubSpot-RateLimit-Remaining: 97",
				"X-HubSpot-RateLimit-Interval-Milliseconds: 10000"),
			want: []srl.Quota{
				{Name: "interval", Dimension: "requests", Limit: n(100), Remaining: n(97), Window: d(10 * time.Second), Source: "hubspot"},
				{Name: "secondly", Dimension: "requests", Limit: n(10), Remaining: n(9), Window: d(time.Second), Source: "hubspot"},
				{Name: "daily", Dimension: "requests", Limit: n(250000), Remaining: n(249990), Window: d(24 * time.Hour), Source: "hubspot"},
			},
		},
		{
			// Azure Resource Manager docs (request-limits-and-throttling) and the
			// resource form observed from Microsoft.Compute.
			name: "azure resource manager",
			h: hdr("x-ms-ratelimit-remaining-subscription-reads: 11999",
				"x-ms-ratelimit-remaining-resource: Microsoft.Compute/GetVMScaleSet3Min;197,Microsoft.Compute/GetVMScaleSet30Min;1297"),
			want: []srl.Quota{
				{Name: "Microsoft.Compute/GetVMScaleSet30Min", Dimension: "requests", Remaining: n(1297), Source: "azure"},
				{Name: "Microsoft.Compute/GetVMScaleSet3Min", Dimension: "requests", Remaining: n(197), Source: "azure"},
				{Name: "subscription-reads", Dimension: "requests", Remaining: n(11999), Source: "azure"},
			},
		},
		{
			// Linear (third-party notes): epoch-ms resets.
			name: "linear",
			h: hdr(date0, "X-RateLimit-Requests-Limit: 1500", "X-RateLimit-Requests-Remaining: 1499",
				"X-RateLimit-Requests-Reset: 1795694460000", "X-RateLimit-Complexity-Limit: 250000",
				"X-RateLimit-Complexity-Remaining: 249000", "X-RateLimit-Complexity-Reset: 1795694460000"),
			want: []srl.Quota{
				{Name: "requests", Dimension: "requests", Limit: n(1500), Remaining: n(1499), ResetIn: d(time.Minute), Source: "linear"},
				{Name: "complexity", Dimension: "points", Limit: n(250000), Remaining: n(249000), ResetIn: d(time.Minute), Source: "linear"},
			},
		},
		{
			// Vimeo (observed, pastebin RnUnccva): RFC 3339 reset.
			name: "vimeo rfc3339 reset",
			h: hdr(date0, "X-RateLimit-Limit: 250", "X-RateLimit-Remaining: 249",
				"X-RateLimit-Reset: 2026-11-26T12:15:00+00:00"),
			want: []srl.Quota{{Dimension: "requests", Limit: n(250), Remaining: n(249), ResetIn: d(15 * time.Minute), Source: "x-ratelimit"}},
		},
		{
			// Atlassian Data Center (_ratelimiting_httpheaders): window in seconds.
			name: "atlassian data center",
			h:    hdr("X-RateLimit-Limit: 20", "X-RateLimit-Remaining: 19", "X-RateLimit-Interval-Seconds: 1", "X-RateLimit-FillRate: 5"),
			want: []srl.Quota{{Dimension: "requests", Limit: n(20), Remaining: n(19), Window: d(time.Second), Source: "x-ratelimit"}},
		},
		{
			name: "no rate-limit headers",
			h:    hdr(date0, "Content-Type: application/json", "X-Request-Id: abc"),
		},
	}
}

func TestParseRetryAfter(t *testing.T) {
	cases := []struct {
		name string
		h    http.Header
		want srl.Opt[time.Duration]
	}{
		// RFC 9110 §10.2.3: delay-seconds and the three HTTP-date forms.
		{"delta seconds", hdr("Retry-After: 120"), d(2 * time.Minute)},
		{"imf-fixdate", hdr(date0, "Retry-After: Thu, 26 Nov 2026 12:01:30 GMT"), d(90 * time.Second)},
		{"rfc850", hdr(date0, "Retry-After: Thursday, 26-Nov-26 12:05:00 GMT"), d(5 * time.Minute)},
		{"asctime", hdr(date0, "Retry-After: Thu Nov 26 12:00:45 2026"), d(45 * time.Second)},
		{"date in the past clamps to 0", hdr(date0, "Retry-After: Thu, 26 Nov 2026 11:00:00 GMT"), d(0)},
		{"zero (npm behind Cloudflare)", hdr("Retry-After: 0"), d(0)},
		{"decimal (Shopify)", hdr("Retry-After: 2.5"), d(2500 * time.Millisecond)},
		// openai-python _base_client.py reads retry-after-ms first.
		{"retry-after-ms wins", hdr("Retry-After: 2", "retry-after-ms: 1500"), d(1500 * time.Millisecond)},
		// Traefik rate_limiter.go: Go duration.
		{"x-retry-in go duration", hdr("X-Retry-In: 105.849351ms"), d(105849351 * time.Nanosecond)},
		{"x-ratelimit-retry-after (MailerLite)", hdr("X-RateLimit-Retry-After: 30"), d(30 * time.Second)},
		{"negative ignored", hdr("Retry-After: -5"), srl.Opt[time.Duration]{}},
		{"garbage ignored", hdr("Retry-After: soon"), srl.Opt[time.Duration]{}},
		{"garbage ms falls back", hdr("Retry-After-Ms: x", "Retry-After: 3"), d(3 * time.Second)},
		{"huge clamps to MaxWindow", hdr("Retry-After: 999999999999"), d(srl.MaxWindow)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Parse(200, tc.h, t0)
			assert.Equal(t, tc.want, got.RetryAfter)
		})
	}
}

func TestParseLimitedByStatus(t *testing.T) {
	exhausted := hdr("X-RateLimit-Limit: 60", "X-RateLimit-Remaining: 0")
	left := hdr("X-RateLimit-Limit: 60", "X-RateLimit-Remaining: 10")
	retry := hdr("Retry-After: 5")
	cases := []struct {
		name   string
		status int
		h      http.Header
		want   bool
	}{
		{"429 without headers", 429, http.Header{}, true},
		{"429 with quota left", 429, left, true},
		{"503 with retry-after", 503, retry, true},
		{"503 without hint (plain outage)", 503, left, false},
		{"403 with remaining 0", 403, exhausted, true},
		{"403 with retry-after", 403, retry, true},
		{"403 with quota left (permission denied)", 403, left, false},
		{"403 without headers", 403, http.Header{}, false},
		{"200 with remaining 0", 200, exhausted, false},
		{"200 with retry-after", 200, retry, false},
		{"500 with retry-after", 500, retry, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Parse(tc.status, tc.h, t0)
			assert.Equal(t, tc.want, got.Limited)
		})
	}
}

// TestParseClockSkew: the client's clock being wrong by an hour either way
// changes nothing, because absolute times count from the Date header.
func TestParseClockSkew(t *testing.T) {
	heads := map[string]http.Header{
		"github epoch":          hdr(date0, "X-RateLimit-Limit: 5000", "X-RateLimit-Remaining: 4999", "X-RateLimit-Reset: 1795694460", "X-RateLimit-Resource: core"),
		"retry-after http-date": hdr(date0, "Retry-After: Thu, 26 Nov 2026 12:01:30 GMT"),
		"anthropic rfc3339": hdr(date0, "anthropic-ratelimit-requests-limit: 50", "anthropic-ratelimit-requests-remaining: 49",
			"anthropic-ratelimit-requests-reset: 2026-11-26T12:00:30Z"),
		"linear epoch ms": hdr(date0, "X-RateLimit-Requests-Limit: 1500", "X-RateLimit-Requests-Remaining: 1499", "X-RateLimit-Requests-Reset: 1795694460000"),
		"jira minute":     hdr(date0, "X-RateLimit-Limit: 10", "X-RateLimit-Remaining: 1", "X-RateLimit-Reset: 2026-11-26T12:05Z"),
		"delta":           hdr(date0, `RateLimit-Policy: "burst";q=100;w=60`, `RateLimit: "burst";r=50;t=30`),
	}
	for name, h := range heads {
		t.Run(name, func(t *testing.T) {
			right := Parse(429, h, t0)
			require.False(t, right.Empty())
			for _, skew := range []time.Duration{time.Hour, -time.Hour} {
				wrong := Parse(429, h, t0.Add(skew))
				assert.Equal(t, right.Quotas, wrong.Quotas, "skew %v", skew)
				assert.Equal(t, right.RetryAfter, wrong.RetryAfter, "skew %v", skew)
			}
		})
	}
	// Without a Date header, absolute times count from the received time.
	h := hdr("X-RateLimit-Limit: 5000", "X-RateLimit-Remaining: 4999", "X-RateLimit-Reset: 1795694460")
	got := Parse(200, h, t0.Add(-time.Hour))
	assert.Equal(t, d(time.Hour+time.Minute), got.Quotas[0].ResetIn)
	// An invalid Date header is ignored.
	h.Set("Date", "yesterday")
	got = Parse(200, h, t0)
	assert.Equal(t, d(time.Minute), got.Quotas[0].ResetIn)
}

// TestParseNonCanonicalKeys: headers set by direct map assignment (not
// canonicalised) are found too.
func TestParseNonCanonicalKeys(t *testing.T) {
	h := http.Header{
		"date":                  {"Thu, 26 Nov 2026 12:00:00 GMT"},
		"x-ratelimit-limit":     {"5000"},
		"x-ratelimit-remaining": {"4999"},
		"x-ratelimit-reset":     {"1795694460"},
		"X-RATELIMIT-RESOURCE":  {"search"},
		"ratelimit-policy":      {`"burst";q=100;w=60`},
		"RateLimit":             {`"burst";r=50;t=30`},
		"x-ratelimit-limit-day": {"1000"},
		"retry-after":           {"7"},
	}
	got := Parse(200, h, t0.Add(time.Hour))
	assert.Equal(t, []srl.Quota{
		{Name: "search", Dimension: "requests", Limit: n(5000), Remaining: n(4999), ResetIn: d(time.Minute), Source: "github"},
		{Name: "day", Dimension: "requests", Limit: n(1000), Window: d(24 * time.Hour), Source: "kong"},
		{Name: "burst", Dimension: "requests", Limit: n(100), Remaining: n(50), ResetIn: d(30 * time.Second), Window: d(time.Minute), Source: "ietf-draft10"},
	}, got.Quotas)
	assert.Equal(t, d(7*time.Second), got.RetryAfter)
}

func TestParseIETFEdgeCases(t *testing.T) { runCases(t, &Parser{}, ietfEdgeCases()) }

func ietfEdgeCases() []parseCase {
	return []parseCase{
		{
			// RFC 9651 / draft-10 §: a malformed field is ignored whole; the
			// RateLimit field alone still gives the remaining count.
			name: "malformed policy field ignored",
			h:    hdr(`RateLimit-Policy: "burst";q=100;w=60,`, `RateLimit: "burst";r=50;t=30`),
			want: []srl.Quota{{Name: "burst", Dimension: "requests", Remaining: n(50), ResetIn: d(30 * time.Second), Source: "ietf-draft10"}},
		},
		{
			name: "malformed ratelimit field ignored",
			h:    hdr(`RateLimit-Policy: "burst";q=100;w=60`, `RateLimit: "burst";r=50;t=30;`),
			want: []srl.Quota{{Name: "burst", Dimension: "requests", Limit: n(100), Window: d(time.Minute), Source: "ietf-draft10"}},
		},
		{
			name: "policy without q ignored, negative r ignored",
			h:    hdr(`RateLimit-Policy: "a";w=60, "b";q=10;w=1`, `RateLimit: "b";r=-1;t=1`),
			want: []srl.Quota{{Name: "b", Dimension: "requests", Limit: n(10), ResetIn: d(time.Second), Window: d(time.Second), Source: "ietf-draft10"}},
		},
		{
			name: "escaped policy name, concurrent-requests unit, vendor params",
			h:    hdr(`RateLimit-Policy: "a\"b";q=5;qu="concurrent-requests";acme-burst=?1`, `RateLimit: "a\"b";r=2`),
			want: []srl.Quota{{Name: `a"b`, Dimension: "concurrent_requests", Limit: n(5), Remaining: n(2), Source: "ietf-draft10"}},
		},
		{
			// draft-10: clients should ignore the fields on cached responses.
			name: "cached response ignored",
			h:    hdr("Age: 30", `RateLimit-Policy: "burst";q=100;w=60`, `RateLimit: "burst";r=50;t=30`),
		},
		{
			name: "age 0 is fresh",
			h:    hdr("Age: 0", `RateLimit-Policy: "burst";q=100;w=60`, `RateLimit: "burst";r=50`),
			want: []srl.Quota{{Name: "burst", Dimension: "requests", Limit: n(100), Remaining: n(50), Window: d(time.Minute), Source: "ietf-draft10"}},
		},
		{
			name: "q=0 is not a limit",
			h:    hdr(`RateLimit-Policy: "off";q=0;w=60`, `RateLimit: "off";r=0`),
			want: []srl.Quota{{Name: "off", Dimension: "requests", Remaining: n(0), Source: "ietf-draft10"}},
		},
		{
			// Found by FuzzParse: policies without the field trio still get a source.
			name: "draft-06 policy alone",
			h:    hdr("RateLimit-Policy: 10;w=1"),
			want: []srl.Quota{{Dimension: "requests", Limit: n(10), Window: d(time.Second), Source: "ietf-draft06"}},
		},
		{
			name: "inner list and other item types skipped",
			h:    hdr(`RateLimit-Policy: (1 2);q=3, tok;q=4, "ok";q=5;w=2`),
			want: []srl.Quota{{Name: "ok", Dimension: "requests", Limit: n(5), Window: d(2 * time.Second), Source: "ietf-draft10"}},
		},
	}
}

func TestParseGarbage(t *testing.T) { runCases(t, &Parser{}, garbageCases()) }

func garbageCases() []parseCase {
	return []parseCase{
		{
			name: "non-numbers",
			h:    hdr("X-RateLimit-Limit: NaN", "X-RateLimit-Remaining: Inf", "X-RateLimit-Reset: soon"),
		},
		{
			name: "zero and negative limits",
			h:    hdr("X-RateLimit-Limit: 0", "X-RateLimit-Remaining: -1", "X-Rate-Limit-Limit: -100"),
		},
		{
			name: "exponents, hex, overflow",
			h:    hdr("X-RateLimit-Limit: 1e400", "X-RateLimit-Remaining: 0x10", "X-Rate-Limit-Limit: 99999999999999999999"),
		},
		{
			name: "negative reset ignored, limit kept",
			h:    hdr("X-RateLimit-Limit: 10", "X-RateLimit-Reset: -30"),
			want: []srl.Quota{{Dimension: "requests", Limit: n(10), Source: "x-ratelimit"}},
		},
		{
			name: "past reset clamps to 0",
			h:    hdr(date0, "X-RateLimit-Limit: 10", "X-RateLimit-Reset: 1795694000"),
			want: []srl.Quota{{Dimension: "requests", Limit: n(10), ResetIn: d(0), Source: "x-ratelimit"}},
		},
		{
			name: "far future clamps to MaxWindow",
			h:    hdr(date0, "X-RateLimit-Limit: 10", "X-RateLimit-Reset: 999999999999999"),
			want: []srl.Quota{{Dimension: "requests", Limit: n(10), ResetIn: d(srl.MaxWindow), Source: "x-ratelimit"}},
		},
		{
			name: "huge window clamps to MaxWindow",
			h:    hdr(`RateLimit-Policy: "x";q=1;w=999999999999`),
			want: []srl.Quota{{Name: "x", Dimension: "requests", Limit: n(1), Window: d(srl.MaxWindow), Source: "ietf-draft10"}},
		},
		{
			name: "bad ratios",
			h:    hdr("X-Shopify-Shop-Api-Call-Limit: 40", "Sforce-Limit-Info: api-usage=x/5000; =1/2; api-bursts=1/0"),
		},
	}
}

func TestParseLongNames(t *testing.T) {
	long := strings.Repeat("é", 150) // 300 bytes
	got := Parse(200, hdr("X-RateLimit-Limit: 5", "X-RateLimit-Resource: "+long), t0)
	require.Len(t, got.Quotas, 1)
	assert.Equal(t, strings.Repeat("é", maxNameLen/2), got.Quotas[0].Name)
	got = Parse(200, hdr("X-RateLimit-Limit: 5", "X-RateLimit-Resource: a"+long), t0)
	assert.Equal(t, "a"+strings.Repeat("é", (maxNameLen-2)/2), got.Quotas[0].Name, "cut before a split character")
	got = Parse(200, hdr(`RateLimit-Policy: "x";q=1;qu="`+strings.Repeat("u", 150)+`"`), t0)
	assert.Equal(t, srl.DimRequests, got.Quotas[0].Dimension, "an over-long unit is dropped")
}

func TestParseBounded(t *testing.T) {
	h := http.Header{}
	for i := 0; i < 5000; i++ {
		h[strings.Repeat("x", i%50)+"-Ratelimit-Limit-"+strings.Repeat("A", i)] = []string{"10"}
		h.Add("X-Ms-Ratelimit-Remaining-R"+strings.Repeat("b", i), "1")
	}
	var b strings.Builder
	for i := 0; i < 10000; i++ {
		b.WriteString(`"p`)
		b.WriteString(strings.Repeat("q", i%7))
		b.WriteString(`";q=10;w=60, `)
	}
	b.WriteString(`"last";q=1`)
	h.Set("RateLimit-Policy", b.String())
	h.Set("X-Ms-Ratelimit-Remaining-Resource", strings.Repeat("A;1,", 100000))
	h.Set("X-RateLimit-Limit", strings.Repeat("9", 1<<20))
	got := Parse(200, h, t0)
	assert.LessOrEqual(t, len(got.Quotas), maxQuotas)
	checkInvariants(t, &got)
}

// checkInvariants asserts what Parse promises for any input.
func checkInvariants(t testing.TB, o *srl.Observation) {
	t.Helper()
	if len(o.Quotas) > maxQuotas {
		t.Fatalf("%d quotas, more than %d", len(o.Quotas), maxQuotas)
	}
	okDur := func(v srl.Opt[time.Duration]) bool {
		return !v.Valid || v.Value >= 0 && v.Value <= srl.MaxWindow
	}
	for i, q := range o.Quotas {
		if q.Limit.Valid && !(q.Limit.Value > 0 && q.Limit.Value <= maxCount) {
			t.Fatalf("quota %d: limit %v", i, q.Limit.Value)
		}
		if q.Remaining.Valid && !(q.Remaining.Value >= 0 && q.Remaining.Value <= maxCount) {
			t.Fatalf("quota %d: remaining %v", i, q.Remaining.Value)
		}
		if !okDur(q.ResetIn) || !okDur(q.Window) || q.Window.Valid && q.Window.Value == 0 {
			t.Fatalf("quota %d: reset %v window %v", i, q.ResetIn, q.Window)
		}
		if !q.Limit.Valid && !q.Remaining.Valid && !q.ResetIn.Valid {
			t.Fatalf("quota %d says nothing", i)
		}
		if q.Dimension == "" || len(q.Dimension) > maxDimLen || len(q.Name) > maxNameLen || q.Source == "" {
			t.Fatalf("quota %d: dimension %q name %q source %q", i, q.Dimension, q.Name, q.Source)
		}
	}
	if !okDur(o.RetryAfter) {
		t.Fatalf("retry after %v", o.RetryAfter)
	}
}

// RateLimit-Reset is guessed like X-RateLimit-Reset (delta, epoch, then
// dates): an HTTP-date, whose weekday ends in a comma, is not cut at it as
// a draft-03 parameter list would be.
func TestParseIETFResetHTTPDate(t *testing.T) {
	runCases(t, &Parser{}, []parseCase{
		{
			name: "http-date",
			h:    hdr(date0, "RateLimit-Limit: 10", "RateLimit-Remaining: 1", "RateLimit-Reset: Thu, 26 Nov 2026 12:00:30 GMT"),
			want: []srl.Quota{{Dimension: "requests", Limit: n(10), Remaining: n(1), ResetIn: d(30 * time.Second), Source: "ietf-draft03"}},
		},
		{
			name: "beta http-date",
			h:    hdr(date0, "Beta-RateLimit-Limit: 10", "Beta-RateLimit-Reset: Thu, 26 Nov 2026 12:00:30 GMT"),
			want: []srl.Quota{{Dimension: "requests", Limit: n(10), ResetIn: d(30 * time.Second), Source: "beta-ietf-draft03"}},
		},
		{
			name: "delta with parameters still cut",
			h:    hdr("RateLimit-Limit: 100;w=60", "RateLimit-Reset: 30;w=60"),
			want: []srl.Quota{{Dimension: "requests", Limit: n(100), ResetIn: d(30 * time.Second), Window: d(time.Minute), Source: "ietf-draft03"}},
		},
	})
}

// A retry hint of zero is no guidance (reference §5.7), so it does not make
// a 403 or a 503 a rate-limit rejection: Atlassian Data Center sends
// "retry-after: 0" on every response while tokens remain, so a plain
// permission error would read as limited. RetryAfter still reports it.
func TestParseLimitedZeroRetryAfter(t *testing.T) {
	dc := hdr("X-RateLimit-Limit: 20", "X-RateLimit-Remaining: 19", "X-RateLimit-Interval-Seconds: 1", "Retry-After: 0")
	cases := []struct {
		name   string
		status int
		h      http.Header
		want   bool
	}{
		{"403 atlassian dc with tokens left", 403, dc, false},
		{"403 retry-after 0 alone", 403, hdr("Retry-After: 0"), false},
		{"403 http-date now", 403, hdr(date0, "Retry-After: Thu, 26 Nov 2026 12:00:00 GMT"), false},
		{"503 retry-after 0", 503, hdr("Retry-After: 0"), false},
		{"503 retry-after-ms 0", 503, hdr("Retry-After-Ms: 0"), false},
		{"403 retry-after 0, quota exhausted", 403, hdr("X-RateLimit-Limit: 20", "X-RateLimit-Remaining: 0", "Retry-After: 0"), true},
		{"429 retry-after 0 (npm)", 429, hdr("Retry-After: 0"), true},
		{"503 retry-after 1", 503, hdr("Retry-After: 1"), true},
		{"403 retry-after 0.5", 403, hdr("Retry-After: 0.5"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Parse(tc.status, tc.h, t0)
			assert.Equal(t, tc.want, got.Limited)
			assert.True(t, got.RetryAfter.Valid, "the hint is still reported")
		})
	}
}

// A zero retry hint is no guidance (reference §5.7): a later hint that
// says more wins over it. Traefik before v3 rounds Retry-After with %.0f,
// so a 105 ms wait is "Retry-After: 0" next to "X-Retry-In: 105.849351ms".
// Zero alone is still reported.
func TestParseRetryAfterZeroFallsThrough(t *testing.T) {
	cases := []struct {
		name string
		p    Parser
		h    http.Header
		want srl.Opt[time.Duration]
	}{
		{"old traefik", Parser{}, hdr("Retry-After: 0", "X-Retry-In: 105.849351ms"), d(105849351 * time.Nanosecond)},
		{"zero ms, seconds", Parser{}, hdr("Retry-After-Ms: 0", "Retry-After: 5"), d(5 * time.Second)},
		{"mapping zero, standard", Parser{Mapping: &Mapping{RetryAfter: "X-Wait"}}, hdr("X-Wait: 0", "Retry-After: 5"), d(5 * time.Second)},
		{"all zero", Parser{}, hdr("Retry-After-Ms: 0", "Retry-After: 0", "X-Retry-In: 0s"), d(0)},
		{"zero alone", Parser{}, hdr("Retry-After: 0"), d(0)},
		{"first non-zero still wins", Parser{}, hdr("Retry-After: 2", "X-Retry-In: 105ms"), d(2 * time.Second)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.p.Parse(429, tc.h, t0)
			assert.Equal(t, tc.want, got.RetryAfter)
		})
	}
}

// A response served from a cache (Age > 0) did not reach the server's
// limiter, and its rate-limit fields tell the state when it was generated:
// every quota family is ignored, as the IETF drafts require for theirs
// (found by review: only the IETF fields were; a stale GitHub reset was
// converted against Date and overstated by the Age, and a stale remaining
// of 0 on a 403 blocked the host). Retry hints and the status still count.
func TestParseCachedResponseIgnoresEveryQuota(t *testing.T) {
	github := []string{date0, "X-RateLimit-Limit: 60", "X-RateLimit-Remaining: 0", "X-RateLimit-Reset: 1795694460", "X-RateLimit-Resource: core"}
	for _, tc := range []struct {
		name string
		p    Parser
		h    http.Header
	}{
		{"github", Parser{}, hdr(append([]string{"Age: 3600"}, github...)...)},
		{"openai", Parser{}, hdr("Age: 5", "X-RateLimit-Limit-Requests: 60", "X-RateLimit-Remaining-Requests: 59", "X-RateLimit-Reset-Requests: 1s")},
		{"anthropic", Parser{}, hdr("Age: 5", "Anthropic-RateLimit-Requests-Limit: 50", "Anthropic-RateLimit-Requests-Remaining: 49")},
		{"shopify", Parser{}, hdr("Age: 5", "X-Shopify-Shop-Api-Call-Limit: 40/40")},
		{"mapping", Parser{Mapping: &Mapping{Limit: "X-Quota", Remaining: "X-Quota-Left"}}, hdr("Age: 5", "X-Quota: 10", "X-Quota-Left: 0")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.p.Parse(403, tc.h, t0)
			assert.Empty(t, got.Quotas)
			assert.False(t, got.Limited, "a stale exhausted quota does not make a 403 rate limited")
		})
	}
	// The status and the retry hints still count.
	got := Parse(429, hdr(append([]string{"Age: 3600", "Retry-After: 5"}, github...)...), t0)
	assert.Empty(t, got.Quotas)
	assert.True(t, got.Limited)
	assert.Equal(t, d(5*time.Second), got.RetryAfter)
	got = (&Parser{Mapping: &Mapping{Limit: "X-Quota", RetryAfter: "X-Wait"}}).Parse(429, hdr("Age: 5", "X-Quota: 10", "X-Wait: 7"), t0)
	assert.Empty(t, got.Quotas)
	assert.Equal(t, d(7*time.Second), got.RetryAfter, "the Mapping's retry hint")
	// Age 0 (or no valid Age) is fresh.
	for _, age := range []string{"Age: 0", "Age: soon"} {
		got = Parse(200, hdr(append([]string{age}, github...)...), t0)
		assert.Len(t, got.Quotas, 1, age)
	}
}

// A reset that a proxy joined from two field lines ("1795694460,
// 1795694460") is read from its first member, as the limit and remaining
// count are (found by review: the reset was lost).
func TestParseJoinedResetReadsItsFirstMember(t *testing.T) {
	got := Parse(200, hdr(date0, "X-RateLimit-Limit: 60, 60", "X-RateLimit-Remaining: 59, 59", "X-RateLimit-Reset: 1795694460, 1795694460"), t0)
	require.Len(t, got.Quotas, 1)
	q := got.Quotas[0]
	assert.Equal(t, n(60), q.Limit)
	assert.Equal(t, n(59), q.Remaining)
	want := time.Unix(1795694460, 0).Sub(t0)
	assert.Equal(t, d(want), q.ResetIn)
	// An HTTP-date keeps its comma.
	got = Parse(200, hdr(date0, "X-RateLimit-Limit: 60", "X-RateLimit-Reset: Thu, 26 Nov 2026 12:00:30 GMT"), t0)
	require.Len(t, got.Quotas, 1)
	assert.Equal(t, d(30*time.Second), got.Quotas[0].ResetIn)
}
