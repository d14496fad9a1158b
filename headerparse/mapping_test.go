package headerparse

import (
	"errors"
	"net/http"
	"net/textproto"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
)

func TestParseResetFormat(t *testing.T) {
	for f := ResetAuto; f <= ResetDuration; f++ {
		got, err := ParseResetFormat(f.String())
		require.NoError(t, err)
		assert.Equal(t, f, got, "round trip of %s", f)
	}
	cases := map[string]ResetFormat{
		"auto": ResetAuto, "": ResetAuto, "delta_seconds": ResetDeltaSeconds, "Delta-Seconds": ResetDeltaSeconds,
		"seconds": ResetDeltaSeconds, "delta_ms": ResetDeltaMillis, "ms": ResetDeltaMillis,
		"epoch_seconds": ResetEpochSeconds, "unix": ResetEpochSeconds, "epoch_ms": ResetEpochMillis,
		"unix_ms": ResetEpochMillis, "http_date": ResetHTTPDate, "http-date": ResetHTTPDate,
		"rfc3339": ResetRFC3339, " ISO8601 ": ResetRFC3339, "duration": ResetDuration,
	}
	for in, want := range cases {
		got, err := ParseResetFormat(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := ParseResetFormat("fortnights")
	assert.ErrorIs(t, err, ErrInvalidMapping)
	assert.Equal(t, "ResetFormat(42)", ResetFormat(42).String())
}

func TestParseMapping(t *testing.T) {
	cases := []struct {
		spec string
		want Mapping
		err  string // substring of the error; empty: no error
	}{
		{
			spec: "limit=X-My-Limit,remaining=X-My-Left,reset=X-My-Reset,reset_format=delta_ms,window=60s",
			want: Mapping{Limit: "X-My-Limit", Remaining: "X-My-Left", Reset: "X-My-Reset", ResetFormat: ResetDeltaMillis, Window: time.Minute},
		},
		{
			spec: " limit = x-quota-max , used=x-quota-used, retry-after=x-wait, window=3600, name=hourly, dimension=tokens ",
			want: Mapping{Limit: "X-Quota-Max", Used: "X-Quota-Used", RetryAfter: "X-Wait", Window: time.Hour, Name: "hourly", Dimension: "tokens"},
		},
		{spec: "", err: "empty spec"},
		{spec: "reset_format=delta_ms", err: "names no header"},
		{spec: "limit", err: "not key=value"},
		{spec: "limit=", err: "not key=value"},
		{spec: "limit=a,limit=b", err: "given twice"},
		{spec: "colour=red", err: "unknown key"},
		{spec: "limit=X My Limit", err: "not a header name"},
		{spec: "limit=X-A,reset_format=weekly", err: "unknown reset format"},
		{spec: "limit=X-A,window=-5s", err: "must be positive"},
		{spec: "limit=X-A,window=9999h", err: "at most"},
		{spec: "limit=X-A,window=soon", err: "not a duration"},
	}
	for _, tc := range cases {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := ParseMapping(tc.spec)
			if tc.err != "" {
				require.Error(t, err)
				assert.True(t, errors.Is(err, ErrInvalidMapping))
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func mustMapping(t *testing.T, spec string) *Mapping {
	t.Helper()
	m, err := ParseMapping(spec)
	require.NoError(t, err)
	return &m
}

func TestParserMapping(t *testing.T) {
	t.Run("custom headers", func(t *testing.T) {
		p := &Parser{Mapping: mustMapping(t, "limit=X-My-Limit,remaining=X-My-Left,reset=X-My-Reset,reset_format=delta_ms,window=60s,name=api")}
		runCases(t, p, []parseCase{{
			name: "read",
			h:    hdr("X-My-Limit: 100", "X-My-Left: 40", "X-My-Reset: 1500"),
			want: []srl.Quota{{Name: "api", Dimension: "requests", Limit: n(100), Remaining: n(40), ResetIn: d(1500 * time.Millisecond), Window: d(time.Minute), Source: "mapping"}},
		}, {
			name: "standard formats still apply",
			h:    hdr("X-My-Limit: 100", "X-My-Left: 40", "Retry-After: 3", `RateLimit-Policy: "day";q=1000;w=86400`),
			want: []srl.Quota{
				{Name: "api", Dimension: "requests", Limit: n(100), Remaining: n(40), Window: d(time.Minute), Source: "mapping"},
				{Name: "day", Dimension: "requests", Limit: n(1000), Window: d(24 * time.Hour), Source: "ietf-draft10"},
			},
			retry: d(3 * time.Second),
		}, {
			name: "absent headers give nothing",
			h:    hdr("Content-Type: text/plain"),
		}})
	})

	t.Run("standard names with another reset format", func(t *testing.T) {
		// Prisjakt sends X-RateLimit-Reset as milliseconds from now (reference
		// §5): no guess can tell; the mapping says so, and the standard
		// family fills in the rest of the same quota instead of a second one.
		p := &Parser{Mapping: mustMapping(t, "reset=X-RateLimit-Reset,reset_format=delta_ms")}
		runCases(t, p, []parseCase{{
			name: "merged",
			h:    hdr("X-RateLimit-Limit: 1000", "X-RateLimit-Remaining: 998", "X-RateLimit-Reset: 600000"),
			want: []srl.Quota{{Dimension: "requests", Limit: n(1000), Remaining: n(998), ResetIn: d(10 * time.Minute), Source: "mapping"}},
		}})
		got := Parse(200, hdr("X-RateLimit-Limit: 1000", "X-RateLimit-Reset: 600000"), t0)
		assert.Equal(t, d(600000*time.Second), got.Quotas[0].ResetIn, "without the mapping, 600000 reads as seconds")
	})

	t.Run("server window wins over mapping window", func(t *testing.T) {
		p := &Parser{Mapping: mustMapping(t, "limit=RateLimit-Limit,remaining=RateLimit-Remaining,window=1h")}
		runCases(t, p, []parseCase{{
			name: "docker",
			h:    hdr("ratelimit-limit: 100;w=21600", "ratelimit-remaining: 76;w=21600"),
			want: []srl.Quota{{Dimension: "requests", Limit: n(100), Remaining: n(76), Window: d(6 * time.Hour), Source: "mapping"}},
		}})
	})

	t.Run("used and epoch and retry", func(t *testing.T) {
		p := &Parser{Mapping: mustMapping(t, "used=X-Used,remaining=X-Left,reset=X-Reset-At,reset_format=epoch_ms,retry_after=X-Wait,dimension=tokens")}
		runCases(t, p, []parseCase{{
			name:    "read",
			status:  429,
			h:       hdr(date0, "X-Used: 60", "X-Left: 40", "X-Reset-At: 1795694430000", "X-Wait: 1m30s", "Retry-After: 5"),
			want:    []srl.Quota{{Dimension: "tokens", Limit: n(100), Remaining: n(40), ResetIn: d(30 * time.Second), Source: "mapping"}},
			retry:   d(90 * time.Second),
			limited: true,
		}})
	})

	t.Run("every reset format", func(t *testing.T) {
		cases := []struct {
			f ResetFormat
			v string
		}{
			{ResetDeltaSeconds, "30"},
			{ResetDeltaMillis, "30000"},
			{ResetEpochSeconds, "1795694430"},
			{ResetEpochMillis, "1795694430000"},
			{ResetHTTPDate, "Thu, 26 Nov 2026 12:00:30 GMT"},
			{ResetRFC3339, "2026-11-26T12:00:30Z"},
			{ResetDuration, "30s"},
			{ResetAuto, "30"},
		}
		for _, tc := range cases {
			p := &Parser{Mapping: &Mapping{Reset: "X-R", ResetFormat: tc.f}}
			got := p.Parse(200, hdr(date0, "X-R: "+tc.v), t0)
			require.Len(t, got.Quotas, 1, tc.f.String())
			assert.Equal(t, d(30*time.Second), got.Quotas[0].ResetIn, tc.f.String())
			// A value in another format is ignored, not misread.
			got = p.Parse(200, hdr(date0, "X-R: later"), t0)
			assert.Empty(t, got.Quotas, tc.f.String())
		}
	})

	t.Run("hand-built mapping and non-canonical keys", func(t *testing.T) {
		p := &Parser{Mapping: &Mapping{Limit: "x-my-limit", Remaining: "X-MY-LEFT"}}
		h := http.Header{"x-my-limit": {"10"}, textproto.CanonicalMIMEHeaderKey("x-my-left"): {"3"}}
		got := p.Parse(200, h, t0)
		assert.Equal(t, []srl.Quota{{Dimension: "requests", Limit: n(10), Remaining: n(3), Source: "mapping"}}, got.Quotas)
	})

	t.Run("nil parser and nil mapping read standard formats", func(t *testing.T) {
		var p *Parser
		got := p.Parse(200, hdr("X-RateLimit-Limit: 5"), t0)
		assert.Len(t, got.Quotas, 1)
	})
}

// A mapped header under several non-canonical spellings (direct map
// assignment) is read from the first name in name order, as the standard
// formats do, whatever order the map gives.
func TestParserMappingNonCanonicalIsDeterministic(t *testing.T) {
	p := &Parser{Mapping: &Mapping{Limit: "X-My-Limit", Remaining: "X-My-Left"}}
	h := http.Header{"x-my-limit": {"10"}, "X-MY-LIMIT": {"20"}, "x-My-Limit": {"30"}, "x-my-left": {"1"}, "X-my-left": {"2"}}
	want := []srl.Quota{{Dimension: "requests", Limit: n(20), Remaining: n(2), Source: "mapping"}}
	for range 100 {
		got := p.Parse(200, h, t0)
		require.Equal(t, want, got.Quotas)
	}
}
