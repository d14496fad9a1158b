package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/smartratelimit/smartratelimit"
)

// Acquires are sent in batches: while the pool's connections are busy,
// the acquires that arrive queue up, and the next free worker sends all of
// them (up to maxBatch) in one pipeline, which the server runs as one
// implicit transaction — one round trip and one commit for the lot, and
// PL/pgSQL prepares the function's expressions once instead of once per
// acquire. Each acquire is still the same function call, locking its own
// key's row; a batch locks its rows in key order, so two batches cannot
// deadlock. With the pool idle an acquire goes alone, at once.

// maxBatch bounds the acquires of one pipeline (and the rows it locks).
const maxBatch = 32

// maxWorkers bounds the workers (one connection each at a time).
const maxWorkers = 16

// Request states: a worker delivers a result only to a caller still
// waiting; a caller gone gives back what it was granted.
const (
	pending int32 = iota
	delivered
	abandoned
)

// acquireOut is acquire's row.
type acquireOut struct {
	ok, blocked    bool
	code           int32
	wait, seq, win int64
	at             int64
	name, dim      string
	lim            float64
}

// fields returns o's fields in the order of acquire's OUT columns, to scan
// into.
func (o *acquireOut) fields() []any {
	return []any{&o.ok, &o.code, &o.wait, &o.seq, &o.blocked, &o.name, &o.dim, &o.lim, &o.win, &o.at}
}

// acquireParams returns the arguments of one acquire call.
func (b *Backend) acquireParams(key []byte, a *acquireArgs, maxWait int64) []any {
	return []any{key, a.names, a.dims, a.lims, a.wins, a.cdims, a.camts, maxWait, b.relaxed, b.lockMS}
}

type acqReq struct {
	key     []byte
	a       *acquireArgs
	maxWait int64
	state   atomic.Int32
	done    chan struct{}
	out     acquireOut
	err     error
}

type batcher struct {
	b     *Backend
	queue chan *acqReq
	sem   chan struct{} // one token per acquire call in flight (direct or batch)
	wg    sync.WaitGroup

	// mu orders queueing against stop: a request is queued under the
	// read lock only while stopped is false, so once stop has set it (the
	// write lock), nothing new enters the queue and stop's last drain
	// answers whatever the workers left.
	mu      sync.RWMutex
	stopped bool
}

func newBatcher(b *Backend) *batcher {
	n := int(b.db.Config().MaxConns) / 2
	n = max(1, min(n, maxWorkers))
	bt := &batcher{b: b, queue: make(chan *acqReq, 4*maxBatch*n), sem: make(chan struct{}, n)}
	bt.wg.Add(n)
	for range n {
		go bt.work()
	}
	return bt
}

// stop shuts the batcher down after the backend's context ended (which
// wakes any acquire blocked on a full queue): it closes the queue to new
// requests, waits for the workers, and answers every request still queued
// with smartratelimit.ErrClosed. An acquire that passed the backend's
// closed check before Close cannot be left waiting on a queue nobody
// reads.
func (bt *batcher) stop() {
	bt.mu.Lock()
	bt.stopped = true
	bt.mu.Unlock()
	bt.wg.Wait()
	bt.drain(nil)
}

// enqueue queues r unless the batcher is stopped, the backend closes or
// ctx ends first.
func (bt *batcher) enqueue(ctx context.Context, r *acqReq) error {
	bt.mu.RLock()
	defer bt.mu.RUnlock()
	if bt.stopped {
		return smartratelimit.ErrClosed
	}
	select {
	case bt.queue <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-bt.b.ctx.Done():
		return smartratelimit.ErrClosed
	}
}

// acquire runs one acquire and returns its row: at once on the caller's
// goroutine while a worker's share of the connections is free and nobody
// queues, else through a batch. ctx is the caller's: it bounds the wait in
// the queue; the round trip has the backend's bound when it runs at once,
// and a batch's has its own (pipelineTimeout).
func (bt *batcher) acquire(ctx context.Context, key []byte, a *acquireArgs, maxWait int64) (acquireOut, error) {
	if len(bt.queue) == 0 {
		select {
		case bt.sem <- struct{}{}:
			o, err := bt.one(ctx, key, a, maxWait)
			<-bt.sem
			return o, err
		default:
		}
	}
	r := &acqReq{key: key, a: a, maxWait: maxWait, done: make(chan struct{})}
	if err := bt.enqueue(ctx, r); err != nil {
		return acquireOut{}, err
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		if r.state.CompareAndSwap(pending, abandoned) {
			return acquireOut{}, ctx.Err()
		}
		<-r.done // delivered meanwhile
	}
	return r.out, r.err
}

func (bt *batcher) work() {
	defer bt.wg.Done()
	stop := bt.b.ctx.Done()
	reqs := make([]*acqReq, 0, maxBatch)
	for {
		reqs = reqs[:0]
		select {
		case r := <-bt.queue:
			reqs = append(reqs, r)
		case <-stop:
			bt.drain(nil)
			return
		}
	more:
		for len(reqs) < maxBatch {
			select {
			case r := <-bt.queue:
				reqs = append(reqs, r)
			default:
				break more
			}
		}
		select {
		case bt.sem <- struct{}{}:
		case <-stop:
			bt.drain(reqs)
			return
		}
		bt.run(reqs)
		<-bt.sem
	}
}

// one runs a single acquire on the caller's context.
func (bt *batcher) one(ctx context.Context, key []byte, a *acquireArgs, maxWait int64) (acquireOut, error) {
	b := bt.b
	return roundTrip(b, ctx, b.callTimeout, func(ctx context.Context, c *pgxpool.Conn) (acquireOut, error) {
		var o acquireOut
		err := c.QueryRow(ctx, b.n.acquire, b.acquireParams(key, a, maxWait)...).Scan(pgtype.CompositeFields(o.fields()))
		return o, err
	})
}

// drain answers the requests left when the backend closes: reqs, taken
// from the queue already, and those still in it.
func (bt *batcher) drain(reqs []*acqReq) {
	for {
		for _, r := range reqs {
			r.err = smartratelimit.ErrClosed
			bt.deliver(r)
		}
		reqs = reqs[:0]
		select {
		case r := <-bt.queue:
			reqs = append(reqs, r)
		default:
			return
		}
	}
}

// run sends reqs in one pipeline (alone again each when the pipeline
// fails for a reason other than the connection: one key's lock timeout
// must not fail the others) and delivers every result.
func (bt *batcher) run(reqs []*acqReq) {
	live := reqs[:0]
	for _, r := range reqs {
		if r.state.Load() == abandoned {
			close(r.done)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	if bt.b.fallback != nil && bt.b.degraded.Load() {
		for _, r := range live {
			r.err = errDegraded
			bt.deliver(r)
		}
		return
	}
	slices.SortStableFunc(live, func(x, y *acqReq) int { return strings.Compare(string(x.key), string(y.key)) })
	err := bt.send(live)
	if err != nil && len(live) > 1 && !connectionLost(err) {
		for _, r := range live {
			r.err = bt.send([]*acqReq{r})
		}
	} else {
		for _, r := range live {
			r.err = err
		}
	}
	for _, r := range live {
		bt.deliver(r)
	}
}

// send runs reqs' acquires and stores their rows: in one call of
// acquire_n when they share their defaults and costs, else in one
// pipeline of acquire calls.
func (bt *batcher) send(reqs []*acqReq) error {
	b := bt.b
	_, err := roundTrip(b, b.ctx, b.pipelineTimeout(len(reqs)), func(ctx context.Context, c *pgxpool.Conn) (struct{}, error) {
		return struct{}{}, bt.sendReqs(ctx, c, reqs)
	})
	return err
}

// sendReqs is send on ctx and c.
func (bt *batcher) sendReqs(ctx context.Context, c *pgxpool.Conn, reqs []*acqReq) error {
	b := bt.b
	if len(reqs) > 1 && sameArgs(reqs) {
		return bt.sendN(ctx, c, reqs)
	}
	var batch pgx.Batch
	for _, r := range reqs {
		batch.Queue(b.n.acquire, b.acquireParams(r.key, r.a, r.maxWait)...)
	}
	br := c.SendBatch(ctx, &batch)
	for _, r := range reqs {
		if err := br.QueryRow().Scan(pgtype.CompositeFields(r.out.fields())); err != nil {
			_ = br.Close()
			return err
		}
	}
	return br.Close()
}

// deliver hands r's result to its caller, or, when the caller is gone,
// gives back the slot it was granted.
func (bt *batcher) deliver(r *acqReq) {
	if r.state.CompareAndSwap(pending, delivered) {
		close(r.done)
		return
	}
	close(r.done)
	if r.err == nil && r.out.ok && r.out.at != 0 {
		ctx, cancel := context.WithTimeout(bt.b.ctx, time.Second)
		defer cancel()
		_, _ = bt.b.db.Exec(ctx, bt.b.n.cancel, r.key, r.out.seq, r.out.at, r.a.cdims, r.a.camts, bt.b.relaxed, bt.b.lockMS)
	}
}

// sameArgs reports whether every request has the defaults and costs of the
// first.
func sameArgs(reqs []*acqReq) bool {
	a := reqs[0].a
	for _, r := range reqs[1:] {
		x := r.a
		if x != a && !(slices.Equal(x.names, a.names) && slices.Equal(x.dims, a.dims) &&
			slices.Equal(x.lims, a.lims) && slices.Equal(x.wins, a.wins) &&
			slices.Equal(x.cdims, a.cdims) && slices.Equal(x.camts, a.camts) &&
			(x.cdims == nil) == (a.cdims == nil)) {
			return false
		}
	}
	return true
}

// sendN runs reqs' acquires in one call of acquire_n.
func (bt *batcher) sendN(ctx context.Context, c *pgxpool.Conn, reqs []*acqReq) error {
	b := bt.b
	keys := make([][]byte, len(reqs))
	waits := make([]int64, len(reqs))
	for i, r := range reqs {
		keys[i], waits[i] = r.key, r.maxWait
	}
	a := reqs[0].a
	rows, err := c.Query(ctx, b.n.acquireN, keys, a.names, a.dims, a.lims, a.wins, a.cdims, a.camts,
		waits, b.relaxed, b.lockMS)
	if err != nil {
		return err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var i int32
		var o acquireOut
		if err := rows.Scan(append([]any{&i}, o.fields()...)...); err != nil {
			return err
		}
		if i < 1 || int(i) > len(reqs) {
			return errors.New("postgres: acquire_n answered an unknown index")
		}
		reqs[i-1].out = o
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if n != len(reqs) {
		return errors.New("postgres: acquire_n answered too few rows")
	}
	return nil
}
