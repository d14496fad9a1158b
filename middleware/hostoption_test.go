package middleware_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/headerparse"
	"github.com/smartratelimit/smartratelimit/middleware"
)

// The host of WithHostLimits, WithScope and WithHostProfile may name the
// default port (":443", found by review: such a host never matched, as
// keys drop the default port) or be a URL, normalised as request URLs
// are; another port is kept.
func TestHostOptionsNormaliseTheirHost(t *testing.T) {
	for _, c := range []struct {
		host    string
		matches []string
		misses  []string
	}{
		{"api.example.com", []string{"https://api.example.com", "http://api.example.com"}, []string{"https://api.example.com:8443"}},
		{"API.example.com:443", []string{"https://api.example.com"}, []string{"https://api.example.com:8443"}},
		{"api.example.com:80", []string{"http://api.example.com"}, []string{"http://api.example.com:8080"}},
		{"https://Api.Example.com", []string{"https://api.example.com"}, []string{"https://api.example.com:8443"}},
		{"HTTPS://api.example.com:443/", []string{"https://api.example.com"}, []string{"https://api.example.com:8443"}},
		{"api.example.com:8443", []string{"https://api.example.com:8443"}, []string{"https://api.example.com"}},
		{"https://api.example.com:8443", []string{"https://api.example.com:8443"}, []string{"https://api.example.com"}},
		{"http://api.example.com:443", []string{"http://api.example.com:443"}, []string{"https://api.example.com"}},
		{"[::1]:443", []string{"https://[::1]"}, []string{"https://[::1]:8443"}},
		{"::1", []string{"https://[::1]"}, []string{"https://[::1]:8443"}},
		{"[::1]:8443", []string{"https://[::1]:8443"}, []string{"https://[::1]"}},
	} {
		profile := headerparse.Mapping{Limit: "X-Max", Remaining: "X-Left", Window: time.Hour}
		l, err := middleware.New(middleware.WithFailFast(), middleware.WithDefaults(),
			middleware.WithHostLimits(c.host, srl.Every(1, time.Hour)),
			middleware.WithScope(c.host, "/search"),
			middleware.WithHostProfile(c.host, profile))
		require.NoError(t, err, c.host)
		client := l.Attach(resty.New().SetTransport(profileTransport{}))
		for _, u := range c.matches {
			_, err := client.R().Get(u + "/x")
			require.NoError(t, err, "%s: %s", c.host, u)
			_, err = client.R().Get(u + "/x")
			assert.ErrorIs(t, err, srl.ErrRateLimited, "%s: the host's limit applies to %s", c.host, u)
			key, err := middleware.KeyOf(u)
			require.NoError(t, err)
			st, err := l.Status(context.Background(), key)
			require.NoError(t, err)
			var sources []srl.Source
			for _, ls := range st.Limits {
				sources = append(sources, ls.Source)
			}
			assert.ElementsMatch(t, []srl.Source{srl.SourceOverride, srl.SourceHeaders}, sources,
				"%s: the limit and the profile apply to %s", c.host, u)
			_, err = client.R().Get(u + "/search")
			require.NoError(t, err, "%s: %s/search", c.host, u)
			keys, err := l.Keys(context.Background())
			require.NoError(t, err)
			assert.Contains(t, keys, key+"/search", "%s: the scope applies to %s", c.host, u)
		}
		for _, u := range c.misses {
			for range 3 {
				_, err := client.R().Get(u + "/search")
				require.NoError(t, err, "%s: the host's limit does not apply to %s", c.host, u)
			}
			keys, err := l.Keys(context.Background())
			require.NoError(t, err)
			key, err := middleware.KeyOf(u)
			require.NoError(t, err)
			assert.Contains(t, keys, key, "%s: the scope does not apply to %s", c.host, u)
			st, err := l.Status(context.Background(), key)
			require.NoError(t, err)
			assert.Empty(t, st.Limits, "%s: neither the profile nor the limit applies to %s", c.host, u)
		}
		require.NoError(t, l.Close())
	}
}

// profileTransport answers every request at once with a limit in headers
// only a profile understands.
type profileTransport struct{}

func (profileTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	h := http.Header{}
	h.Set("X-Max", "1000")
	h.Set("X-Left", "999")
	return &http.Response{StatusCode: 200, Header: h, Body: http.NoBody, Request: r}, nil
}

// A host those options could never match fails New with a typed error
// that does not quote it (it may hold user info).
func TestHostOptionsRejectUnmatchableHosts(t *testing.T) {
	for _, host := range []string{
		"", "api.example.com/v1", "https://api.example.com/v1", "api.example.com?x=1", "api.example.com#f",
		"user:pw-secret@api.example.com", "https://user:pw-secret@api.example.com", "api example.com",
		"api.example.com:", "api.example.com:https", "api.example.com:99999", "api.example.com:0",
		"https://", "https://api.example.com?x", "{host}", "[::1", "[::1]x", "ftp://api.example.com",
	} {
		for name, opt := range map[string]middleware.Option{
			"WithHostLimits":  middleware.WithHostLimits(host, srl.Every(1, time.Hour)),
			"WithScope":       middleware.WithScope(host, "/search"),
			"WithHostProfile": middleware.WithHostProfile(host, headerparse.Mapping{}),
		} {
			_, err := middleware.New(opt)
			require.ErrorIs(t, err, srl.ErrInvalidLimit, "%s(%q)", name, host)
			assert.NotContains(t, err.Error(), "pw-secret")
		}
	}
}
