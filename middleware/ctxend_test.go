package middleware_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/backend/postgres"
	"github.com/smartratelimit/smartratelimit/internal/pgtest"
	"github.com/smartratelimit/smartratelimit/internal/testapi"
	"github.com/smartratelimit/smartratelimit/middleware"
)

// assertContextEnded checks that err reports the caller's context (want)
// and neither a backend outage nor a rate limit.
func assertContextEnded(t *testing.T, err, want error) {
	t.Helper()
	require.Error(t, err)
	assert.ErrorIs(t, err, want)
	assert.False(t, errors.Is(err, srl.ErrBackendUnavailable), "a caller's context reported as a backend outage: %v", err)
	assert.False(t, errors.Is(err, srl.ErrRateLimited), "a caller's context reported as rate limited: %v", err)
}

// A request whose context has ended is refused with the context's error by
// the in-memory backend, and not reported as a backend outage (found by
// review: ErrBackendUnavailable wrapped context.Canceled).
func TestEndedContextIsNotABackendFailure(t *testing.T) {
	srv := newServer(t, testapi.Config{Limit: 100, Window: time.Hour})
	c, l := newClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.R().SetContext(ctx).Get(srv.URL)
	assertContextEnded(t, err, context.Canceled)
	assertContextEnded(t, l.Wait(ctx, keyOf(t, srv.URL)), context.Canceled)
	dl, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	assertContextEnded(t, l.Wait(dl, keyOf(t, srv.URL)), context.DeadlineExceeded)
	assert.Zero(t, srv.Stats().Requests)
}

// A context that ends while the PostgreSQL backend is taking the slot (its
// row is locked by another connection) is reported as the context's error,
// not ErrBackendUnavailable, and the failing-open fallback does not send
// the request anyway; the same while the limiter sets a host's limits.
func TestPostgresContextEndingDuringAcquire(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema := pgtest.Schema(t, dsn)
	srv := newServer(t, testapi.Config{Limit: 100, Window: time.Hour, Style: testapi.StyleNone})
	// Fail open (the default), no lock or statement timeout: only the
	// caller's context ends the wait for the row.
	b, err := postgres.New(context.Background(), dsn, postgres.WithSchema(schema),
		postgres.WithLockTimeout(0), postgres.WithStatementTimeout(0), postgres.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	c, _ := newClient(t, middleware.WithBackend(b))
	_, err = c.R().Get(srv.URL) // the key's row exists
	require.NoError(t, err)
	sent := srv.Stats().Requests

	conn, err := pgx.Connect(context.Background(), dsn)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	tx, err := conn.Begin(context.Background())
	require.NoError(t, err)
	defer tx.Rollback(context.Background())
	var one int
	require.NoError(t, tx.QueryRow(context.Background(), "SELECT 1 FROM "+pgx.Identifier{schema, "buckets"}.Sanitize()+
		" WHERE id = sha256($1) FOR UPDATE", []byte(keyOf(t, srv.URL))).Scan(&one))

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	_, err = c.R().SetContext(ctx).Get(srv.URL)
	assert.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond, "it waited for the row: %v", err)
	assertContextEnded(t, err, context.Canceled)

	dl, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = c.R().SetContext(dl).Get(srv.URL)
	assertContextEnded(t, err, context.DeadlineExceeded)

	// A host's limits, set by a new limiter on the locked row.
	host := strings.TrimPrefix(srv.URL, "http://")
	c2, _ := newClient(t, middleware.WithBackend(b), middleware.WithHostLimits(host, srl.Every(50, time.Hour)))
	dl2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	_, err = c2.R().SetContext(dl2).Get(srv.URL)
	assertContextEnded(t, err, context.DeadlineExceeded)

	assert.False(t, b.Degraded(), "a caller's context is not an unreachable database")
	assert.Equal(t, sent, srv.Stats().Requests, "nothing was sent")
}
