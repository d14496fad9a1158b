package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/smartratelimit/smartratelimit/middleware"
)

// resty fills path parameters into the URL after the limiter's hook ran:
// the limiter fills them in the same way, so a host given as a parameter
// is keyed, and a scope is matched against the path the request goes to.
func TestPathParamsAreFilledInBeforeKeying(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	hostPort := strings.TrimPrefix(srv.URL, "http://")

	c, l := newClient(t, middleware.WithScope(hostPort, "/search"))
	resp, err := c.R().SetPathParam("hostport", hostPort).Get("http://{hostport}/v1/x")
	require.NoError(t, err, "a host given as a path parameter")
	assert.Equal(t, 200, resp.StatusCode())

	_, err = c.R().SetPathParam("endpoint", "search").Get(srv.URL + "/{endpoint}/code")
	require.NoError(t, err)
	c.SetRawPathParam("top", "search")
	_, err = c.R().Get(srv.URL + "/{top}")
	require.NoError(t, err)
	// The request's escaped parameter wins over the client's raw one.
	_, err = c.R().SetPathParam("top", "a/b").Get(srv.URL + "/{top}")
	require.NoError(t, err)

	mu.Lock()
	assert.Equal(t, []string{"/v1/x", "/search/code", "/search", "/a/b"}, paths)
	mu.Unlock()
	st, err := l.Status(context.Background(), keyOf(t, srv.URL)+"/search")
	require.NoError(t, err)
	require.NotEmpty(t, st.Limits)
	used := st.Limits[0].Limit.Limit - st.Limits[0].Remaining
	assert.Equal(t, 2.0, used, "/{endpoint}/code and /{top} went to /search: the scope counts them")
	st, err = l.Status(context.Background(), keyOf(t, srv.URL))
	require.NoError(t, err)
	used = st.Limits[0].Limit.Limit - st.Limits[0].Remaining
	assert.Equal(t, 2.0, used, "/v1/x and /a%2Fb count for the host")
}
