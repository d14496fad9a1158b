package middleware_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/go-resty/resty/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/smartratelimit/smartratelimit/middleware"
)

// githubTransport answers every request at once with GitHub's headers.
type githubTransport struct{}

func (githubTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Date", "Fri, 27 Nov 2026 02:00:00 GMT")
	h.Set("X-RateLimit-Limit", "1000000000")
	h.Set("X-RateLimit-Remaining", "999999999")
	h.Set("X-RateLimit-Used", "1")
	h.Set("X-RateLimit-Reset", "4102444800")
	h.Set("X-RateLimit-Resource", "core")
	return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader(`{"ok":true}`)), Request: r}, nil
}

// The limiter adds no allocation to a request whose response it learns
// (the README's "allocates nothing"): the same request through a bare
// client and through a limited one allocates as often.
func TestRequestPathAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items at random")
	}
	bare := resty.New().SetTransport(githubTransport{})
	l, err := middleware.New(huge)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	limited := l.Attach(resty.New().SetTransport(githubTransport{}))
	send := func(c *resty.Client) func() {
		return func() {
			resp, err := c.R().Get("https://api.example.com/x")
			if err != nil || resp.StatusCode() != 200 {
				t.Fatal(err, resp)
			}
		}
	}
	send(limited)() // first contact, the key's entry and learned limit
	b := testing.AllocsPerRun(200, send(bare))
	w := testing.AllocsPerRun(200, send(limited))
	assert.Equal(t, b, w, "allocations per request: bare %v, limited %v", b, w)
	st, err := l.Status(t.Context(), "https://api.example.com:443")
	require.NoError(t, err)
	bind, ok := st.Binding()
	require.True(t, ok)
	assert.Equal(t, 1e9, bind.Limit.Limit, "the responses were learned")
}
