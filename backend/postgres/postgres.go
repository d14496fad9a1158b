package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/backend/memory"
)

var (
	_ smartratelimit.Backend  = (*Backend)(nil)
	_ smartratelimit.Canceler = (*Backend)(nil)
)

// Backend is a smartratelimit.Backend storing every key's buckets in one
// PostgreSQL table shared by all processes. It is safe for concurrent use.
// Create it with New or NewFromPool and Close it when done.
type Backend struct {
	db       *pgxpool.Pool
	ownPool  bool
	addr     string // host:port, for errors and logs
	o        options
	n        *names
	relaxed  bool  // set synchronous_commit = off per transaction (caller's pool)
	lockMS   int32 // lock_timeout per transaction, ms (caller's pool)
	fallback smartratelimit.Backend

	// callTimeout bounds one round trip on the client side (see
	// roundTripTimeout); a pipeline of n acquires gets n-1 times
	// stmtTimeout more (see pipelineTimeout).
	callTimeout, stmtTimeout time.Duration

	closed   atomic.Bool
	degraded atomic.Bool
	ctx      context.Context // ends with Close; scopes background work
	cancel   context.CancelFunc
	done     chan struct{} // closed when the background goroutine ends
	batch    *batcher      // sends acquires in pipelines
}

// New connects to the database at dsn (a URL or key=value string, see
// pgxpool.ParseConfig) with a pool of its own, creates or migrates the
// schema, and returns the Backend. Close closes the pool.
//
// The pool's connections carry application_name "smartratelimit" (unless
// the DSN sets one), statement_timeout, lock_timeout,
// idle_in_transaction_session_timeout and, by default,
// synchronous_commit = off.
//
// When the server cannot be reached — including when ctx ends before it
// answers — New fails with an error wrapping
// smartratelimit.ErrBackendUnavailable (and ctx's error, if it ended) that
// names host:port (never the DSN's credentials) if the backend fails
// closed; when it fails open, New succeeds in degraded mode and keeps
// trying in the background. A server that stops answering once connected
// counts as unreachable too: New's schema check is bounded, like every
// round trip, by the statement timeout plus one second, and a migration
// by three minutes, whatever ctx allows.
func New(ctx context.Context, dsn string, opts ...Option) (*Backend, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, invalid("cannot parse the DSN") // its text may hold a password
	}
	cc := pc.ConnConfig
	pc.MaxConns = int32(o.poolSize)
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = 5 * time.Second
	}
	rp := cc.RuntimeParams
	if rp["application_name"] == "" {
		rp["application_name"] = ApplicationName
	}
	rp["statement_timeout"] = millis(o.statementTimeout)
	rp["lock_timeout"] = millis(o.lockTimeout)
	rp["idle_in_transaction_session_timeout"] = "10000"
	if !o.syncCommit {
		rp["synchronous_commit"] = "off"
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, &unavailableError{addr: address(&cc.Config), err: stripConnect(err)}
	}
	b, err := start(ctx, pool, true, address(&cc.Config), o)
	if err != nil {
		if errors.As(err, new(noAnswerError)) {
			// pgx gives each connection 15 s to close cleanly, which a
			// silent network takes in full: New does not wait for it.
			go pool.Close()
		} else {
			pool.Close()
		}
		return nil, err
	}
	return b, nil
}

// NewFromPool returns a Backend using the caller's pool, which Close leaves
// open. The schema is created or migrated as by New. WithPoolSize and
// WithStatementTimeout do not apply (the pool's settings do); lock_timeout
// and synchronous_commit are set per transaction, which also works behind
// PgBouncer in transaction mode.
func NewFromPool(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Backend, error) {
	if pool == nil {
		return nil, invalid("nil pool")
	}
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	return start(ctx, pool, false, address(&pool.Config().ConnConfig.Config), o)
}

func start(ctx context.Context, pool *pgxpool.Pool, own bool, addr string, o options) (*Backend, error) {
	b := &Backend{
		db:       pool,
		ownPool:  own,
		addr:     addr,
		o:        o,
		n:        newNames(o.schema, o.table, o.now),
		relaxed:  !o.syncCommit && !own,
		lockMS:   int32(min(ceilMillis(o.lockTimeout), math.MaxInt32)),
		fallback: o.fallback,
		done:     make(chan struct{}),

		callTimeout: roundTripTimeout(o, own),
		stmtTimeout: statementBound(o, own),
	}
	if own {
		b.lockMS = 0 // a pool of our own sets both per session
	}
	var ownFallback bool
	if b.fallback == nil && !o.failClosed {
		// Fail open by default, on an in-memory backend.
		m, err := memory.New()
		if err != nil {
			return nil, err
		}
		b.fallback, ownFallback = m, true
	}
	if err := b.migrateBounded(ctx, pool); err != nil {
		var rerr error
		switch {
		case ctx.Err() != nil:
			// The server did not answer before the caller's context
			// ended: for New that is an unreachable server, so the
			// fallback serves (fail open) or the error wraps both
			// ErrBackendUnavailable and the context's error (fail
			// closed).
			err = ctx.Err()
			if b.fallback == nil {
				rerr = &unavailableError{addr: addr, err: err}
			}
		case b.fallback == nil || !connectionLost(err):
			// Only an unreachable server is served by the fallback; a
			// server answering with an error (permissions, a lock
			// timeout) is reported.
			rerr = &unavailableError{addr: addr, err: stripConnect(err)}
		}
		if rerr != nil {
			if ownFallback {
				_ = b.fallback.Close()
			}
			return nil, rerr
		}
		b.enterDegraded(err)
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.batch = newBatcher(b)
	go b.loop()
	return b, nil
}

// roundTripMargin is the time a round trip is given beyond the statement
// timeout: for the network, the connection pool and the server's answer
// that the statement timed out.
const roundTripMargin = time.Second

// silentTimeout bounds a round trip when no statement timeout is known
// (disabled, or the caller's pool's): it guards against a silent network
// only.
const silentTimeout = 30 * time.Second

// roundTripTimeout returns the client-side bound of one round trip: the
// statement timeout (the pool's own when New created it, or the one
// WithStatementTimeout gave NewFromPool) plus roundTripMargin. A server
// that answers — even with a statement or lock timeout — answers within
// it; past it, the network or the server is silent, and without this
// bound a call would wait until the kernel gives up on the connection
// (many minutes), on a caller context without deadline forever.
func roundTripTimeout(o options, own bool) time.Duration {
	if (own || o.stSet) && o.statementTimeout > 0 {
		return o.statementTimeout + roundTripMargin
	}
	return silentTimeout
}

// statementBound returns how long the server may spend on one acquire of
// a pipeline: the statement timeout, or the lock timeout when shorter (an
// acquire waits for one row lock; the rest takes microseconds).
func statementBound(o options, own bool) time.Duration {
	var d time.Duration
	if own || o.stSet {
		d = o.statementTimeout
	}
	if o.lockTimeout > 0 && (d == 0 || o.lockTimeout < d) {
		d = o.lockTimeout
	}
	return d
}

// pipelineTimeout bounds the round trip of a pipeline of n acquires, whose
// statements each have the statement timeout of their own, with
// silentTimeout (or callTimeout, if longer) as a ceiling.
func (b *Backend) pipelineTimeout(n int) time.Duration {
	return min(b.callTimeout+time.Duration(n-1)*b.stmtTimeout, max(b.callTimeout, silentTimeout))
}

// address returns host:port of the first server of c.
func address(c *pgconn.Config) string {
	return net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port)))
}

func ceilMillis(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

func millis(d time.Duration) string { return strconv.FormatInt(ceilMillis(d), 10) }

// decisionError carries an answer that is not a database failure (a cost
// larger than a limit, an unknown key): it is returned as is, never retried
// and never served by the fallback.
type decisionError struct{ error }

func (e decisionError) Unwrap() error { return e.error }

// call runs db against the database, retrying conflicts and lost
// connections. When the connection is lost or the server cannot be
// reached and a fallback exists, the backend enters degraded mode and fb
// serves the call. Any other failure — the server answered with an error
// (a lock or statement timeout under contention: serving a hot key locally
// would bypass the shared limit), or the context ended during the call —
// is returned wrapping smartratelimit.ErrBackendUnavailable.
func call[T any](b *Backend, ctx context.Context, db func(context.Context) (T, error), fb func(smartratelimit.Backend) (T, error)) (T, error) {
	var zero T
	if b.closed.Load() {
		return zero, smartratelimit.ErrClosed
	}
	if b.fallback != nil && b.degraded.Load() {
		return fb(b.fallback)
	}
	v, err := retry(b, ctx, db)
	if err == nil {
		return v, nil
	}
	var d decisionError
	switch {
	case errors.As(err, &d):
		return zero, d.error
	case ctx.Err() != nil:
		return zero, &unavailableError{addr: b.addr, err: ctx.Err()}
	case b.closed.Load():
		return zero, smartratelimit.ErrClosed
	case b.fallback == nil || !connectionLost(err):
		return zero, &unavailableError{addr: b.addr, err: stripConnect(err)}
	}
	b.enterDegraded(err)
	return fb(b.fallback)
}

func retry[T any](b *Backend, ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	for attempt := 0; ; attempt++ {
		v, err := f(ctx)
		if err == nil || ctx.Err() != nil || errors.As(err, new(decisionError)) {
			return v, err
		}
		switch {
		case errors.As(err, new(noAnswerError)), errors.Is(err, errDegraded):
			// Not retried: another connection would most likely wait
			// as long. The idle ones may be as stuck.
			if b.ownPool {
				b.db.Reset()
			}
			return v, err
		case retryableConflict(err) && attempt < 4:
			t := time.NewTimer(time.Duration(1+rand.IntN(5<<attempt)) * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return v, err
			case <-t.C:
			}
		case connectionLost(err) && attempt < 2 && !b.closed.Load():
			// A lost connection (server restart, pg_terminate_backend)
			// usually means the idle ones are gone too.
			if attempt == 0 && b.ownPool {
				b.db.Reset()
			}
		default:
			return v, err
		}
	}
}

// roundTrip runs f on a connection of the pool, the round trip bounded by
// d: an error caused by that bound (not by ctx) becomes a noAnswerError,
// the server did not answer. Waiting for a connection is not part of the
// round trip (see conn).
func roundTrip[T any](b *Backend, ctx context.Context, d time.Duration, f func(context.Context, *pgxpool.Conn) (T, error)) (T, error) {
	c, err := b.conn(ctx, d)
	if err != nil {
		var zero T
		return zero, err
	}
	defer c.Release()
	return within(ctx, d, func(ctx context.Context) (T, error) { return f(ctx, c) })
}

// conn takes a connection of the pool. Making a new connection is bounded
// by d, like a round trip: a server that does not answer it is silent. A
// busy pool is not: while every connection is in use, the wait goes on
// (they come back within their own bounds), up to acquireTimeout in all
// and as long as ctx allows.
func (b *Backend) conn(ctx context.Context, d time.Duration) (*pgxpool.Conn, error) {
	start := time.Now()
	for {
		c, err := within(ctx, d, b.db.Acquire)
		if err == nil || !errors.As(err, new(noAnswerError)) {
			return c, err
		}
		if st := b.db.Stat(); st.AcquiredConns() < st.MaxConns() || time.Since(start) >= acquireTimeout(d) {
			return nil, err
		}
	}
}

// acquireTimeout bounds the wait for a connection of a busy pool before a
// round trip bounded by d.
func acquireTimeout(d time.Duration) time.Duration { return max(silentTimeout, 4*d) }

// exec runs a statement in one round trip (see roundTrip).
func (b *Backend) exec(ctx context.Context, sql string, args ...any) error {
	_, err := roundTrip(b, ctx, b.callTimeout, func(ctx context.Context, c *pgxpool.Conn) (struct{}, error) {
		_, err := c.Exec(ctx, sql, args...)
		return struct{}{}, err
	})
	return err
}

// within runs f on ctx bounded by d; an error caused by that bound (not
// by ctx) becomes a noAnswerError.
func within[T any](ctx context.Context, d time.Duration, f func(context.Context) (T, error)) (T, error) {
	rt, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	v, err := f(rt)
	if err != nil && errors.Is(err, context.DeadlineExceeded) && rt.Err() != nil && ctx.Err() == nil {
		err = noAnswerError{after: d}
	}
	return v, err
}

// migrateTimeout bounds New's migration on the client side: its
// transaction waits at most 60 s for another process's migration (its
// lock_timeout) and gives each statement 120 s.
const migrateTimeout = 3 * time.Minute

// migrateBounded is New's schema check and migration, bounded on the
// client side as every round trip is, so that a network that goes silent
// after the connection is made cannot hang New on a context without
// deadline: the check (one round trip, all that runs once the schema is in
// place) within callTimeout, a migration within migrateTimeout. Past
// them the server counts as unreachable.
func (b *Backend) migrateBounded(ctx context.Context, pool *pgxpool.Pool) error {
	v, err := within(ctx, b.callTimeout, func(ctx context.Context) (int, error) { return b.n.currentVersion(ctx, pool) })
	if err != nil || v >= schemaVersion {
		return err
	}
	_, err = within(ctx, max(migrateTimeout, b.callTimeout), func(ctx context.Context) (struct{}, error) {
		return struct{}{}, b.n.migrate(ctx, pool)
	})
	return err
}

// enterDegraded switches to the fallback and logs it once.
func (b *Backend) enterDegraded(err error) {
	if b.degraded.CompareAndSwap(false, true) {
		b.o.logger.Warn("smartratelimit/postgres: database unreachable, serving from the local fallback",
			"addr", b.addr, "error", describe(err))
	}
}

// Degraded reports whether the fallback is serving calls because the
// database could not be reached.
func (b *Backend) Degraded() bool { return b.degraded.Load() }

// Close stops the background maintenance, closes the pool when New
// created it, and closes the fallback. Later calls fail with
// smartratelimit.ErrClosed; closing again does nothing.
func (b *Backend) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	b.cancel()
	<-b.done
	b.batch.stop()
	if b.ownPool {
		b.db.Close()
	}
	if b.fallback != nil {
		return b.fallback.Close()
	}
	return nil
}

// loop probes the database every second while degraded and runs the
// maintenance at its interval otherwise, until Close.
func (b *Backend) loop() {
	defer close(b.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	every := min(max(b.o.idleTTL/2, time.Second), time.Minute)
	next := time.Now().Add(every)
	for {
		select {
		case <-b.ctx.Done():
			return
		case now := <-tick.C:
			if b.degraded.Load() {
				b.probe()
			} else if !now.Before(next) {
				next = now.Add(every)
				if _, err := b.sweep(b.ctx); err != nil && b.ctx.Err() == nil {
					b.o.logger.Debug("smartratelimit/postgres: maintenance failed", "error", describe(err))
				}
			}
		}
	}
}

// probe leaves degraded mode when the database answers (and the schema is
// in place, creating it if the database was never reached).
func (b *Backend) probe() {
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer cancel()
	if err := b.n.migrate(ctx, b.db); err != nil {
		return
	}
	if b.degraded.CompareAndSwap(true, false) {
		b.o.logger.Info("smartratelimit/postgres: database reachable again", "addr", b.addr)
	}
}

// sweepBatch bounds the rows one maintenance statement deletes.
const sweepBatch = 1000

// sweep deletes idle rows if this process wins the maintenance election;
// it returns the number deleted (-1 when another process holds the lock).
func (b *Backend) sweep(ctx context.Context) (int64, error) {
	var total int64
	for range 100 {
		n, err := roundTrip(b, ctx, b.callTimeout, func(ctx context.Context, c *pgxpool.Conn) (int64, error) {
			var n int64
			err := c.QueryRow(ctx, b.n.sweep, sweepClass, b.n.sweepKey, int64(b.o.idleTTL), sweepBatch).Scan(&n)
			return n, err
		})
		if err != nil || n < 0 {
			if total == 0 {
				return n, err
			}
			return total, err
		}
		total += n
		if n < sweepBatch {
			break
		}
	}
	return total, nil
}

// Acquire implements smartratelimit.Backend in one database round trip:
// one call of a PL/pgSQL function that locks the key's row, runs
// smartratelimit.Window's Earliest and Take on the database clock and
// writes the row back.
func (b *Backend) Acquire(ctx context.Context, req smartratelimit.AcquireRequest) (smartratelimit.Reservation, error) {
	var zero smartratelimit.Reservation
	if err := validLimits(req.Defaults, false); err != nil {
		return zero, err
	}
	a := acquireArgs{
		names: make([]string, len(req.Defaults)),
		dims:  make([]string, len(req.Defaults)),
		lims:  make([]float64, len(req.Defaults)),
		wins:  make([]int64, len(req.Defaults)),
	}
	for i, l := range req.Defaults {
		a.names[i], a.dims[i], a.lims[i], a.wins[i] = l.Name, string(l.Dimension.OrRequests()), l.Limit, int64(l.Window)
	}
	var err error
	if a.cdims, a.camts, err = costArgs(req.Costs); err != nil {
		return zero, err
	}
	maxWait := max(req.MaxWait, 0)
	key := []byte(req.Key)
	return call(b, ctx, func(ctx context.Context) (smartratelimit.Reservation, error) {
		// The function's row comes as one composite value (SELECT f(...)):
		// cheaper for the server than a FROM clause, which plans and
		// materializes a function scan on every call. It comes through the
		// batcher, which sends the acquires waiting for a connection
		// together; the wait in its queue is bounded by the caller's ctx
		// only, the round trip by the backend's bound (or the batch's).
		o, err := b.batch.acquire(ctx, key, &a, int64(maxWait))
		if err != nil {
			return zero, err
		}
		var l smartratelimit.Limit
		if o.lim > 0 {
			l = smartratelimit.Limit{Name: o.name, Dimension: smartratelimit.Dimension(o.dim), Limit: o.lim, Window: time.Duration(o.win)}
		}
		if o.code == 1 {
			return zero, decisionError{fmt.Errorf("%w: %s", smartratelimit.ErrCostExceedsLimit, l)}
		}
		r := smartratelimit.Reservation{OK: o.ok, Wait: time.Duration(o.wait), Limit: l, Blocked: o.blocked}
		if o.ok {
			r.Seq, r.At = uint64(o.seq), o.at
		}
		return r, nil
	}, func(fb smartratelimit.Backend) (smartratelimit.Reservation, error) {
		return fb.Acquire(ctx, req)
	})
}

// costArgs checks costs (a non-negative amount, a dimension text can hold:
// valid UTF-8 without NUL) and returns them as the functions' parallel
// arrays: nil (SQL NULL, which the functions take for no costs and the
// server need not decode) when there are none.
func costArgs(costs []smartratelimit.Cost) ([]string, []float64, error) {
	if len(costs) == 0 {
		return nil, nil, nil
	}
	dims, amts := make([]string, len(costs)), make([]float64, len(costs))
	for i, c := range costs {
		if math.IsNaN(c.Amount) || math.IsInf(c.Amount, 0) || c.Amount < 0 {
			return nil, nil, fmt.Errorf("%w: cost %v of %s must be a non-negative number",
				smartratelimit.ErrInvalidLimit, c.Amount, c.Dimension.OrRequests())
		}
		dim := string(c.Dimension.OrRequests())
		if !storable(dim) {
			return nil, nil, fmt.Errorf("%w: cost dimension %q holds a NUL byte or invalid UTF-8", smartratelimit.ErrInvalidLimit, dim)
		}
		dims[i], amts[i] = dim, c.Amount
	}
	return dims, amts, nil
}

// Cancel implements smartratelimit.Canceler in one round trip, as the
// memory backend's: while r is still the key's latest grant (its Seq and
// slot At unchanged), the windows of a waiter's grant are put back as they
// were before it, with the key's FIFO position, so the next caller gets
// the slot r had and waiters giving up newest first are all taken back;
// when an update changed the windows since (or r did not wait), its costs
// leave the windows (smartratelimit.Window.Untake) and the FIFO position
// goes back to the latest slot still held. Otherwise nothing changes: an
// older reservation stays spent, which is safe. costs are those given to
// Acquire.
func (b *Backend) Cancel(ctx context.Context, key string, r smartratelimit.Reservation, costs []smartratelimit.Cost) error {
	if b.closed.Load() {
		return smartratelimit.ErrClosed
	}
	cdims, camts, err := costArgs(costs)
	if err != nil {
		return err // as the memory backend, whatever r holds
	}
	if !r.OK || r.At == 0 || r.Seq > math.MaxInt64 {
		return nil
	}
	bkey := []byte(key)
	_, err = call(b, ctx, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, b.exec(ctx, b.n.cancel, bkey, int64(r.Seq), r.At, cdims, camts, b.relaxed, b.lockMS)
	}, func(fb smartratelimit.Backend) (struct{}, error) {
		if c, ok := fb.(smartratelimit.Canceler); ok {
			return struct{}{}, c.Cancel(ctx, key, r, costs)
		}
		return struct{}{}, nil
	})
	return err
}

type acquireArgs struct {
	names, dims, cdims []string
	lims, camts        []float64
	wins               []int64
}

// validLimit checks l, and that its name and dimension can be stored as
// PostgreSQL text (valid UTF-8 without NUL).
func validLimit(l *smartratelimit.Limit) error {
	if err := l.Validate(); err != nil {
		return err
	}
	for _, s := range []string{l.Name, string(l.Dimension)} {
		if !storable(s) {
			return fmt.Errorf("%w: name or dimension %q holds a NUL byte or invalid UTF-8", smartratelimit.ErrInvalidLimit, s)
		}
	}
	return nil
}

// storable reports whether s can be stored as PostgreSQL text: valid
// UTF-8 without NUL.
func storable(s string) bool {
	return strings.IndexByte(s, 0) < 0 && utf8.ValidString(s)
}

// validLimits checks every limit; unique also rejects two limits of the
// same name and dimension.
func validLimits(ls []smartratelimit.Limit, unique bool) error {
	for i := range ls {
		l := &ls[i]
		if err := validLimit(l); err != nil {
			return err
		}
		if unique {
			for _, o := range ls[:i] {
				if o.Same(*l) {
					return fmt.Errorf("%w: two limits named %q of %s", smartratelimit.ErrInvalidLimit, l.Name, l.Dimension.OrRequests())
				}
			}
		}
	}
	return nil
}

// maxBlock bounds a block, keeping the arithmetic far from overflow.
const maxBlock = smartratelimit.MaxWindow

// Observe implements smartratelimit.Backend with one function call that
// merges the quotas into the learned limits (StartWindow and Reconcile of
// smartratelimit.Window, with the send time now - SentAgo) and applies a
// block (Window.Block), on the database clock. Quotas whose limit does not validate are ignored; a key
// learns at most 16 limits.
func (b *Backend) Observe(ctx context.Context, key string, u smartratelimit.Update) error {
	n := len(u.Quotas)
	var (
		names, dims   = make([]string, 0, n), make([]string, 0, n)
		lims, rems    = make([]float64, 0, n), make([]float64, 0, n)
		wins, resets  = make([]int64, 0, n), make([]int64, 0, n)
		hasRem, hasRs = make([]bool, 0, n), make([]bool, 0, n)
	)
	for _, q := range u.Quotas {
		if validLimit(&q.Limit) != nil {
			continue // a limit that cannot be enforced or stored: ignored, as by the memory backend
		}
		rem, hr := q.Remaining, q.HasRemaining && !math.IsNaN(q.Remaining) && !math.IsInf(q.Remaining, 0)
		if !hr {
			rem = 0
		} else if math.IsInf(q.Limit.Limit-rem, 1) {
			// The count overflows to infinity, as in the memory backend;
			// float8 arithmetic fails instead, but not with -Infinity.
			rem = math.Inf(-1)
		}
		reset := int64(0)
		if q.HasReset {
			reset = int64(min(max(q.ResetIn, -maxBlock), maxBlock))
		}
		names, dims = append(names, q.Name), append(dims, string(q.Dimension.OrRequests()))
		lims, wins = append(lims, q.Limit.Limit), append(wins, int64(q.Window))
		rems, hasRem = append(rems, rem), append(hasRem, hr)
		resets, hasRs = append(resets, reset), append(hasRs, q.HasReset)
	}
	block := int64(min(max(u.BlockFor, 0), maxBlock))
	sent := int64(min(u.SentSeq, math.MaxInt64))
	sentAgo := int64(max(u.SentAgo, 0))
	bkey := []byte(key)
	_, err := call(b, ctx, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, b.exec(ctx, b.n.observe, bkey, names, dims, lims, wins, rems, hasRem, resets, hasRs,
			block, sent, sentAgo, b.relaxed, b.lockMS)
	}, func(fb smartratelimit.Backend) (struct{}, error) {
		return struct{}{}, fb.Observe(ctx, key, u)
	})
	return err
}

// Status implements smartratelimit.Backend. Times are on the database
// clock; BlockedUntil is zero unless the key is blocked now.
func (b *Backend) Status(ctx context.Context, key string) (smartratelimit.Status, error) {
	bkey := []byte(key)
	return call(b, ctx, func(ctx context.Context) (smartratelimit.Status, error) {
		var (
			src                         []int16
			names, dims                 []string
			lims, used, prev            []float64
			wins, starts, bits          []int64
			seq, blocked, lastUsed, now int64
		)
		_, err := roundTrip(b, ctx, b.callTimeout, func(ctx context.Context, c *pgxpool.Conn) (struct{}, error) {
			return struct{}{}, c.QueryRow(ctx, b.n.status, bkey).
				Scan(&src, &names, &dims, &lims, &wins, &starts, &used, &prev, &bits, &seq, &blocked, &lastUsed, &now)
		})
		if errors.Is(err, pgx.ErrNoRows) {
			return smartratelimit.Status{}, decisionError{fmt.Errorf("%w: %q", smartratelimit.ErrUnknownKey, key)}
		}
		if err != nil {
			return smartratelimit.Status{}, err
		}
		st := smartratelimit.Status{Key: key, Seq: uint64(seq), LastUsed: time.Unix(0, lastUsed)}
		if blocked > now {
			st.BlockedUntil = time.Unix(0, blocked)
		}
		st.Limits = make([]smartratelimit.LimitStatus, len(names))
		for i := range names {
			l := smartratelimit.Limit{Name: names[i], Dimension: smartratelimit.Dimension(dims[i]), Limit: lims[i], Window: time.Duration(wins[i])}
			w := smartratelimit.Window{Start: starts[i], Used: used[i]}
			if i < len(prev) && i < len(bits) { // else a row of version 5 or earlier: no tail
				b := uint64(bits[i])
				w.Prev = prev[i]
				w.Late, w.Last, w.PrevLate, w.PrevLast = uint16(b), uint16(b>>16), uint16(b>>32), uint16(b>>48)
			}
			rem, res, reset := w.State(l.Limit, int64(l.Window), now)
			st.Limits[i] = smartratelimit.LimitStatus{Limit: l, Source: source(src[i]), Remaining: rem, Reserved: res, ResetAt: time.Unix(0, reset)}
		}
		return st, nil
	}, func(fb smartratelimit.Backend) (smartratelimit.Status, error) {
		st, err := fb.Status(ctx, key)
		st.Degraded = err == nil
		return st, err
	})
}

func source(s int16) smartratelimit.Source {
	switch s {
	case 1:
		return smartratelimit.SourceHeaders
	case 2:
		return smartratelimit.SourceOverride
	}
	return smartratelimit.SourceDefaults
}

// Keys implements smartratelimit.Backend: keys in byte-wise order.
func (b *Backend) Keys(ctx context.Context) ([]string, error) {
	return call(b, ctx, func(ctx context.Context) ([]string, error) {
		return roundTrip(b, ctx, b.callTimeout, func(ctx context.Context, c *pgxpool.Conn) ([]string, error) {
			rows, err := c.Query(ctx, b.n.keys)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			keys := []string{}
			for rows.Next() {
				var k []byte
				if err := rows.Scan(&k); err != nil {
					return nil, err
				}
				keys = append(keys, string(k))
			}
			return keys, rows.Err()
		})
	}, func(fb smartratelimit.Backend) ([]string, error) {
		return fb.Keys(ctx)
	})
}

// SetLimits implements smartratelimit.Backend. The override is applied to
// the fallback too.
func (b *Backend) SetLimits(ctx context.Context, key string, limits []smartratelimit.Limit) error {
	if err := validLimits(limits, true); err != nil {
		return err
	}
	n := len(limits)
	names, dims, lims, wins := make([]string, n), make([]string, n), make([]float64, n), make([]int64, n)
	for i, l := range limits {
		names[i], dims[i], lims[i], wins[i] = l.Name, string(l.Dimension.OrRequests()), l.Limit, int64(l.Window)
	}
	bkey := []byte(key)
	return b.mirror(ctx, func(ctx context.Context) error {
		return b.exec(ctx, b.n.setLimits, bkey, names, dims, lims, wins, b.relaxed, b.lockMS)
	}, func(fb smartratelimit.Backend) error { return fb.SetLimits(ctx, key, limits) })
}

// Clear implements smartratelimit.Backend (and clears the key in the fallback).
func (b *Backend) Clear(ctx context.Context, key string) error {
	bkey := []byte(key)
	return b.mirror(ctx, func(ctx context.Context) error {
		return b.exec(ctx, b.n.clear, bkey)
	}, func(fb smartratelimit.Backend) error { return fb.Clear(ctx, key) })
}

// ClearAll implements smartratelimit.Backend (and clears the fallback).
func (b *Backend) ClearAll(ctx context.Context) error {
	return b.mirror(ctx, func(ctx context.Context) error {
		return b.exec(ctx, b.n.clearAll)
	}, func(fb smartratelimit.Backend) error { return fb.ClearAll(ctx) })
}

// mirror runs a change against the database (or the fallback when
// degraded) and, after a database success, against the fallback too.
func (b *Backend) mirror(ctx context.Context, db func(context.Context) error, fb func(smartratelimit.Backend) error) error {
	var viaDB bool
	_, err := call(b, ctx, func(ctx context.Context) (struct{}, error) {
		err := db(ctx)
		viaDB = err == nil
		return struct{}{}, err
	}, func(f smartratelimit.Backend) (struct{}, error) {
		return struct{}{}, fb(f)
	})
	if err == nil && viaDB && b.fallback != nil {
		_ = fb(b.fallback) // best effort: the fallback only matters while degraded
	}
	return err
}
