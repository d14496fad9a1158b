package headerparse

import (
	"net/http"
	"reflect"
	"testing"

	srl "github.com/smartratelimit/smartratelimit"
)

// githubResponse is the header of a typical GitHub REST response (22 fields).
func githubResponse() http.Header {
	return hdr(
		"Date: Thu, 26 Nov 2026 12:00:00 GMT",
		"Content-Type: application/json; charset=utf-8",
		"Cache-Control: private, max-age=60, s-maxage=60",
		"Vary: Accept, Authorization, Cookie, X-GitHub-OTP",
		`ETag: W/"4f8e2b3c9a1d7e6f5a4b3c2d1e0f9a8b"`,
		"Last-Modified: Wed, 25 Nov 2026 09:14:02 GMT",
		"X-OAuth-Scopes: repo",
		"X-Accepted-OAuth-Scopes: repo",
		"X-GitHub-Media-Type: github.v3; format=json",
		"x-github-api-version-selected: 2022-11-28",
		"X-RateLimit-Limit: 5000",
		"X-RateLimit-Remaining: 4997",
		"X-RateLimit-Reset: 1795697400",
		"X-RateLimit-Used: 3",
		"X-RateLimit-Resource: core",
		"Access-Control-Expose-Headers: ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit",
		"Access-Control-Allow-Origin: *",
		"Strict-Transport-Security: max-age=31536000; includeSubdomains; preload",
		"X-Frame-Options: deny",
		"X-Content-Type-Options: nosniff",
		"Server: github.com",
		"X-GitHub-Request-Id: C0DE:1F2E:3A4B5C:6D7E8F:67890ABC",
	)
}

// ietfResponse is a response with two draft-10 policies, as Cloudflare or
// express-rate-limit send them, among 14 other fields.
func ietfResponse() http.Header {
	return hdr(
		"Date: Thu, 26 Nov 2026 12:00:00 GMT",
		"Content-Type: application/json",
		"Content-Length: 1432",
		"Connection: keep-alive",
		"Cache-Control: no-store",
		"Vary: Accept-Encoding",
		"Server: cloudflare",
		"CF-Ray: 8f1a2b3c4d5e6f70-AMS",
		"CF-Cache-Status: DYNAMIC",
		"Strict-Transport-Security: max-age=31536000",
		"X-Content-Type-Options: nosniff",
		"X-Request-Id: 6f1c2a0e-9d3b-4f7a-8e21-3c4d5e6f7a8b",
		"Set-Cookie: __cf_bm=abc; path=/; HttpOnly",
		"Alt-Svc: h3=\":443\"; ma=86400",
		`RateLimit-Policy: "burst";q=100;w=60, "daily";q=5000;w=86400;pk=:cHsdsRa894==:`,
		`RateLimit: "burst";r=42;t=12, "daily";r=4321;t=3600;pk=:cHsdsRa894==:`,
	)
}

var sink srl.Observation

func BenchmarkParseGitHub(b *testing.B) {
	h := githubResponse()
	b.ReportAllocs()
	for b.Loop() {
		sink = Parse(200, h, t0)
	}
}

func BenchmarkParseIETFMultiPolicy(b *testing.B) {
	h := ietfResponse()
	b.ReportAllocs()
	for b.Loop() {
		sink = Parse(200, h, t0)
	}
}

var lookupSink string

// BenchmarkHeaderLookupGitHub is the baseline for BenchmarkParseGitHub: the
// five h.Get calls any client makes to read GitHub's rate-limit headers,
// and nothing else.
func BenchmarkHeaderLookupGitHub(b *testing.B) {
	h := githubResponse()
	b.ReportAllocs()
	for b.Loop() {
		lookupSink = h.Get("X-RateLimit-Limit")
		lookupSink = h.Get("X-RateLimit-Remaining")
		lookupSink = h.Get("X-RateLimit-Reset")
		lookupSink = h.Get("X-RateLimit-Used")
		lookupSink = h.Get("X-RateLimit-Resource")
	}
}

// BenchmarkHeaderLookupIETF is the baseline for BenchmarkParseIETFMultiPolicy:
// five h.Get calls (the two fields, Date, Age, Retry-After).
func BenchmarkHeaderLookupIETF(b *testing.B) {
	h := ietfResponse()
	b.ReportAllocs()
	for b.Loop() {
		lookupSink = h.Get("RateLimit-Policy")
		lookupSink = h.Get("RateLimit")
		lookupSink = h.Get("Date")
		lookupSink = h.Get("Age")
		lookupSink = h.Get("Retry-After")
	}
}

// TestParseAllocs pins the allocation budget the benchmarks report, so a
// regression fails the tests rather than only a benchmark run.
func TestParseAllocs(t *testing.T) {
	for name, h := range map[string]http.Header{"github": githubResponse(), "ietf": ietfResponse()} {
		allocs := testing.AllocsPerRun(200, func() { sink = Parse(200, h, t0) })
		if allocs > 2 {
			t.Errorf("%s: %v allocations per Parse, want at most 2", name, allocs)
		}
	}
	got := Parse(200, ietfResponse(), t0)
	if len(got.Quotas) != 2 || !got.Quotas[1].Remaining.Valid || got.Quotas[1].PartitionKey != "cHsdsRa894==" {
		t.Fatalf("ietf benchmark input parsed wrong: %+v", got.Quotas)
	}
	got = Parse(200, githubResponse(), t0)
	if len(got.Quotas) != 1 || got.Quotas[0].Name != "core" || got.Quotas[0].ResetIn.Value != 3000e9 {
		t.Fatalf("github benchmark input parsed wrong: %+v", got.Quotas)
	}
}

// ParseInto gives Parse's result and, with a buffer that has room,
// allocates nothing.
func TestParseIntoReusesTheBuffer(t *testing.T) {
	for _, h := range []http.Header{githubResponse(), ietfResponse()} {
		want := Parse(200, h, t0)
		var o srl.Observation
		var p Parser
		p.ParseInto(&o, 200, h, t0)
		if !reflect.DeepEqual(o, want) {
			t.Fatalf("ParseInto = %+v, want %+v", o, want)
		}
		if n := testing.AllocsPerRun(100, func() { p.ParseInto(&o, 200, h, t0) }); n != 0 {
			t.Fatalf("ParseInto allocates %v times per call with a buffer", n)
		}
	}
}
