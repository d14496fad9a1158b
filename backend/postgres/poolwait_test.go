package postgres

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/pgtest"
)

// A call that waits for a free connection of a busy pool is not a server
// that does not answer: the client-side bound (statement timeout + 1 s)
// covers the round trip, not the queue before it. Here the pool's two
// connections are each held up to the lock timeout by calls on a row
// another session keeps locked, so the last of many calls waits well past
// the bound for a connection; every call must end with the server's
// answer (a lock or statement timeout), and the backend must not take
// the database for unreachable and fail open, which would let the hot key
// bypass the shared limit (found by review: the wait counted, and the
// backend went degraded and reset its pool).
func TestPoolWaitIsNotNoAnswer(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema := pgtest.Schema(t, dsn)
	b := newFailOpen(t, dsn, schema, false,
		WithPoolSize(2), WithStatementTimeout(300*time.Millisecond), WithLockTimeout(250*time.Millisecond))
	ctx := ctxT(t)
	lim := srl.Every(1000, time.Hour)
	_, err := b.Acquire(ctx, req("hot", 0, lim))
	require.NoError(t, err)
	lockKey(t, dsn, b, "hot")

	// 16 calls of 250 ms on 2 connections: the last waits about 1.75 s
	// for one, past the 1.3 s bound.
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			errs[i] = b.Observe(context.Background(), "hot", srl.Update{BlockFor: time.Second})
		})
	}
	wg.Wait()
	t.Logf("%d calls returned in %v", n, time.Since(start).Round(time.Millisecond))
	assert.False(t, b.Degraded(), "a busy pool taken for an unreachable database")
	for i, err := range errs {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "55P03" && pgErr.Code != "57014" {
			t.Errorf("call %d: %v; want the server's lock or statement timeout (55P03, 57014)", i, err)
		}
		assert.ErrorIs(t, err, srl.ErrBackendUnavailable)
		assert.False(t, errors.As(err, new(noAnswerError)), "call %d: %v", i, err)
	}
}
