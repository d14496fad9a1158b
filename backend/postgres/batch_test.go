package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
)

// A caller that gives up while its acquire waits in a batch (here behind
// another session's lock on the key's row) gets its context's error, and
// the slot the batch then grants is given back: nothing leaks.
func TestAbandonedAcquireGivesItsSlotBack(t *testing.T) {
	b, dsn, _ := newTest(t, WithLockTimeout(5*time.Second))
	ctx := ctxT(t)
	lim := srl.Every(2, time.Hour)
	r, err := b.Acquire(ctx, req("held", 0, lim))
	require.NoError(t, err)
	require.True(t, r.OK)

	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT 1 FROM `+b.n.qTable+` WHERE id = sha256('held'::bytea) FOR UPDATE`)
	require.NoError(t, err)

	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = b.Acquire(short, req("held", 0, lim))
	require.ErrorIs(t, err, srl.ErrBackendUnavailable, "the caller's context ended")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, tx.Commit(ctx)) // the batch goes on and is granted the slot

	require.Eventually(t, func() bool {
		st, err := b.Status(ctx, "held")
		return err == nil && st.Seq == 1 && st.Limits[0].Remaining == 1
	}, 5*time.Second, 20*time.Millisecond, "the abandoned grant is given back")
	r, err = b.Acquire(ctx, req("held", 0, lim))
	require.NoError(t, err)
	assert.True(t, r.OK, "the slot is free again")
}

// Acquires that wait for a connection go out together, and each gets its
// own answer: many goroutines over a few keys get exactly each key's limit.
func TestBatchedAcquiresAnswerEachCaller(t *testing.T) {
	b, _, _ := newTest(t, WithPoolSize(2))
	ctx := ctxT(t)
	lim := srl.Every(25, time.Hour)
	keys := []string{"k1", "k2", "k3", "k4"}
	var mu sync.Mutex
	granted := map[string]int{}
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				key := keys[(g+i)%len(keys)]
				r, err := b.Acquire(ctx, req(key, 0, lim))
				if !assert.NoError(t, err) {
					return
				}
				if r.OK {
					mu.Lock()
					granted[key]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for _, k := range keys {
		assert.Equal(t, 25, granted[k], k)
		st, err := b.Status(ctx, k)
		require.NoError(t, err)
		assert.Equal(t, uint64(25), st.Seq, k)
	}
}
