package postgres

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
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

	// Every connection share busy: the acquire queues for a batch.
	for range cap(b.batch.sem) {
		b.batch.sem <- struct{}{}
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := b.Acquire(short, req("held", 0, lim))
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond) // it queues; a worker takes it and waits for a share
	for range cap(b.batch.sem) {
		<-b.batch.sem // a worker takes the batch; it waits for the row
	}
	err = <-errc
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

// TestAcquireNSameAsAcquire drives acquire_n (a batch in one call) and the
// same acquires one at a time, on two tables at the same database instants,
// through random batches (keys repeated within one, several max waits),
// reports, blocks and cancellations of the latest grants, and requires the
// same answers and states, the records of waiters for cancel included.
func TestAcquireNSameAsAcquire(t *testing.T) {
	one, _, _ := newTest(t, withTestClock(), WithPoolSize(1))
	many, _, _ := newTest(t, withTestClock(), WithPoolSize(1))
	ctx := ctxT(t)
	rng := rand.New(rand.NewPCG(5, 6))
	crng := rand.New(rand.NewPCG(7, 8)) // cancellations, apart from the sequence above
	type grant struct {
		one, many acquireOut
		args      *acquireArgs
	}
	grants := map[string][]grant{}
	cancels := 0
	now := int64(1_800_000_000_000_000_000)
	keys := []string{"a", "b", "c", "d"}
	defaults := []srl.Limit{srl.Every(3, 10*time.Second), srl.Every(7, time.Minute),
		{Name: "tok", Dimension: srl.DimTokens, Limit: 100, Window: 20 * time.Second}}
	var a acquireArgs
	for _, l := range defaults {
		a.names = append(a.names, l.Name)
		a.dims = append(a.dims, string(l.Dimension.OrRequests()))
		a.lims = append(a.lims, l.Limit)
		a.wins = append(a.wins, int64(l.Window))
	}
	batches := 0
	for step := range 400 {
		setNow(t, one, now)
		setNow(t, many, now)
		switch op := rng.IntN(10); {
		case op < 6:
			args := &a
			if rng.IntN(2) == 0 {
				// A token cost shared by the batch, now and then above
				// the token limit (cost exceeds: code 1).
				c := a
				c.cdims, c.camts = []string{string(srl.DimTokens)}, []float64{float64(rng.IntN(120))}
				args = &c
			}
			var reqs []*acqReq
			for range 1 + rng.IntN(6) {
				var mw int64
				switch rng.IntN(3) {
				case 1:
					mw = int64(rng.IntN(20)) * int64(time.Second)
				case 2:
					mw = int64(srl.Forever)
				}
				reqs = append(reqs, &acqReq{key: []byte(keys[rng.IntN(len(keys))]), a: args, maxWait: mw})
			}
			slices.SortStableFunc(reqs, func(x, y *acqReq) int { return strings.Compare(string(x.key), string(y.key)) })
			c, err := many.db.Acquire(ctx)
			require.NoError(t, err)
			err = many.batch.sendN(ctx, c, reqs)
			c.Release()
			require.NoError(t, err, "step %d", step)
			batches++
			for i, r := range reqs {
				var o acquireOut
				require.NoError(t, one.db.QueryRow(ctx, one.n.acquire, one.acquireParams(r.key, args, r.maxWait)...).
					Scan(pgtype.CompositeFields(o.fields())))
				require.Equal(t, o, r.out, "step %d request %d (%s)", step, i, r.key)
				if o.ok {
					grants[string(r.key)] = append(grants[string(r.key)], grant{one: o, many: r.out, args: args})
				}
			}
			for crng.IntN(2) == 0 {
				// The latest grants of a key given back, newest first.
				k := keys[crng.IntN(len(keys))]
				gs := grants[k]
				if len(gs) == 0 {
					break
				}
				g := gs[len(gs)-1]
				grants[k] = gs[:len(gs)-1]
				for _, c := range []struct {
					b *Backend
					o acquireOut
				}{{one, g.one}, {many, g.many}} {
					_, err := c.b.db.Exec(ctx, c.b.n.cancel, []byte(k), c.o.seq, c.o.at, g.args.cdims, g.args.camts, false, int32(0))
					require.NoError(t, err, "step %d cancel %s", step, k)
				}
				cancels++
			}
		case op < 8:
			key := keys[rng.IntN(len(keys))]
			u := srl.Update{Quotas: []srl.QuotaUpdate{{
				Limit:     srl.Limit{Name: "q", Limit: 5, Window: 10 * time.Second},
				Remaining: float64(rng.IntN(6)), HasRemaining: rng.IntN(2) == 0,
				ResetIn: time.Duration(rng.Int64N(int64(10 * time.Second))), HasReset: rng.IntN(2) == 0,
			}}}
			if rng.IntN(5) == 0 {
				u = srl.Update{BlockFor: time.Duration(rng.Int64N(int64(5 * time.Second)))}
			}
			require.NoError(t, one.Observe(ctx, key, u))
			require.NoError(t, many.Observe(ctx, key, u))
		default:
			now += rng.Int64N(int64(4 * time.Second))
		}
		for _, k := range keys {
			w, werr := one.Status(ctx, k)
			g, gerr := many.Status(ctx, k)
			require.Equal(t, werr != nil, gerr != nil, "step %d status %s", step, k)
			require.Equal(t, w, g, "step %d status %s", step, k)
			var wb, gb []int64
			var wf, gf []float64
			q := `SELECT undo_b, undo_f FROM %s WHERE id = sha256($1)`
			if werr == nil {
				require.NoError(t, one.db.QueryRow(ctx, fmt.Sprintf(q, one.n.qTable), []byte(k)).Scan(&wb, &wf))
				require.NoError(t, many.db.QueryRow(ctx, fmt.Sprintf(q, many.n.qTable), []byte(k)).Scan(&gb, &gf))
				require.Equal(t, wb, gb, "step %d records %s", step, k)
				require.Equal(t, len(wf), len(gf), "step %d records %s", step, k)
				for i := range wf {
					require.Equal(t, math.Float64bits(wf[i]), math.Float64bits(gf[i]), "step %d records %s", step, k)
				}
			}
		}
	}
	t.Logf("%d batches, %d cancels", batches, cancels)
}
