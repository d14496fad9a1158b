package middleware_test

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/smartratelimit/smartratelimit/internal/testapi"
	"github.com/smartratelimit/smartratelimit/middleware"
)

// Credentials given as URL user info (the request's URL or the client's
// base URL), which net/http sends as basic auth, partition buckets like
// the other credentials: hashed, and the same partition as the same user
// and password set with SetBasicAuth (found by review: they were ignored,
// so two users of one host shared a bucket).
func TestPartitionByAuthorizationReadsURLUserInfo(t *testing.T) {
	srv := newServer(t, testapi.Config{Limit: 100, Window: time.Hour})
	withUser := func(userinfo string) string {
		return strings.Replace(srv.URL, "http://", "http://"+userinfo+"@", 1)
	}
	secrets := []string{"alice", "bob", "pw-one", "pw-two", "carol", "pw-three"}
	lastKey := func(l *middleware.Limiter, before []string) string {
		t.Helper()
		keys, err := l.Keys(context.Background())
		require.NoError(t, err)
		for _, k := range keys {
			for _, s := range secrets {
				assert.NotContains(t, k, s)
			}
			if !slices.Contains(before, k) {
				return k
			}
		}
		return ""
	}

	c, l := newClient(t, middleware.WithPartitionByAuthorization())
	_, err := c.R().Get(withUser("alice:pw-one") + "/x")
	require.NoError(t, err)
	alice := lastKey(l, nil)
	require.True(t, strings.HasPrefix(alice, keyOf(t, srv.URL)+"#"), "a partitioned key: %q", alice)
	_, err = c.R().Get(withUser("bob:pw-two") + "/x")
	require.NoError(t, err)
	bob := lastKey(l, []string{alice})
	require.NotEmpty(t, bob, "another user has a bucket of its own")
	_, err = c.R().Get(withUser("alice:pw-one") + "/y")
	require.NoError(t, err)
	_, err = c.R().SetBasicAuth("alice", "pw-one").Get(srv.URL + "/z")
	require.NoError(t, err)
	keys, err := l.Keys(context.Background())
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{alice, bob}, keys, "one bucket per credential, however it is given")

	// The client's base URL.
	c2, l2 := newClient(t, middleware.WithPartitionByAuthorization())
	c2.SetBaseURL(withUser("carol:pw-three"))
	_, err = c2.R().Get("/x")
	require.NoError(t, err)
	carol := lastKey(l2, nil)
	assert.True(t, strings.HasPrefix(carol, keyOf(t, srv.URL)+"#"), "a partitioned key: %q", carol)
	c2.SetBaseURL(withUser("alice:pw-one"))
	_, err = c2.R().Get("/x")
	require.NoError(t, err)
	assert.Equal(t, alice, lastKey(l2, []string{carol}), "the same partition as the request URL's user info")
}

// An unparseable URL is quoted in errors without any of its user info,
// even a password holding '@' (found by review: the message kept what
// followed the first '@').
func TestInvalidURLErrorHidesUserInfo(t *testing.T) {
	for _, raw := range []string{
		"http://u:pw@topsecret@[::1/x?token=qs",
		"http://u:pw@top%zzsecret@host/x",
	} {
		_, err := middleware.KeyOf(raw)
		require.ErrorIs(t, err, middleware.ErrInvalidURL, raw)
		assert.NotContains(t, err.Error(), "secret", raw)
		assert.NotContains(t, err.Error(), "pw", raw)
		assert.NotContains(t, err.Error(), "qs", raw)
	}
}

// The partition follows the credential resty sends: a token (the
// request's, else the client's) replaces basic auth, and either replaces an
// Authorization header set by hand (found by review: the header set by hand
// chose the bucket while another credential was sent).
func TestPartitionByAuthorizationFollowsWhatRestySends(t *testing.T) {
	srv := newServer(t, testapi.Config{Limit: 100, Window: time.Hour})
	keys := func(l *middleware.Limiter) []string {
		t.Helper()
		k, err := l.Keys(context.Background())
		require.NoError(t, err)
		return k
	}

	// One client token, two headers set by hand: resty sends the token
	// for both, so both share its bucket.
	c, l := newClient(t, middleware.WithPartitionByAuthorization())
	c.SetAuthToken("client-token")
	for _, h := range []string{"Bearer hand-one", "Bearer hand-two"} {
		resp, err := c.R().SetHeader("Authorization", h).Get(srv.URL + "/x")
		require.NoError(t, err)
		require.Equal(t, "Bearer client-token", resp.Request.RawRequest.Header.Get("Authorization"))
	}
	assert.Len(t, keys(l), 1, "what resty sent chose the bucket")
	_, err := c.R().Get(srv.URL + "/x")
	require.NoError(t, err)
	assert.Len(t, keys(l), 1, "the token without a header by hand is the same bucket")

	// Basic auth over a header set by hand; a token over basic auth.
	c2, l2 := newClient(t, middleware.WithPartitionByAuthorization())
	for _, h := range []string{"Bearer hand-one", "Bearer hand-two"} {
		_, err := c2.R().SetBasicAuth("dora", "pw").SetHeader("Authorization", h).Get(srv.URL + "/x")
		require.NoError(t, err)
	}
	assert.Len(t, keys(l2), 1, "basic auth is sent, whatever the header set by hand")
	_, err = c2.R().SetBasicAuth("dora", "pw").SetAuthToken("tok-a").Get(srv.URL + "/x")
	require.NoError(t, err)
	_, err = c2.R().SetBasicAuth("erin", "pw").SetAuthToken("tok-a").Get(srv.URL + "/x")
	require.NoError(t, err)
	assert.Len(t, keys(l2), 2, "the token is sent, whichever user is set")

	// One credential, however it is given, is one bucket: what is sent
	// is the same.
	c3, l3 := newClient(t, middleware.WithPartitionByAuthorization())
	for _, r := range []*resty.Request{
		c3.R().SetAuthToken("tok-b"),
		c3.R().SetHeader("Authorization", "Bearer tok-b"),
	} {
		_, err := r.Get(srv.URL + "/x")
		require.NoError(t, err)
	}
	assert.Len(t, keys(l3), 1, "a token set by hand is the token")
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("fay:pw-f"))
	for _, send := range []func() error{
		func() error { _, err := c3.R().SetBasicAuth("fay", "pw-f").Get(srv.URL + "/x"); return err },
		func() error { _, err := c3.R().SetHeader("Authorization", basic).Get(srv.URL + "/x"); return err },
		func() error {
			_, err := c3.R().Get(strings.Replace(srv.URL, "http://", "http://fay:pw-f@", 1) + "/x")
			return err
		},
	} {
		require.NoError(t, send())
	}
	assert.Len(t, keys(l3), 2, "basic auth set, written by hand or in the URL is one bucket")
}
