package postgres

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/pgtest"
)

// TestDatabaseRestartRecovers restarts the real server with the command in
// SMARTRATELIMIT_TEST_PG_RESTART (.ci/run sets it): requests keep being
// answered throughout (from the fallback while the server is down), the
// backend returns to the database by itself, and the shared state written
// before the restart is still there.
func TestDatabaseRestartRecovers(t *testing.T) {
	cmd := os.Getenv("SMARTRATELIMIT_TEST_PG_RESTART")
	if cmd == "" {
		t.Skip("set SMARTRATELIMIT_TEST_PG_RESTART to a shell command that restarts the server (.ci/run does)")
	}
	dsn := pgtest.DSN(t)
	schema := pgtest.Schema(t, dsn)
	b := newFailOpen(t, dsn, schema, false)
	ctx := ctxT(t)
	lim := srl.Every(1000, time.Hour)
	for range 5 {
		r, err := b.Acquire(ctx, req("restart", 0, lim))
		require.NoError(t, err)
		require.True(t, r.OK)
	}
	time.Sleep(time.Second) // synchronous_commit is off: let the WAL writer flush

	restart := exec.Command("sh", "-c", cmd)
	restart.Stdout, restart.Stderr = os.Stderr, os.Stderr
	require.NoError(t, restart.Start())
	restarted := make(chan error, 1)
	go func() { restarted <- restart.Wait() }()

	deadline := time.Now().Add(90 * time.Second)
	answered, degraded, done := 0, 0, false
	for {
		r, err := b.Acquire(ctx, req("restart", 0, lim))
		require.NoError(t, err, "every request is answered, from the fallback while the server is down")
		require.True(t, r.OK)
		answered++
		if b.Degraded() {
			degraded++
		}
		if !done {
			select {
			case err := <-restarted:
				require.NoError(t, err, "the restart command")
				done = true
			default:
			}
		}
		if done && !b.Degraded() {
			st, err := b.Status(ctx, "restart")
			if err == nil && !st.Degraded && st.Seq > 5 {
				break
			}
		}
		require.True(t, time.Now().Before(deadline), "the backend did not return to the database")
		time.Sleep(50 * time.Millisecond)
	}
	st, err := b.Status(ctx, "restart")
	require.NoError(t, err)
	assert.False(t, st.Degraded)
	assert.GreaterOrEqual(t, st.Seq, uint64(6), "the grants before the restart are still counted")
	t.Logf("%d requests answered across the restart, %d of them by the fallback", answered, degraded)
}
