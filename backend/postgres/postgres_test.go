package postgres

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/pgtest"
)

func TestTwoInstancesShareState(t *testing.T) {
	b1, dsn, schema := newTest(t)
	b2, err := New(ctxT(t), dsn, WithSchema(schema), WithFailClosed())
	require.NoError(t, err)
	t.Cleanup(func() { _ = b2.Close() })
	ctx := ctxT(t)
	lim := srl.Every(4, time.Hour)

	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := 0
	for _, b := range []*Backend{b1, b2, b1, b2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				r, err := b.Acquire(ctx, req("shared", 0, lim))
				if assert.NoError(t, err) && r.OK {
					mu.Lock()
					granted++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 4, granted, "both processes draw from one bucket")

	// A block observed by one instance stops the other, and reservations
	// are paced across them.
	require.NoError(t, b1.Observe(ctx, "other", srl.Update{BlockFor: time.Minute}))
	r, err := b2.Acquire(ctx, req("other", 0, lim))
	require.NoError(t, err)
	assert.False(t, r.OK)
	assert.True(t, r.Blocked)
	st, err := b2.Status(ctx, "shared")
	require.NoError(t, err)
	assert.Equal(t, uint64(4), st.Seq)
	w1, err := b1.Acquire(ctx, req("shared", srl.Forever, lim))
	require.NoError(t, err)
	w2, err := b2.Acquire(ctx, req("shared", srl.Forever, lim))
	require.NoError(t, err)
	assert.InDelta(t, (15 * time.Minute).Seconds(), (w2.Wait - w1.Wait).Seconds(), 1, "slots paced across instances")
}

func TestMigrationRace(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema := pgtest.Schema(t, dsn)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := New(ctx, dsn, WithSchema(schema), WithFailClosed(), WithPoolSize(1))
			if err == nil {
				_, err = b.Acquire(ctx, req("k", 0, srl.PerSecond(10)))
				_ = b.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "New %d", i)
	}
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var rows, version int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*), max(version) FROM `+pgx.Identifier{schema, versionTable}.Sanitize()).Scan(&rows, &version))
	assert.Equal(t, 1, rows)
	assert.Equal(t, schemaVersion, version)
}

func TestHostileKeys(t *testing.T) {
	b, dsn, schema := newTest(t)
	ctx := ctxT(t)
	lim := srl.Every(1, time.Hour)
	keys := []string{
		"'; DROP TABLE buckets; --",
		`"; DROP SCHEMA ` + schema + ` CASCADE; --`,
		"nul\x00inside",
		"\x00",
		"invalid utf-8 \xff\xfe",
		"ünïcødé 日本語 🚦",
		strings.Repeat("k", 10_000),
		strings.Repeat("日本", 5_000),
		"",
		`\x41 $1 %s $$ $srl$`,
	}
	for _, k := range keys {
		r, err := b.Acquire(ctx, req(k, 0, lim))
		require.NoError(t, err, "key %q", k)
		assert.True(t, r.OK)
		r, err = b.Acquire(ctx, req(k, 0, lim))
		require.NoError(t, err)
		assert.False(t, r.OK, "key %.40q has its own bucket", k)
		require.NoError(t, b.Observe(ctx, k, srl.Update{Quotas: []srl.QuotaUpdate{{Limit: srl.Limit{Name: k[:min(len(k), 200)], Limit: 3, Window: time.Minute}}}}))
		dim := srl.Dimension(k[:min(len(k), 100)])
		err = b.SetLimits(ctx, k, []srl.Limit{{Name: "o", Dimension: dim, Limit: 1, Window: time.Minute}})
		if strings.Contains(string(dim), "\x00") || !utf8.ValidString(string(dim)) {
			assert.ErrorIs(t, err, srl.ErrInvalidLimit, "a limit name must be storable text")
		} else {
			require.NoError(t, err)
		}
		st, err := b.Status(ctx, k)
		require.NoError(t, err)
		assert.Equal(t, k, st.Key)
	}
	got, err := b.Keys(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, keys, got)
	for _, k := range keys {
		require.NoError(t, b.Clear(ctx, k))
	}
	got, err = b.Keys(ctx)
	require.NoError(t, err)
	assert.Empty(t, got)
	assertTableExists(t, dsn, schema, DefaultTable)
}

func assertTableExists(t *testing.T, dsn, schema, table string) {
	t.Helper()
	ctx := ctxT(t)
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = $2`, schema, table).Scan(&n))
	assert.Equal(t, 1, n, "table %q.%q", schema, table)
}

func TestHostileIdentifiers(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := ctxT(t)
	for _, tc := range []struct{ table string }{
		{`buckets"; DROP TABLE x; --`},
		{`Mixed Case $srl$ $$ 'q'`},
		{"日本語"},
	} {
		schema := pgtest.Schema(t, dsn) + `"; --`
		t.Cleanup(func() {
			conn, err := pgx.Connect(context.Background(), dsn)
			if err == nil {
				_, _ = conn.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
				conn.Close(context.Background())
			}
		})
		b, err := New(ctx, dsn, WithSchema(schema), WithTable(tc.table), WithFailClosed())
		require.NoError(t, err, "table %q", tc.table)
		r, err := b.Acquire(ctx, req("k", 0, srl.PerMinute(1)))
		require.NoError(t, err)
		assert.True(t, r.OK)
		_, err = b.sweep(ctx)
		require.NoError(t, err)
		require.NoError(t, b.Close())
		assertTableExists(t, dsn, schema, tc.table)
	}
	for _, opts := range [][]Option{
		{WithSchema("")},
		{WithSchema("nul\x00")},
		{WithSchema(strings.Repeat("s", 64))},
		{WithTable(strings.Repeat("t", 53))},
		{WithTable(versionTable)},
		{WithPoolSize(0)},
		{WithLockTimeout(-1)},
		{WithStatementTimeout(-time.Second)},
		{WithIdleTTL(0)},
		{WithFallback(nil)},
	} {
		_, err := New(ctx, dsn, opts...)
		assert.ErrorIs(t, err, ErrInvalidOption)
		assert.ErrorIs(t, err, srl.ErrInvalidLimit)
	}
	_, err := New(ctx, "postgres://user:s3cret@[::1", WithFailClosed())
	require.ErrorIs(t, err, ErrInvalidOption)
	assert.NotContains(t, err.Error(), "s3cret")
}

func TestAcquireErrors(t *testing.T) {
	b, _, _ := newTest(t)
	ctx := ctxT(t)
	_, err := b.Acquire(ctx, req("k", 0, srl.Limit{Limit: 0, Window: time.Second}))
	assert.ErrorIs(t, err, srl.ErrInvalidLimit)
	_, err = b.Acquire(ctx, srl.AcquireRequest{Key: "k", Defaults: []srl.Limit{srl.PerSecond(2)}, Costs: []srl.Cost{{Dimension: srl.DimRequests, Amount: 3}}})
	assert.ErrorIs(t, err, srl.ErrCostExceedsLimit)
	assert.NotErrorIs(t, err, srl.ErrBackendUnavailable)
	_, err = b.Status(ctx, "never seen")
	assert.ErrorIs(t, err, srl.ErrUnknownKey)
	assert.ErrorIs(t, b.SetLimits(ctx, "k", []srl.Limit{srl.PerSecond(1), srl.PerSecond(2)}), srl.ErrInvalidLimit)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = b.Acquire(cctx, req("k", 0, srl.PerSecond(1)))
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, srl.ErrRateLimited)
}

func TestStormSeparatePoolsHotKey(t *testing.T) {
	b, _, _ := newTest(t, WithPoolSize(8))
	ctx := ctxT(t)
	lim := srl.Every(50, time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, waits := 0, map[time.Duration]bool{}
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := b.Acquire(ctx, req("storm", 0, lim))
			require.NoError(t, err)
			r2, err := b.Acquire(ctx, req("storm-wait", srl.Forever, srl.Every(10, time.Hour)))
			require.NoError(t, err)
			mu.Lock()
			defer mu.Unlock()
			if r.OK {
				ok++
			}
			waits[r2.Wait.Round(time.Second)] = true
		}()
	}
	wg.Wait()
	assert.Equal(t, 50, ok)
	// 10 immediate, then 54 paced slots (6 minutes apart): 55 distinct waits.
	assert.Len(t, waits, 55)
}

func TestMaintenanceDeletesIdleRows(t *testing.T) {
	b, _, _ := newTest(t, WithIdleTTL(time.Millisecond))
	ctx := ctxT(t)
	lim := srl.Every(1, time.Hour)
	short := srl.Every(1, 50*time.Millisecond) // its window is over 55ms after use
	for _, k := range []string{"idle", "blocked", "override", "hourly"} {
		l := short
		if k == "hourly" {
			l = lim
		}
		_, err := b.Acquire(ctx, req(k, 0, l))
		require.NoError(t, err)
	}
	for range 2 {
		_, err := b.Acquire(ctx, req("reserved", srl.Forever, lim)) // the second an hour ahead
		require.NoError(t, err)
	}
	require.NoError(t, b.Observe(ctx, "blocked", srl.Update{BlockFor: time.Hour}))
	require.NoError(t, b.SetLimits(ctx, "override", []srl.Limit{srl.PerSecond(5)}))
	time.Sleep(100 * time.Millisecond)
	n, err := b.sweep(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	keys, err := b.Keys(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"blocked", "hourly", "override", "reserved"}, keys,
		"blocked, reserved, overridden or in a window that is not over")

	// Only one process sweeps at a time.
	conn, err := b.db.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, sweepClass, b.n.sweepKey)
	require.NoError(t, err)
	n, err = b.sweep(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(-1), n, "another process holds the maintenance lock")
}

func TestNewFromPoolLeavesPoolOpen(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema := pgtest.Schema(t, dsn)
	ctx := ctxT(t)
	pool, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	defer pool.Close()
	b, err := NewFromPool(ctx, pool, WithSchema(schema), WithFailClosed())
	require.NoError(t, err)
	r, err := b.Acquire(ctx, req("k", 0, srl.PerSecond(1)))
	require.NoError(t, err)
	assert.True(t, r.OK)
	require.NoError(t, b.Close())
	require.NoError(t, pool.Ping(ctx), "the caller's pool stays open")
	_, err = b.Acquire(ctx, req("k", 0, srl.PerSecond(1)))
	assert.True(t, errors.Is(err, srl.ErrClosed))
}

func TestHOTUpdatesOnly(t *testing.T) {
	b, dsn, schema := newTest(t)
	ctx := ctxT(t)
	for range 200 {
		_, err := b.Acquire(ctx, req("hot", 0, srl.Every(1e9, time.Hour)))
		require.NoError(t, err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var indexes int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND tablename = $2`, schema, DefaultTable).Scan(&indexes))
	assert.Equal(t, 1, indexes, "the primary key is the only index")
}

// An exhausted learned quota outlives the idle TTL until its window is
// over (the memory backend's forgettable): deleting it earlier would let
// the next requests burst past the server's limit.
func TestMaintenanceKeepsWindowsThatAreNotOver(t *testing.T) {
	b, _, _ := newTest(t, withTestClock(), WithPoolSize(1), WithIdleTTL(10*time.Minute))
	ctx := ctxT(t)
	now := int64(1_800_000_000_000_000_000)
	setNow(t, b, now)
	daily := srl.Limit{Name: "day", Limit: 1000, Window: 24 * time.Hour}
	require.NoError(t, b.Observe(ctx, "exhausted", srl.Update{Quotas: []srl.QuotaUpdate{
		{Limit: daily, Remaining: 0, HasRemaining: true, ResetIn: 20 * time.Hour, HasReset: true}}}))
	_, err := b.Acquire(ctx, req("fresh", 0, srl.Every(1, time.Second)))
	require.NoError(t, err)

	now += int64(time.Hour)
	setNow(t, b, now)
	n, err := b.sweep(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "only the key whose window is over")
	keys, err := b.Keys(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"exhausted"}, keys, "an exhausted daily quota survives an idle hour")
	r, err := b.Acquire(ctx, req("exhausted", 0, srl.Every(10, time.Hour)))
	require.NoError(t, err)
	assert.False(t, r.OK, "still exhausted")

	now += int64(20*time.Hour + time.Minute) // the day (and its Span) is over
	setNow(t, b, now)
	n, err = b.sweep(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	keys, err = b.Keys(ctx)
	require.NoError(t, err)
	assert.Empty(t, keys)
}

// A legacy row whose limit is below MinLimit (version 2 accepted any
// positive limit, and its search never ended for a zero cost) answers
// cost-exceeds at once: Earliest's search is bounded.
func TestTinyLimitDoesNotLoop(t *testing.T) {
	b, _, _ := newTest(t, WithStatementTimeout(5*time.Second))
	ctx := ctxT(t)
	require.NoError(t, b.SetLimits(ctx, "tiny", []srl.Limit{{Name: "t", Dimension: srl.DimTokens, Limit: 1, Window: time.Minute}}))
	_, err := b.db.Exec(ctx, `UPDATE `+b.n.qTable+` SET lim = '{1e-10}' WHERE id = sha256($1)`, []byte("tiny"))
	require.NoError(t, err)
	start := time.Now()
	_, err = b.Acquire(ctx, req("tiny", 0, srl.PerSecond(1))) // costs no tokens
	assert.ErrorIs(t, err, srl.ErrCostExceedsLimit)
	assert.Less(t, time.Since(start), time.Second)
	_, err = b.Acquire(ctx, req("k", 0, srl.Limit{Limit: srl.MinLimit / 2, Window: time.Second}))
	assert.ErrorIs(t, err, srl.ErrInvalidLimit, "limits below MinLimit are refused")
	require.NoError(t, b.Observe(ctx, "k", srl.Update{Quotas: []srl.QuotaUpdate{{Limit: srl.Limit{Name: "x", Limit: 1e-10, Window: time.Second}}}}))
	st, err := b.Status(ctx, "k")
	require.NoError(t, err)
	assert.Empty(t, st.Limits, "a report below MinLimit is ignored")
}

// TestMigrationFromV2 upgrades a table of version 2: its rows keep their
// state, learned limits below MinLimit are dropped, and a caller still
// running version 2 (selecting acquire's columns of version 2) keeps
// working.
func TestMigrationFromV2(t *testing.T) {
	b, dsn, schema := newTest(t)
	ctx := ctxT(t)
	lim := srl.Every(5, time.Hour)
	for range 3 {
		_, err := b.Acquire(ctx, req("kept", 0, lim))
		require.NoError(t, err)
	}
	require.NoError(t, b.Observe(ctx, "learned", srl.Update{Quotas: []srl.QuotaUpdate{
		{Limit: srl.Limit{Name: "a", Limit: 7, Window: time.Minute}},
		{Limit: srl.Limit{Name: "b", Limit: 9, Window: time.Minute}}}}))
	// What version 2 may have stored.
	b2, conn := reopenAsOf(t, b, dsn, schema, 2, `UPDATE `+b.n.qTable+` SET lim = '{1e-10, 9}' WHERE id = sha256('learned'::bytea)`)
	st, err := b2.Status(ctx, "kept")
	require.NoError(t, err)
	assert.Equal(t, uint64(3), st.Seq)
	assert.Equal(t, 2.0, st.Limits[0].Remaining)
	st, err = b2.Status(ctx, "learned")
	require.NoError(t, err)
	require.Len(t, st.Limits, 1)
	assert.Equal(t, "b", st.Limits[0].Name)

	var ok bool
	var code int32
	var wait, seq int64
	require.NoError(t, conn.QueryRow(ctx, `SELECT ok, code, wait, seq FROM `+b.n.qAcquire+`($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		[]byte("kept"), []string{lim.Name}, []string{"requests"}, []float64{5}, []int64{int64(time.Hour)},
		[]string{}, []float64{}, int64(0), true, int32(0)).Scan(&ok, &code, &wait, &seq))
	assert.True(t, ok)
	assert.Equal(t, int64(4), seq)
}

// TestMigrationFromV5 upgrades rows written before the windows had tails
// (version 5: no wprev or wbits): they keep their state with no tail, and a
// row whose tail arrays do not match its limits is read as having none.
func TestMigrationFromV5(t *testing.T) {
	b, dsn, schema := newTest(t)
	ctx := ctxT(t)
	lim := srl.Every(5, time.Hour)
	for range 3 {
		_, err := b.Acquire(ctx, req("old", 0, lim))
		require.NoError(t, err)
	}
	b2, conn := reopenAsOf(t, b, dsn, schema, 5, `ALTER TABLE `+b.n.qTable+` DROP COLUMN wprev, DROP COLUMN wbits`)
	st, err := b2.Status(ctx, "old")
	require.NoError(t, err)
	assert.Equal(t, 2.0, st.Limits[0].Remaining)
	var prev []float64
	require.NoError(t, conn.QueryRow(ctx, `SELECT wprev FROM `+b.n.qTable+` WHERE id = sha256('old'::bytea)`).Scan(&prev))
	assert.Equal(t, []float64{0}, prev, "an existing window starts with no tail")

	// Arrays out of step (written by hand): read as no tail, written back whole.
	_, err = conn.Exec(ctx, `UPDATE `+b.n.qTable+` SET wprev = '{}', wbits = '{}' WHERE id = sha256('old'::bytea)`)
	require.NoError(t, err)
	r, err := b2.Acquire(ctx, req("old", 0, lim))
	require.NoError(t, err)
	assert.True(t, r.OK)
	require.NoError(t, conn.QueryRow(ctx, `SELECT wprev FROM `+b.n.qTable+` WHERE id = sha256('old'::bytea)`).Scan(&prev))
	assert.Len(t, prev, 1)
	st, err = b2.Status(ctx, "old")
	require.NoError(t, err)
	assert.Equal(t, 1.0, st.Limits[0].Remaining)
}

// Cancel takes back the key's latest reservation, and only it.
func TestCancel(t *testing.T) {
	b, _, _ := newTest(t)
	ctx := ctxT(t)
	lim := srl.Every(1, time.Hour)
	r1, err := b.Acquire(ctx, req("k", srl.Forever, lim))
	require.NoError(t, err)
	r2, err := b.Acquire(ctx, req("k", srl.Forever, lim))
	require.NoError(t, err)
	r3, err := b.Acquire(ctx, req("k", srl.Forever, lim))
	require.NoError(t, err)
	require.True(t, r1.OK && r2.OK && r3.OK)
	assert.Greater(t, r3.At, r2.At)

	require.NoError(t, b.Cancel(ctx, "k", r2, nil), "not the latest: stays spent")
	st, err := b.Status(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, uint64(3), st.Seq)

	require.NoError(t, b.Cancel(ctx, "k", r3, nil))
	require.NoError(t, b.Cancel(ctx, "k", r2, nil), "latest again once r3 is taken back")
	st, err = b.Status(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), st.Seq)
	assert.Zero(t, st.Limits[0].Reserved)

	r, err := b.Acquire(ctx, req("k", srl.Forever, lim))
	require.NoError(t, err)
	assert.Equal(t, r2.Seq, r.Seq)
	assert.InDelta(t, r2.Wait.Seconds(), r.Wait.Seconds(), 1, "the next caller gets the slot back")

	require.NoError(t, b.Cancel(ctx, "never seen", r, nil))
	_, err = b.Status(ctx, "never seen")
	assert.ErrorIs(t, err, srl.ErrUnknownKey, "Cancel creates no row")
	assert.ErrorIs(t, b.Cancel(ctx, "k", r, []srl.Cost{{Amount: -1}}), srl.ErrInvalidLimit)
	require.NoError(t, b.Close())
	assert.ErrorIs(t, b.Cancel(ctx, "k", r, nil), srl.ErrClosed)
}
