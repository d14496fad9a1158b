package postgres

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/pgtest"
)

// lockKey holds the row lock of key in table until the test ends, as a
// concurrent caller holding the key would.
func lockKey(t *testing.T, dsn string, b *Backend, key string) {
	t.Helper()
	ctx := ctxT(t)
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = tx.Rollback(context.Background())
		_ = conn.Close(context.Background())
	})
	var one int
	require.NoError(t, tx.QueryRow(ctx, `SELECT 1 FROM `+b.n.qTable+` WHERE id = sha256($1) FOR UPDATE`, []byte(key)).Scan(&one))
}

// newFailOpen returns a Backend on schema with the default fallback
// (fail open), built by New or, with fromPool, NewFromPool.
func newFailOpen(t *testing.T, dsn, schema string, fromPool bool, opts ...Option) *Backend {
	t.Helper()
	ctx := ctxT(t)
	opts = append([]Option{WithSchema(schema), WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	var b *Backend
	var err error
	if fromPool {
		pool, perr := pgxpool.New(ctx, dsn)
		require.NoError(t, perr)
		t.Cleanup(pool.Close)
		b, err = NewFromPool(ctx, pool, opts...)
	} else {
		b, err = New(ctx, dsn, opts...)
	}
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	require.NotNil(t, b.fallback, "fails open")
	return b
}

// A key whose row stays locked past lock_timeout is an error wrapping
// ErrBackendUnavailable with the SQLSTATE — never a grant of the local
// fallback, which would let a hot key bypass the shared limit.
func TestLockTimeoutIsAnErrorNotAFallback(t *testing.T) {
	dsn := pgtest.DSN(t)
	for _, fromPool := range []bool{false, true} {
		schema := pgtest.Schema(t, dsn)
		b := newFailOpen(t, dsn, schema, fromPool, WithLockTimeout(100*time.Millisecond))
		ctx := ctxT(t)
		lim := srl.Every(1000, time.Hour)
		_, err := b.Acquire(ctx, req("hot", 0, lim))
		require.NoError(t, err)
		lockKey(t, dsn, b, "hot")

		r, err := b.Acquire(ctx, req("hot", 0, lim))
		require.Error(t, err, "from pool %v", fromPool)
		assert.False(t, r.OK, "no degraded grant")
		assert.ErrorIs(t, err, srl.ErrBackendUnavailable)
		assert.NotErrorIs(t, err, srl.ErrRateLimited)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		assert.Equal(t, "55P03", pgErr.Code)
		assert.Contains(t, err.Error(), "SQLSTATE 55P03")
		assert.NotContains(t, err.Error(), "hot", "no key in the message")
		assert.False(t, b.Degraded(), "the database answered: not degraded")

		err = b.Observe(ctx, "hot", srl.Update{BlockFor: time.Second})
		assert.ErrorIs(t, err, srl.ErrBackendUnavailable)
		assert.False(t, b.Degraded())
		r, err = b.Acquire(ctx, req("cold", 0, lim))
		require.NoError(t, err, "other keys are served by the database")
		assert.True(t, r.OK)
	}
}

// statement_timeout (57014) on a contended key is an error too.
func TestStatementTimeoutIsAnErrorNotAFallback(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema := pgtest.Schema(t, dsn)
	b := newFailOpen(t, dsn, schema, false, WithLockTimeout(0), WithStatementTimeout(100*time.Millisecond))
	ctx := ctxT(t)
	lim := srl.Every(1000, time.Hour)
	_, err := b.Acquire(ctx, req("hot", 0, lim))
	require.NoError(t, err)
	lockKey(t, dsn, b, "hot")
	r, err := b.Acquire(ctx, req("hot", 0, lim))
	require.Error(t, err)
	assert.False(t, r.OK)
	assert.ErrorIs(t, err, srl.ErrBackendUnavailable)
	assert.Contains(t, err.Error(), "SQLSTATE 57014")
	assert.False(t, b.Degraded())
}

// A context deadline that expires during a call comes back wrapping
// ErrBackendUnavailable and the context's error, and the fallback does
// not serve it.
func TestDeadlineDuringCall(t *testing.T) {
	dsn := pgtest.DSN(t)
	for _, fromPool := range []bool{false, true} {
		schema := pgtest.Schema(t, dsn)
		b := newFailOpen(t, dsn, schema, fromPool, WithLockTimeout(0), WithStatementTimeout(0))
		lim := srl.Every(1000, time.Hour)
		_, err := b.Acquire(ctxT(t), req("hot", 0, lim))
		require.NoError(t, err)
		lockKey(t, dsn, b, "hot")

		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		start := time.Now()
		r, err := b.Acquire(ctx, req("hot", 0, lim))
		cancel()
		require.Error(t, err, "from pool %v", fromPool)
		assert.Less(t, time.Since(start), 5*time.Second)
		assert.False(t, r.OK)
		assert.ErrorIs(t, err, srl.ErrBackendUnavailable)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.False(t, b.Degraded())

		ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
		err = b.Cancel(ctx, "hot", srl.Reservation{OK: true, Seq: 1, At: 1}, nil)
		cancel()
		assert.ErrorIs(t, err, srl.ErrBackendUnavailable)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	}
}

// TestSynchronousCommit records synchronous_commit inside the limiter's
// own transactions (a trigger on its table): off by default, the server's
// setting (on) with WithSynchronousCommit(true), with New's pool and with
// the caller's.
func TestSynchronousCommit(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := ctxT(t)
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var server string
	require.NoError(t, conn.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&server))
	if server != "on" {
		t.Skipf("the server's synchronous_commit is %q", server)
	}
	for _, fromPool := range []bool{false, true} {
		for _, sync := range []bool{false, true} {
			schema := pgtest.Schema(t, dsn)
			b := newFailOpen(t, dsn, schema, fromPool, WithSynchronousCommit(sync))
			log := pgx.Identifier{schema, "sync_log"}.Sanitize()
			fn := pgx.Identifier{schema, "sync_log_fn"}.Sanitize()
			for _, s := range []string{
				`CREATE TABLE ` + log + ` (v text)`,
				`CREATE FUNCTION ` + fn + `() RETURNS trigger LANGUAGE plpgsql AS $$
					BEGIN INSERT INTO ` + log + ` VALUES (current_setting('synchronous_commit')); RETURN NULL; END $$`,
				`CREATE TRIGGER sync_log AFTER INSERT OR UPDATE ON ` + b.n.qTable + ` FOR EACH ROW EXECUTE FUNCTION ` + fn + `()`,
			} {
				_, err := conn.Exec(ctx, s)
				require.NoError(t, err)
			}
			lim := srl.Every(10, time.Hour)
			r, err := b.Acquire(ctx, req("k", srl.Forever, lim))
			require.NoError(t, err)
			require.NoError(t, b.Observe(ctx, "k", srl.Update{Quotas: []srl.QuotaUpdate{{Limit: lim, Remaining: 5, HasRemaining: true}}}))
			require.NoError(t, b.SetLimits(ctx, "k", []srl.Limit{lim}))
			require.NoError(t, b.Cancel(ctx, "k", r, nil))
			rows, err := conn.Query(ctx, `SELECT v FROM `+log)
			require.NoError(t, err)
			got, err := pgx.CollectRows(rows, pgx.RowTo[string])
			require.NoError(t, err)
			want := "off"
			if sync {
				want = "on"
			}
			require.Len(t, got, 5, "insert, acquire, observe, set_limits, cancel")
			for _, v := range got {
				assert.Equal(t, want, v, "from pool %v, WithSynchronousCommit(%v)", fromPool, sync)
			}
			require.NoError(t, b.Close())
		}
	}
}

// A server that answers New's migration with an error (here a missing
// privilege) is reported, not served by the fallback.
func TestNewReportsServerErrors(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := ctxT(t)
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	schema := pgtest.Schema(t, dsn)
	role := schema + "_role"
	for _, s := range []string{
		`CREATE SCHEMA ` + pgx.Identifier{schema}.Sanitize(),
		`CREATE ROLE ` + pgx.Identifier{role}.Sanitize() + ` LOGIN`,
	} {
		_, err := conn.Exec(ctx, s)
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
		_, _ = conn.Exec(context.Background(), `DROP ROLE IF EXISTS `+pgx.Identifier{role}.Sanitize())
	})
	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.User = role
	rdsn := "postgres://" + role + "@" + address(&cfg.Config) + "/" + cfg.Database + "?sslmode=disable"
	if rc, err := pgx.Connect(ctx, rdsn); err != nil {
		t.Skipf("cannot log in as a new role without a password: %v", err)
	} else {
		_ = rc.Close(ctx)
	}
	_, err = New(ctx, rdsn, WithSchema(schema), WithLogger(slog.New(slog.DiscardHandler)))
	require.Error(t, err, "fails open only when the server cannot be reached")
	assert.ErrorIs(t, err, srl.ErrBackendUnavailable)
	var pgErr *pgconn.PgError
	if assert.True(t, errors.As(err, &pgErr)) {
		assert.Equal(t, "42501", pgErr.Code)
	}
}
