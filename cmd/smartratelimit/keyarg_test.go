package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/smartratelimit/smartratelimit/backend"
	"github.com/smartratelimit/smartratelimit/middleware"
)

// A WithScope(host, "/search") key is "https://api.github.com:443/search", as
// `list` prints it. `status` and `clear` given that key act on it, not on the
// host's key.
func TestStatusAndClearTakeScopedKeyAsListed(t *testing.T) {
	storage := pgStorage(t)
	b, err := backend.Open(context.Background(), storage)
	require.NoError(t, err)
	defer b.Close()
	l, err := middleware.New(middleware.WithBackend(b), middleware.WithScope("api.github.com", "/search"))
	require.NoError(t, err)
	defer l.Close()
	ctx := context.Background()
	require.NoError(t, l.Wait(ctx, "https://api.github.com:443"))
	require.NoError(t, l.Wait(ctx, "https://api.github.com:443/search"))

	code, out, errOut := runCLI("list", "--storage", storage)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "https://api.github.com:443\nhttps://api.github.com:443/search\n", out)

	code, out, errOut = runCLI("status", "https://api.github.com:443/search", "--storage", storage, "--json")
	require.Equal(t, 0, code, errOut)
	var st []statusJSON
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Len(t, st, 1)
	assert.Equal(t, "https://api.github.com:443/search", st[0].Key)

	code, out, errOut = runCLI("clear", "https://api.github.com:443/search", "--storage", storage)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "cleared https://api.github.com:443/search\n", out)
	keys, err := b.Keys(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"https://api.github.com:443"}, keys, "the scoped key should be gone and the host key kept")
}

// keyArg's rule: an explicit port in the authority means a key as list
// prints it (taken as is, scope path and #partition included); an
// absolute URL without a port maps to its host key; anything else is a
// key as is.
func TestKeyArgTellsKeysFromURLs(t *testing.T) {
	for _, c := range []struct{ arg, want string }{
		// keys, as list prints them
		{"https://api.github.com:443", "https://api.github.com:443"},
		{"https://api.github.com:443/search", "https://api.github.com:443/search"},
		{"https://api.github.com:443/", "https://api.github.com:443/"},
		{"https://api.github.com:443/search/code", "https://api.github.com:443/search/code"},
		{"https://api.github.com:443#0123abcd", "https://api.github.com:443#0123abcd"},
		{"https://api.github.com:443/search#0123abcd", "https://api.github.com:443/search#0123abcd"},
		{"http://127.0.0.1:44737", "http://127.0.0.1:44737"},
		{"http://[::1]:8080/v1", "http://[::1]:8080/v1"},
		{"github", "github"}, // a custom KeyFunc's key
		// URLs: their host key
		{"https://api.github.com", "https://api.github.com:443"},
		{"https://api.github.com/", "https://api.github.com:443"},
		{"https://api.github.com/search", "https://api.github.com:443"},
		{"https://api.github.com/repos/go-resty/resty", "https://api.github.com:443"},
		{"https://api.github.com/search?q=x", "https://api.github.com:443"},
		{"HTTPS://API.GitHub.com/search", "https://api.github.com:443"},
		{"http://example.com", "http://example.com:80"},
		{"http://[::1]/v1", "http://[::1]:80"},
		{"https://user@api.github.com:443/x", "https://api.github.com:443"},
	} {
		assert.Equal(t, c.want, keyArg(c.arg), c.arg)
	}
}

// status and clear explain the rule in their help.
func TestStatusAndClearHelpStateKeyRule(t *testing.T) {
	for _, cmd := range []string{"status", "clear"} {
		code, _, errOut := runCLI(cmd, "-h")
		assert.Equal(t, 0, code, cmd)
		assert.Contains(t, errOut, "explicit port", cmd)
		assert.Contains(t, errOut, "https://api.github.com/search means https://api.github.com:443", cmd)
	}
}
