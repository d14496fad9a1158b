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
	assert.Equal(t, "postgres://bob@db:5432/x", backend.Redact("postgres://bob:hunter2@db:5432/x"))
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
