package middleware_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

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
