package backend_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/backend"
	"github.com/smartratelimit/smartratelimit/backend/memory"
	"github.com/smartratelimit/smartratelimit/backend/postgres"
	"github.com/smartratelimit/smartratelimit/internal/pgtest"
)

func TestOpenMemory(t *testing.T) {
	for _, s := range []string{"", "memory", "MEMORY", "memory://"} {
		b, err := backend.Open(context.Background(), s)
		require.NoError(t, err, s)
		assert.IsType(t, &memory.Backend{}, b)
		require.NoError(t, b.Close())
	}
}

func TestOpenUnsupported(t *testing.T) {
	for _, s := range []string{"redis://localhost:6379", "sqlite:///tmp/x.db", "ftp://x", "memory-ish", "bogus"} {
		_, err := backend.Open(context.Background(), s)
		assert.ErrorIs(t, err, backend.ErrUnsupportedStorage, s)
	}
	_, err := backend.Open(context.Background(), "postgres://u:pw@127.0.0.1:1/db?smartratelimit_fail=sometimes")
	assert.ErrorIs(t, err, srl.ErrInvalidLimit)
	assert.NotContains(t, err.Error(), "pw")
}

func TestRedact(t *testing.T) {
	// URL user info is never logged, the user name included.
	assert.Equal(t, "postgres://db:5432/x", backend.Redact("postgres://bob:hunter2@db:5432/x"))
	assert.NotContains(t, backend.Redact("not a url bob:hunter2@db"), "hunter2")
}

func TestOpenPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema := pgtest.Schema(t, dsn)
	b, err := backend.Open(context.Background(), dsn+"&smartratelimit_schema="+schema+"&smartratelimit_fail=closed")
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	require.IsType(t, &postgres.Backend{}, b)
	r, err := b.Acquire(context.Background(), srl.AcquireRequest{Key: "https://open.example:443", Defaults: []srl.Limit{srl.PerSecond(1)}})
	require.NoError(t, err)
	assert.True(t, r.OK)

	// Fail closed through the URL: an unreachable server is an error naming it.
	_, err = backend.Open(context.Background(), "postgres://u:pw@127.0.0.1:1/db?connect_timeout=1&smartratelimit_fail=closed")
	require.ErrorIs(t, err, srl.ErrBackendUnavailable)
	assert.Contains(t, err.Error(), "127.0.0.1:1")
	assert.NotContains(t, err.Error(), "pw")
}

// Redact drops a URL's query (libpq takes password= and sslpassword= there
// too) and fragment, and hides the values of password keywords in a
// keyword/value DSN, quoted or not (found by review: both were returned as
// they were).
func TestRedactQueryAndKeywordValueDSN(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://bob:hunter2@db:5432/x?password=secret&sslmode=require", "postgres://db:5432/x"},
		{"postgresql://db/x?sslpassword=secret#frag", "postgresql://db/x"},
		{"postgres:///x?host=/tmp&password=secret", "postgres:///x"},
		{"host=db user=u password=secret", "host=db user=u password=xxxxx"},
		{"host=db password='a b secret' user=u", "host=db password=xxxxx user=u"},
		{`password='it\'s secret' host=db`, "password=xxxxx host=db"},
		{"host=db password = secret sslpassword=secret dbname=x", "host=db password = xxxxx sslpassword=xxxxx dbname=x"},
		{"host=db PASSWORD=secret", "host=db PASSWORD=xxxxx"},
		{"application_name=İİ password=secret", "application_name=İİ password=xxxxx"},
		{`host=db password=sec\ ret`, "host=db password=xxxxx"},
		{"host=db password='unterminated secret", "host=db password=xxxxx"},
	} {
		assert.Equal(t, c.want, backend.Redact(c.in), c.in)
	}
	for _, in := range []string{
		"postgres://u:hunter2@[::1/db?password=secret",  // unparseable
		"postgres:u:hunter2@db/x?password=secret",       // opaque
		"memory?password=secret",                        // no scheme
		"not a url bob:hunter2@db?sslpassword=secret",   // neither
		"postgres://u:hunter2@db/x?password=secret\x7f", // control character
	} {
		out := backend.Redact(in)
		assert.NotContains(t, out, "secret", in)
		assert.NotContains(t, out, "hunter2", in)
	}
}

// No error of Open quotes a password, whether in user info, the query or
// a keyword/value DSN.
func TestOpenErrorsHideEveryPassword(t *testing.T) {
	for _, s := range []string{
		"host=db user=u password=secret",
		"host=db password='a b secret'",
		"ftp://u:hunter2@x/?password=secret",
		"postgres://u:hunter2@[::1/db?password=secret",
		"memory?password=secret",
	} {
		_, err := backend.Open(context.Background(), s)
		require.Error(t, err, s)
		assert.ErrorIs(t, err, backend.ErrUnsupportedStorage, s)
		assert.NotContains(t, err.Error(), "secret", s)
		assert.NotContains(t, err.Error(), "hunter2", s)
	}
}
