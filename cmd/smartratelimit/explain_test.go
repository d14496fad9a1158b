package main

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func explainRun(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runExplain(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestExplainGolden(t *testing.T) {
	cases := []struct {
		name string
		args []string
		in   string
		want string
	}{
		{
			// A real GitHub response head as quoted in GitLab's docs (api/import.md):
			// the epoch reset counts from the Date header, not from the local clock.
			name: "github",
			in: "HTTP/1.1 200 OK\r\n" +
				"Date: Tue, 18 Oct 2022 21:42:55 GMT\r\n" +
				"Server: GitHub.com\r\n" +
				"Content-Type: application/json; charset=utf-8\r\n" +
				"X-RateLimit-Limit: 5000\r\n" +
				"X-RateLimit-Remaining: 4997\r\n" +
				"X-RateLimit-Reset: 1666132381\r\n" +
				"X-RateLimit-Used: 3\r\n" +
				"X-RateLimit-Resource: core\r\n" +
				"\r\n" +
				"[{\"id\": 1}]\n",
			want: `{"status":200,"limited":false,"limit":5000,"remaining":4997,"reset_in_seconds":3006,"window_seconds":null,"retry_after_seconds":null,` +
				`"quotas":[{"name":"core","dimension":"requests","limit":5000,"remaining":4997,"reset_in_seconds":3006,"window_seconds":null,"partition_key":null,"source":"github"}]}`,
		},
		{
			// IETF draft-10 policy example verbatim, with RateLimit items; the
			// binding quota is the one with the least remaining fraction.
			name: "ietf draft-10 multi-policy",
			in: "HTTP/2 200\n" +
				"content-type: application/json\n" +
				`ratelimit-policy: "burst";q=100;w=60,"daily";q=1000;w=86400` + "\n" +
				`ratelimit: "burst";r=50;t=30, "daily";r=100;t=36000;pk=:cHsdsRa894==:` + "\n",
			want: `{"status":200,"limited":false,"limit":1000,"remaining":100,"reset_in_seconds":36000,"window_seconds":86400,"retry_after_seconds":null,` +
				`"quotas":[{"name":"burst","dimension":"requests","limit":100,"remaining":50,"reset_in_seconds":30,"window_seconds":60,"partition_key":null,"source":"ietf-draft10"},` +
				`{"name":"daily","dimension":"requests","limit":1000,"remaining":100,"reset_in_seconds":36000,"window_seconds":86400,"partition_key":"cHsdsRa894==","source":"ietf-draft10"}]}`,
		},
		{
			// RFC 9110 §10.2.3: Retry-After as an HTTP-date, counted from Date;
			// --now is ignored when the response has a Date header.
			name: "429 retry-after http-date",
			args: []string{"--now", "2030-01-01T00:00:00Z"},
			in: "HTTP/1.1 429 Too Many Requests\n" +
				"Date: Thu, 26 Nov 2026 12:00:00 GMT\n" +
				"Retry-After: Thu, 26 Nov 2026 12:01:30 GMT\n" +
				"Content-Length: 0\n",
			want: `{"status":429,"limited":true,"limit":null,"remaining":null,"reset_in_seconds":null,"window_seconds":null,"retry_after_seconds":90,"quotas":[]}`,
		},
		{
			// Without a Date header, --now is the reference for absolute times.
			name: "now flag without date",
			args: []string{"-now=2026-11-26T12:00:00Z"},
			in:   "HTTP/1.1 403 Forbidden\nX-RateLimit-Limit: 60\nX-RateLimit-Remaining: 0\nX-RateLimit-Reset: 1795694445\n",
			want: `{"status":403,"limited":true,"limit":60,"remaining":0,"reset_in_seconds":45,"window_seconds":null,"retry_after_seconds":null,` +
				`"quotas":[{"name":"","dimension":"requests","limit":60,"remaining":0,"reset_in_seconds":45,"window_seconds":null,"partition_key":null,"source":"x-ratelimit"}]}`,
		},
		{
			// OpenAI docs sample: two dimensions; requests bind (59/60 left is a
			// smaller share than 149984/150000).
			name: "openai",
			in: "HTTP/2 200\nx-ratelimit-limit-requests: 60\nx-ratelimit-limit-tokens: 150000\n" +
				"x-ratelimit-remaining-requests: 59\nx-ratelimit-remaining-tokens: 149984\n" +
				"x-ratelimit-reset-requests: 1s\nx-ratelimit-reset-tokens: 6m0s\n",
			want: `{"status":200,"limited":false,"limit":60,"remaining":59,"reset_in_seconds":1,"window_seconds":60,"retry_after_seconds":null,` +
				`"quotas":[{"name":"requests","dimension":"requests","limit":60,"remaining":59,"reset_in_seconds":1,"window_seconds":60,"partition_key":null,"source":"openai"},` +
				`{"name":"tokens","dimension":"tokens","limit":150000,"remaining":149984,"reset_in_seconds":360,"window_seconds":60,"partition_key":null,"source":"openai"}]}`,
		},
		{
			name: "custom mapping",
			args: []string{"--map", "limit=X-My-Limit,remaining=X-My-Left,reset=X-My-Reset,reset_format=delta_ms,window=60s,name=mine"},
			in:   "HTTP/1.1 200 OK\nX-My-Limit: 100\nX-My-Left: 7\nX-My-Reset: 2500\n",
			want: `{"status":200,"limited":false,"limit":100,"remaining":7,"reset_in_seconds":2.5,"window_seconds":60,"retry_after_seconds":null,` +
				`"quotas":[{"name":"mine","dimension":"requests","limit":100,"remaining":7,"reset_in_seconds":2.5,"window_seconds":60,"partition_key":null,"source":"mapping"}]}`,
		},
		{
			name: "no rate-limit headers, no trailing blank line",
			in:   "HTTP/1.0 200 OK\nContent-Type: text/html",
			want: `{"status":200,"limited":false,"limit":null,"remaining":null,"reset_in_seconds":null,"window_seconds":null,"retry_after_seconds":null,"quotas":[]}`,
		},
		{
			name: "interim 100 Continue head skipped, folded line, body ignored",
			in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\nRetry-After:\r\n  120\r\n\r\n" +
				"X-RateLimit-Limit: 1\r\n",
			want: `{"status":503,"limited":true,"limit":null,"remaining":null,"reset_in_seconds":null,"window_seconds":null,"retry_after_seconds":120,"quotas":[]}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := explainRun(t, tc.in, tc.args...)
			require.Equal(t, 0, code, "stderr: %s", stderr)
			assert.Empty(t, stderr)
			assert.Equal(t, tc.want+"\n", stdout)
		})
	}
}

// TestExplainShape pins the key set of the output, with and without quotas.
func TestExplainShape(t *testing.T) {
	keys := func(m map[string]any) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks
	}
	for _, in := range []string{
		"HTTP/1.1 200 OK\n",
		"HTTP/1.1 200 OK\nRateLimit-Policy: \"a\";q=1;w=1\nRateLimit: \"a\";r=0;t=1\n",
	} {
		code, stdout, _ := explainRun(t, in)
		require.Equal(t, 0, code)
		var top map[string]any
		require.NoError(t, json.Unmarshal([]byte(stdout), &top))
		assert.Equal(t, []string{"limit", "limited", "quotas", "remaining", "reset_in_seconds", "retry_after_seconds", "status", "window_seconds"}, keys(top))
		quotas, ok := top["quotas"].([]any)
		require.True(t, ok, "quotas is always an array")
		for _, q := range quotas {
			assert.Equal(t, []string{"dimension", "limit", "name", "partition_key", "remaining", "reset_in_seconds", "source", "window_seconds"}, keys(q.(map[string]any)))
		}
	}
}

func TestExplainErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		in   string
		code int
		msg  string // substring of stderr
	}{
		{"empty input", nil, "", 1, "no input"},
		{"blank input", nil, "\n\r\n", 1, "no input"},
		{"no status line", nil, "Content-Type: text/plain\n\n", 1, "not an HTTP status line"},
		{"garbled status line", nil, "HTTP/1.1\n", 1, "not an HTTP status line"},
		{"lower-case protocol", nil, "http/1.1 200 OK\n", 1, "not an HTTP status line"},
		{"bad status code", nil, "HTTP/1.1 42 Nope\n", 1, "not an HTTP status code"},
		{"status code out of range", nil, "HTTP/1.1 999 Nope\n", 1, "not an HTTP status code"},
		{"header line without colon", nil, "HTTP/1.1 200 OK\nX-RateLimit-Limit 60\n", 1, "line 2: \"X-RateLimit-Limit 60\" is not a header line"},
		{"invalid header name", nil, "HTTP/1.1 200 OK\nX Rate: 1\n", 1, "line 2: \"X Rate\" is not a valid header name"},
		{"continuation before any header", nil, "HTTP/1.1 200 OK\n  folded\n", 1, "continuation line"},
		{"input too large", nil, "HTTP/1.1 200 OK\n" + strings.Repeat("X-Pad: "+strings.Repeat("a", 1000)+"\n", 1100), 1, "longer than 1048576 bytes"},
		{"bad --now", []string{"--now", "yesterday"}, "HTTP/1.1 200 OK\n", 2, `--now "yesterday" is not an RFC 3339 time`},
		{"bad --map", []string{"--map", "limit=X-A,colour=red"}, "HTTP/1.1 200 OK\n", 2, "--map: headerparse: invalid mapping: unknown key"},
		{"unknown flag", []string{"--verbose"}, "HTTP/1.1 200 OK\n", 2, "flag provided but not defined: -verbose"},
		{"positional argument", []string{"response.txt"}, "HTTP/1.1 200 OK\n", 2, `unexpected argument "response.txt"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := explainRun(t, tc.in, tc.args...)
			assert.Equal(t, tc.code, code)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, tc.msg)
			assert.NotContains(t, stderr, "goroutine", "no stack trace")
			first, _, _ := strings.Cut(stderr, "\n")
			assert.Contains(t, first, tc.msg, "the message is on the first line")
		})
	}
}

func TestExplainHeadLargerThanLimitWithSmallHead(t *testing.T) {
	// Only the head must fit: a large body after the blank line is fine.
	in := "HTTP/1.1 200 OK\nX-RateLimit-Limit: 10\n\n" + strings.Repeat("b", 2<<20)
	code, stdout, stderr := explainRun(t, in)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, `"limit":10`)
}

func TestExplainHelp(t *testing.T) {
	code, stdout, stderr := explainRun(t, "", "-h")
	assert.Equal(t, 0, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, explainUsage)
	assert.Contains(t, stderr, "-map")
}
