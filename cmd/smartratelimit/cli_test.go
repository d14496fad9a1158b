package main

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/backend"
)

func runCLI(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestDemoJSONShape(t *testing.T) {
	code, out, errOut := runCLI("demo", "--requests", "30", "--concurrency", "4", "--limit", "50/1s", "--json")
	require.Equal(t, 0, code, errOut)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &m))
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	assert.Equal(t, []string{"achieved_per_second", "elapsed_seconds", "errors", "limit", "ok", "requests",
		"throttled", "utilization", "window_seconds"}, keys, "the JSON shape tooling relies on")
	assert.Equal(t, 30.0, m["requests"])
	assert.Equal(t, 30.0, m["ok"])
	assert.Equal(t, 0.0, m["throttled"])
	assert.Equal(t, 50.0, m["limit"])
	assert.Equal(t, 1.0, m["window_seconds"])
}

func TestDemoSummaryAndBadFlags(t *testing.T) {
	code, out, _ := runCLI("demo", "--requests", "10", "--limit", "100/1s", "--headers", "ietf")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "10 requests in")
	assert.Contains(t, out, "throttled (429) 0")
	for _, args := range [][]string{
		{"demo", "--limit", "abc"},
		{"demo", "--limit", "0/1s"},
		{"demo", "--headers", "nope"},
		{"demo", "--requests", "0"},
		{"demo", "extra"},
		{"nosuchcommand"},
	} {
		code, _, errOut := runCLI(args...)
		assert.Equal(t, 2, code, "%v", args)
		assert.NotEmpty(t, errOut)
		assert.NotContains(t, errOut, "goroutine", "no stack traces")
	}
	code, _, errOut := runCLI("demo", "--storage", "redis://localhost:6379", "--requests", "1")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "not available yet")
}

func TestStatusListClearOnPostgres(t *testing.T) {
	storage := pgStorage(t)
	b, err := backend.Open(context.Background(), storage)
	require.NoError(t, err)
	defer b.Close()
	lim := srl.Limit{Name: "core", Dimension: srl.DimRequests, Limit: 10, Window: time.Hour}
	for _, k := range []string{"https://api.github.com:443", "https://api.openai.com:443"} {
		_, err := b.Acquire(context.Background(), srl.AcquireRequest{Key: k, Defaults: []srl.Limit{srl.PerSecond(5)}})
		require.NoError(t, err)
	}
	require.NoError(t, b.Observe(context.Background(), "https://api.github.com:443", srl.Update{
		Quotas: []srl.QuotaUpdate{{Limit: lim, Remaining: 7, HasRemaining: true, ResetIn: 30 * time.Minute, HasReset: true}}}))

	code, out, errOut := runCLI("list", "--storage", storage)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "https://api.github.com:443\nhttps://api.openai.com:443\n", out)

	code, out, errOut = runCLI("status", "https://api.github.com/repos", "--storage", storage, "--json")
	require.Equal(t, 0, code, errOut)
	var st []statusJSON
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Len(t, st, 1)
	assert.Equal(t, "https://api.github.com:443", st[0].Key)
	require.Len(t, st[0].Limits, 1)
	assert.Equal(t, "headers", st[0].Limits[0].Source)
	assert.Equal(t, 7.0, st[0].Limits[0].Remaining)
	assert.InDelta(t, 1800, st[0].Limits[0].ResetInSeconds, 5)
	assert.Zero(t, st[0].BlockedSeconds)

	// A 429 blocks the key: status shows for how long.
	require.NoError(t, b.Observe(context.Background(), "https://api.github.com:443", srl.Update{BlockFor: time.Minute}))
	code, out, errOut = runCLI("status", "https://api.github.com:443", "--storage", storage, "--json")
	require.Equal(t, 0, code, errOut)
	st = nil
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	assert.InDelta(t, 60, st[0].BlockedSeconds, 5)

	code, out, _ = runCLI("status", "--storage", storage)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "KEY")
	assert.Contains(t, out, "https://api.openai.com:443")
	assert.Contains(t, out, "defaults")

	code, _, _ = runCLI("clear", "https://api.github.com", "--storage", storage)
	require.Equal(t, 0, code)
	code, out, _ = runCLI("list", "--json", "--storage", storage)
	require.Equal(t, 0, code)
	assert.Equal(t, "[\"https://api.openai.com:443\"]\n", out)
	code, _, _ = runCLI("clear", "--all", "--storage", storage)
	require.Equal(t, 0, code)
	code, out, _ = runCLI("list", "--json", "--storage", storage)
	require.Equal(t, 0, code)
	assert.Equal(t, "[]\n", out)

	code, _, errOut = runCLI("clear", "--storage", storage)
	assert.Equal(t, 2, code, "clear needs keys or --all")
	assert.Contains(t, errOut, "--all")
	code, _, errOut = runCLI("status", "--storage", "postgres://u:secretpw@127.0.0.1:1/x?connect_timeout=1&smartratelimit_fail=closed")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "127.0.0.1:1")
	assert.NotContains(t, errOut, "secretpw")
}

// The CLI never reports on or clears a local stand-in for an unreachable
// database: it fails.
func TestCLIFailsClosedOnUnreachableStorage(t *testing.T) {
	storage := "postgres://u:secretpw@127.0.0.1:1/x?connect_timeout=1"
	for _, args := range [][]string{
		{"clear", "--all", "--storage", storage},
		{"status", "--storage", storage, "--json"},
		{"list", "--storage", storage},
		{"demo", "--requests", "1", "--storage", storage},
	} {
		code, out, errOut := runCLI(args...)
		assert.Equal(t, 1, code, "%v: %s", args[0], out)
		assert.Contains(t, errOut, "127.0.0.1:1", args[0])
		assert.NotContains(t, errOut, "secretpw", args[0])
		assert.NotContains(t, out, "cleared")
	}
}
