// Package memory is the embedded, in-process [smartratelimit.Backend]: the
// default for a limiter that does not share its buckets with other
// processes.
//
// Keys are spread over 64 shards, each guarded by its own mutex, so
// goroutines working on different hosts rarely contend. Acquiring a key that
// already exists allocates nothing (but for the first waiters of a key, who
// make the records Cancel uses, reused after them). Keys idle for longer
// than the idle TTL (and neither blocked nor holding future reservations)
// are evicted by a background janitor, so a crawler that touches millions
// of hosts keeps bounded memory. Close stops the janitor.
package memory

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/clock"
)

const shardCount = 64

// maxLearned bounds the limits a key learns from headers, so a hostile
// server cannot grow a key without bound.
const maxLearned = 16

// Backend is the in-memory backend. Create it with [New]; it is safe for
// concurrent use.
type Backend struct {
	// What every call reads comes first, on one cache line.
	closed   atomic.Bool
	seed     maphash.Seed
	clock    clock.Clock
	base     time.Time
	lastDefs atomic.Pointer[defaultSet]

	idleTTL   time.Duration
	log       *slog.Logger
	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}

	shards [shardCount]shard
}

var _ srl.Backend = (*Backend)(nil)

type shard struct {
	mu   sync.Mutex
	keys map[string]*keyState
	_    [48]byte // with the lock and the map: one 64-byte cache line per shard
}

// keyState is one key's buckets. Keys limited only by the defaults carry no
// extra allocation beyond the map entry, this struct and its windows; the
// struct is kept at 48 bytes (a million keys should stay within 256 bytes
// each): the windows of the defaults are held by a pointer to the first,
// their number being that of defs, and the rare block (or records of
// waiters, for Cancel) lives in x.
type keyState struct {
	defs     *defaultSet // the default limits last requested (interned)
	def0     *srl.Window // the first of one window per default limit, in defs' order
	x        *learned    // limits learned from headers and overrides, blocks, waiters' records; usually nil
	seq      uint64
	lastSlot int64 // the latest slot handed out
	lastUsed int64
}

// def returns the windows of the default limits.
func (st *keyState) def() []srl.Window {
	if st.defs == nil || st.def0 == nil {
		return nil
	}
	return unsafe.Slice(st.def0, len(st.defs.limits))
}

// blocked returns when the key's block ends (0: never blocked).
func (st *keyState) blocked() int64 {
	if st.x == nil {
		return 0
	}
	return st.x.blocked
}

// defaultSet is an interned copy of a request's default limits, shared by
// every key acquired with the same defaults.
type defaultSet struct{ limits []srl.Limit }

type learned struct {
	headers  []limitState
	override []limitState
	blocked  int64 // blocked until (0: never blocked)
	undo     *undo // how to take back the grants still to come; nil until a waiter
}

// undo keeps, for every grant of a key that had to wait and whose slot is
// still to come (oldest first), the key's windows as they were before it,
// so that Cancel puts them back: Window.Untake alone cannot, since a grant
// paced behind another limit, a block or the units of the window before
// counts the slots of its window before it as spent and may carry into the
// next window, and the key's latest slot before it is not in the windows.
// Each caller that gave up then pushed the next one later, and waiters
// giving up newest first were not all taken back. A key's undo is made by
// its first waiter and reused; it holds what its sleeping waiters reserved.
type undo struct {
	n       int          // windows per grant
	head    int          // grants before head have had their slot
	grants  []undoGrant  // from head on: the grants still to come, oldest first
	windows []srl.Window // n per grant, in grants' order
}

// maxUndo bounds the grants a key's undo keeps (a caller of the Backend
// API may reserve without waiting): waiters give up newest first.
const maxUndo = 1024

type undoGrant struct {
	seq               uint64 // the grant's Seq
	now, at, lastSlot int64  // its Acquire's instant, its slot, the key's latest slot before it
}

type limitState struct {
	srl.Limit
	w srl.Window
}

// Option configures a Backend.
type Option func(*Backend) error

// WithClock sets the clock (default: the real clock). Tests use a fake one.
func WithClock(c clock.Clock) Option {
	return func(b *Backend) error {
		if c == nil {
			return fmt.Errorf("%w: nil clock", srl.ErrInvalidLimit)
		}
		b.clock = c
		return nil
	}
}

// WithIdleTTL sets how long a key may stay unused before it is evicted
// (default 10 minutes). Zero disables eviction.
func WithIdleTTL(d time.Duration) Option {
	return func(b *Backend) error {
		if d < 0 {
			return fmt.Errorf("%w: negative idle TTL %v", srl.ErrInvalidLimit, d)
		}
		b.idleTTL = d
		return nil
	}
}

// WithLogger sets the logger for evictions (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(b *Backend) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", srl.ErrInvalidLimit)
		}
		b.log = l
		return nil
	}
}

// DefaultIdleTTL is the idle time after which a key is evicted.
const DefaultIdleTTL = 10 * time.Minute

// New returns an in-memory backend.
func New(opts ...Option) (*Backend, error) {
	b := &Backend{
		clock:   clock.Real,
		idleTTL: DefaultIdleTTL,
		seed:    maphash.MakeSeed(),
		log:     slog.New(slog.DiscardHandler),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	for _, o := range opts {
		if err := o(b); err != nil {
			return nil, err
		}
	}
	b.base = b.clock.Now()
	for i := range b.shards {
		b.shards[i].keys = make(map[string]*keyState)
	}
	if b.idleTTL > 0 {
		go b.janitor()
	} else {
		close(b.done)
	}
	return b, nil
}

// now returns the backend's time line: nanoseconds since New on the
// clock's monotonic reading.
func (b *Backend) now() int64 { return int64(b.clock.Since(b.base)) + 1 }

func (b *Backend) toTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return b.base.Add(time.Duration(ns - 1))
}

// entry returns key's state, creating it; the caller holds sh.mu.
func (sh *shard) entry(key string) *keyState {
	st := sh.keys[key]
	if st == nil {
		st = &keyState{}
		sh.keys[key] = st
	}
	return st
}

func (b *Backend) shard(key string) *shard {
	return &b.shards[maphash.String(b.seed, key)%shardCount]
}

// active calls f on every limit the key enforces now: overrides and learned
// limits when it has any, else the defaults.
func (st *keyState) active(f func(l *srl.Limit, w *srl.Window, src srl.Source) bool) {
	if st.x != nil && len(st.x.headers)+len(st.x.override) > 0 {
		for i := range st.x.override {
			if !f(&st.x.override[i].Limit, &st.x.override[i].w, srl.SourceOverride) {
				return
			}
		}
		for i := range st.x.headers {
			if !f(&st.x.headers[i].Limit, &st.x.headers[i].w, srl.SourceHeaders) {
				return
			}
		}
		return
	}
	def := st.def()
	for i := range def {
		if !f(&st.defs.limits[i], &def[i], srl.SourceDefaults) {
			return
		}
	}
}

// internDefaults returns the interned copy of a request's default limits,
// validating them when they are not the ones interned last (the common
// case is one limiter's defaults, compared and not validated again).
func (b *Backend) internDefaults(defaults []srl.Limit) (*defaultSet, error) {
	if ds := b.lastDefs.Load(); ds != nil && slices.Equal(ds.limits, defaults) {
		return ds, nil
	}
	for i := range defaults {
		if err := defaults[i].Validate(); err != nil {
			return nil, err
		}
	}
	ds := &defaultSet{limits: slices.Clone(defaults)}
	b.lastDefs.Store(ds)
	return ds, nil
}

// syncDefaults points st at ds, the interned default limits of a request;
// when they changed, windows of defaults with the same name and dimension
// carry over and new ones start now.
func (b *Backend) syncDefaults(st *keyState, ds *defaultSet, now int64) {
	if st.defs == ds || st.defs != nil && slices.Equal(st.defs.limits, ds.limits) {
		return
	}
	defaults := ds.limits
	// Keep the window of every default that keeps its name and dimension,
	// so limiters with different defaults sharing a backend still limit.
	def := make([]srl.Window, len(defaults))
	oldDef := st.def()
	for i, d := range defaults {
		def[i].Start = now
		if st.defs != nil {
			for j, old := range st.defs.limits {
				if old.Same(d) {
					def[i] = oldDef[j]
					break
				}
			}
		}
	}
	st.defs, st.def0 = ds, nil
	if len(def) > 0 {
		st.def0 = &def[0]
	}
}

// Acquire implements [srl.Backend].
func (b *Backend) Acquire(ctx context.Context, req srl.AcquireRequest) (srl.Reservation, error) {
	if b.closed.Load() {
		return srl.Reservation{}, srl.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return srl.Reservation{}, err
	}
	if err := validCosts(req.Costs); err != nil {
		return srl.Reservation{}, err
	}
	ds, err := b.internDefaults(req.Defaults)
	if err != nil {
		return srl.Reservation{}, err
	}
	sh := b.shard(req.Key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := b.now()
	st := sh.entry(req.Key)
	b.syncDefaults(st, ds, now)
	st.lastUsed = now

	tmin := max(now, st.blocked(), st.lastSlot)
	at := tmin
	var binding *srl.Limit
	var costErr error
	st.active(func(l *srl.Limit, w *srl.Window, _ srl.Source) bool {
		cost := srl.CostOf(l, req.Costs)
		e := w.Earliest(l.Limit, int64(l.Window), now, tmin, cost)
		if e < 0 {
			costErr = fmt.Errorf("%w: %s costs %g, %s", srl.ErrCostExceedsLimit, req.Key, cost, l)
			return false
		}
		if e > at {
			at, binding = e, l
		}
		return true
	})
	if costErr != nil {
		return srl.Reservation{}, costErr
	}
	res := srl.Reservation{Wait: time.Duration(at - now)}
	if binding != nil {
		res.Limit = *binding
	} else if blocked := st.blocked(); blocked > now && at == blocked {
		res.Blocked = true
	}
	if res.Wait > max(req.MaxWait, 0) { // a negative max wait is fail fast
		return res, nil
	}
	if at > now {
		st.keepUndo(now, at)
	}
	st.active(func(l *srl.Limit, w *srl.Window, _ srl.Source) bool {
		w.Take(l.Limit, int64(l.Window), now, at, srl.CostOf(l, req.Costs))
		return true
	})
	st.seq++
	st.lastSlot = at
	res.OK = true
	res.Seq = st.seq
	res.At = at
	return res, nil
}

// validCosts checks that every cost is a non-negative number, as the
// PostgreSQL backend does: a negative cost would give units back.
func validCosts(costs []srl.Cost) error {
	for i := range costs {
		if a := costs[i].Amount; !(a >= 0) || math.IsInf(a, 1) {
			return fmt.Errorf("%w: cost %v of %s must be a non-negative number",
				srl.ErrInvalidLimit, a, costs[i].Dimension.OrRequests())
		}
	}
	return nil
}

// keepUndo saves the key's windows before the grant at slot at that
// Acquire at instant now is about to make for a waiter.
func (st *keyState) keepUndo(now, at int64) {
	if st.x == nil {
		st.x = &learned{}
	}
	if st.x.undo == nil {
		st.x.undo = &undo{}
	}
	u := st.x.undo
	n := 0
	st.active(func(*srl.Limit, *srl.Window, srl.Source) bool { n++; return true })
	k := len(u.grants)
	if k == u.head || u.n != n || u.grants[k-1].seq != st.seq {
		// Nothing to come, other limits, or a grant without a record since
		// (one that did not wait, or given back without one): start over.
		k, u.head, u.n = 0, 0, n
	}
	for u.head < k && (u.grants[u.head].at <= now || k-u.head >= maxUndo) {
		u.head++ // its slot has come, or too many are to come: the oldest is taken back by Untake
	}
	if u.head == k {
		k, u.head = 0, 0
	} else if u.head > k/2 {
		copy(u.grants, u.grants[u.head:k])
		copy(u.windows, u.windows[u.head*n:k*n])
		k, u.head = k-u.head, 0
	}
	u.grants = append(u.grants[:k], undoGrant{seq: st.seq + 1, now: now, at: at, lastSlot: st.lastSlot})
	u.windows = u.windows[:k*n]
	st.active(func(_ *srl.Limit, w *srl.Window, _ srl.Source) bool {
		u.windows = append(u.windows, *w)
		return true
	})
}

// undone takes back r, the key's latest grant, by putting back the windows
// saved before it, when nothing changed them since (each is what Take made
// of its saved state: an update or other limits since fall back to
// Untake), and reports whether it did.
func (st *keyState) undone(r srl.Reservation, costs []srl.Cost) bool {
	if st.x == nil || st.x.undo == nil {
		return false
	}
	u := st.x.undo
	k := len(u.grants)
	if k == u.head || u.grants[k-1].seq != r.Seq || u.grants[k-1].at != r.At {
		u.grants, u.head = u.grants[:0], 0
		return false
	}
	g, saved := u.grants[k-1], u.windows[(k-1)*u.n:k*u.n]
	i, same := 0, true
	st.active(func(l *srl.Limit, w *srl.Window, _ srl.Source) bool {
		if i == len(saved) {
			same = false
			return false
		}
		taken := saved[i]
		taken.Take(l.Limit, int64(l.Window), g.now, g.at, srl.CostOf(l, costs))
		same = sameWindow(&taken, w)
		i++
		return same
	})
	if !same || i != len(saved) {
		u.grants, u.head = u.grants[:0], 0
		return false
	}
	i = 0
	st.active(func(_ *srl.Limit, w *srl.Window, _ srl.Source) bool {
		*w = saved[i]
		i++
		return true
	})
	st.lastSlot = g.lastSlot
	u.grants, u.windows = u.grants[:k-1], u.windows[:(k-1)*u.n]
	return true
}

// sameWindow reports whether a and b are the same state, bit for bit
// (an aligned window's Prev is NaN).
func sameWindow(a, b *srl.Window) bool {
	return a.Start == b.Start && math.Float64bits(a.Used) == math.Float64bits(b.Used) &&
		math.Float64bits(a.Prev) == math.Float64bits(b.Prev) && a.Late == b.Late && a.Last == b.Last &&
		a.PrevLate == b.PrevLate && a.PrevLast == b.PrevLast
}

var _ srl.Canceler = (*Backend)(nil)

// Cancel implements [srl.Canceler]. A reservation is taken back only while
// it is the key's latest grant (no grant since): its units leave the
// windows and the FIFO position goes back to the slot before it, so the
// next caller gets the slot it had. Waiters that give up newest first are
// all taken back; an older reservation stays spent, which is safe. The
// windows of a waiter's grant are put back as they were before it, exactly,
// unless an update changed them since: then its units are taken out
// (Window.Untake), which may leave the slots before it spent.
func (b *Backend) Cancel(ctx context.Context, key string, r srl.Reservation, costs []srl.Cost) error {
	if b.closed.Load() {
		return srl.ErrClosed
	}
	if err := validCosts(costs); err != nil {
		return err
	}
	if !r.OK || r.At == 0 {
		return nil
	}
	sh := b.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := sh.keys[key]
	if st == nil || st.seq != r.Seq || st.lastSlot != r.At {
		return nil
	}
	if st.undone(r, costs) {
		st.seq--
		return nil
	}
	now := b.now()
	last := int64(0)
	st.active(func(l *srl.Limit, w *srl.Window, _ srl.Source) bool {
		w.Untake(l.Limit, int64(l.Window), now, srl.CostOf(l, costs))
		last = max(last, w.LastSlot(l.Limit, int64(l.Window), now))
		return true
	})
	st.seq--
	st.lastSlot = min(st.lastSlot, max(last, now))
	return nil
}

// Observe implements [srl.Backend].
func (b *Backend) Observe(ctx context.Context, key string, u srl.Update) error {
	return b.observe(ctx, key, u, time.Time{})
}

// ObserveAt is [Backend.Observe] with u's durations (each quota's ResetIn,
// BlockFor, SentAgo) counted from at instead of from the call: for
// callers that already hold a reading of the backend's clock (the clock
// given by [WithClock]) from when the response arrived, as the middleware
// does, it spares a read of the clock. at must not be later than that
// clock's present; it is not checked. When the key was used after at, the
// update is applied at that last use, its durations shortened by the
// difference, so the key's time line never runs backwards and every time
// u gives stays where at put it; a quota whose window ended in between is
// taken as followed by windows of its length, and its remaining count,
// which was the old window's, is dropped. A zero at reads the clock.
func (b *Backend) ObserveAt(ctx context.Context, key string, u srl.Update, at time.Time) error {
	return b.observe(ctx, key, u, at)
}

func (b *Backend) observe(ctx context.Context, key string, u srl.Update, at time.Time) error {
	if b.closed.Load() {
		return srl.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := b.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := sh.entry(key)
	var now, shift int64 // shift: how far past at the update is applied
	if at.IsZero() {
		now = b.now()
	} else {
		now = max(int64(at.Sub(b.base))+1, 1)
		if st.lastUsed > now {
			shift = st.lastUsed - now
			now = st.lastUsed
		}
	}
	st.lastUsed = now
	var since float64
	if u.SentSeq > 0 && u.SentSeq <= st.seq {
		since = float64(st.seq - u.SentSeq)
	}
	var sentAt int64
	if u.SentAgo > 0 {
		// A request sent before the time line began is dated at its
		// first instant (1; 0 would mean unknown).
		sentAt = max(now-shift-int64(u.SentAgo), 1)
	}
	// Whether the defaults are in force is decided once for the whole
	// update: every limit it teaches may take over a default's window.
	defaultsActive := st.x == nil || len(st.x.headers)+len(st.x.override) == 0
	for i := range u.Quotas {
		q := &u.Quotas[i]
		if q.Limit.Validate() != nil {
			continue
		}
		if q.HasReset && (q.ResetIn > srl.MaxWindow || q.ResetIn < -srl.MaxWindow) ||
			q.HasRemaining && (math.IsNaN(q.Remaining) || math.IsInf(q.Remaining, 0)) {
			q = boundQuota(q)
		}
		if shift > 0 && q.HasReset {
			q = shiftReset(q, time.Duration(shift))
		}
		var ls *limitState
		if st.x != nil {
			ls = st.x.find(q.Limit)
		}
		if ls == nil {
			if st.x != nil && len(st.x.headers) >= maxLearned {
				continue
			}
			w, inherited := st.inherit(q, now, sentAt, defaultsActive)
			if !inherited && q.Dimension.OrRequests() == srl.DimRequests {
				w.Pending(q.Limit.Limit, int64(q.Window), now, st.lastSlot, since)
			}
			if st.x == nil {
				st.x = &learned{}
			}
			st.x.headers = append(st.x.headers, limitState{Limit: q.Limit, w: w})
			ls = &st.x.headers[len(st.x.headers)-1]
		}
		window := max(ls.Window, q.Window) // a window is never shorter than a reset once announced
		ls.w.Relimit(ls.Limit.Limit, q.Limit.Limit)
		ls.Limit = q.Limit
		ls.Window = window
		g := 0.0
		if ls.Dimension.OrRequests() == srl.DimRequests {
			g = since
		}
		win := int64(ls.Window)
		before := ls.w
		ls.w.Reconcile(ls.Limit.Limit, win, now, q, g, sentAt)
		if p := ls.w.Period(win); q.HasReset && st.lastSlot > now && st.lastSlot >= srl.StartAt(ls.w.Start, p, now)+p &&
			(ls.w.Aligned() != before.Aligned() || (ls.w.Start-before.Start)%p != 0) {
			// Aligned with a server window that ends before a slot already
			// handed out: the units of the slots after its end would count
			// in no window (or in the excess carried past it, fewer), and
			// the next one would take the limit on top of them. The report
			// lowers the count of the current window, which keeps its
			// phase until those slots have come.
			ls.w = before
			r := *q
			r.HasReset = false
			ls.w.Reconcile(ls.Limit.Limit, win, now, &r, g, sentAt)
		}
	}
	if block := min(u.BlockFor, srl.MaxWindow); block > 0 && int64(block) > shift {
		until := now - shift + int64(block)
		if st.x == nil {
			st.x = &learned{}
		}
		if until > st.x.blocked {
			st.x.blocked = until
		}
		def := st.def()
		for i := range def {
			def[i].Block(until, st.lastSlot)
		}
		if st.x != nil {
			for i := range st.x.headers {
				st.x.headers[i].w.Block(until, st.lastSlot)
			}
			for i := range st.x.override {
				st.x.override[i].w.Block(until, st.lastSlot)
			}
		}
	}
	return nil
}

// boundQuota returns a copy of q (the caller's storage is not written)
// whose values the arithmetic can hold, as the PostgreSQL backend reads
// them: a reset at most MaxWindow away, a remaining count that is not a
// number (NaN, infinite) unknown. Such values never come from the parser.
func boundQuota(q *srl.QuotaUpdate) *srl.QuotaUpdate {
	s := *q
	s.ResetIn = min(max(s.ResetIn, -srl.MaxWindow), srl.MaxWindow)
	if math.IsNaN(s.Remaining) || math.IsInf(s.Remaining, 0) {
		s.HasRemaining, s.Remaining = false, 0
	}
	return &s
}

// shiftReset returns a copy of q (the caller's storage is not written)
// with its reset counted from shift later. A window that ended before then
// has been followed by others of its length: the reset is the end of the
// one in progress, and what remained of the old one says nothing of it.
func shiftReset(q *srl.QuotaUpdate, shift time.Duration) *srl.QuotaUpdate {
	s := *q
	if over := shift - q.ResetIn; over <= 0 {
		s.ResetIn = -over
	} else {
		w := q.Limit.Window // positive: q was validated
		s.ResetIn = w - over%w
		s.HasRemaining, s.Remaining = false, 0
	}
	return &s
}

// inherit returns the window a newly learned limit starts with. While the
// defaults are in force, a learned limit with the window length and
// dimension of a default takes over that default's window, so the slots
// already reserved under the defaults stay counted (Reconcile then aligns
// it with the server's when it may); otherwise it starts on the server's
// window (StartWindow; the caller counts the grants the server may not
// have counted yet in it: Window.Pending). defaultsActive is whether the
// defaults were in force when the update began.
func (st *keyState) inherit(q *srl.QuotaUpdate, now, sentAt int64, defaultsActive bool) (w srl.Window, inherited bool) {
	if defaultsActive && st.defs != nil {
		for i, d := range st.defs.limits {
			if d.Window == q.Window && d.Dimension.OrRequests() == q.Dimension.OrRequests() {
				w := st.def()[i]
				w.Relimit(d.Limit, q.Limit.Limit)
				return w, true
			}
		}
	}
	return srl.StartWindow(int64(q.Window), now, sentAt, q), false
}

func (x *learned) find(l srl.Limit) *limitState {
	for i := range x.headers {
		if x.headers[i].Same(l) {
			return &x.headers[i]
		}
	}
	return nil
}

// Status implements [srl.Backend]. A key that has only seen responses
// without limits, and no request, reports no limits.
func (b *Backend) Status(ctx context.Context, key string) (srl.Status, error) {
	if b.closed.Load() {
		return srl.Status{}, srl.ErrClosed
	}
	sh := b.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := sh.keys[key]
	if st == nil {
		return srl.Status{}, fmt.Errorf("%w: %q", srl.ErrUnknownKey, key)
	}
	now := b.now()
	s := srl.Status{Key: key, Seq: st.seq, LastUsed: b.toTime(st.lastUsed)}
	if blocked := st.blocked(); blocked > now {
		s.BlockedUntil = b.toTime(blocked)
	}
	st.active(func(l *srl.Limit, w *srl.Window, src srl.Source) bool {
		rem, res, reset := w.State(l.Limit, int64(l.Window), now)
		s.Limits = append(s.Limits, srl.LimitStatus{Limit: *l, Source: src, Remaining: rem, Reserved: res, ResetAt: b.toTime(reset)})
		return true
	})
	return s, nil
}

// Keys implements [srl.Backend].
func (b *Backend) Keys(ctx context.Context) ([]string, error) {
	if b.closed.Load() {
		return nil, srl.ErrClosed
	}
	var keys []string
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		for k := range sh.keys {
			keys = append(keys, k)
		}
		sh.mu.Unlock()
	}
	slices.Sort(keys)
	return keys, nil
}

// SetLimits implements [srl.Backend].
func (b *Backend) SetLimits(ctx context.Context, key string, limits []srl.Limit) error {
	if b.closed.Load() {
		return srl.ErrClosed
	}
	for i := range limits {
		if err := limits[i].Validate(); err != nil {
			return err
		}
	}
	sh := b.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if len(limits) == 0 && sh.keys[key] == nil {
		return nil // nothing to remove from a key never seen (as PostgreSQL: no row is made)
	}
	now := b.now()
	st := sh.entry(key)
	st.lastUsed = now
	if st.x == nil {
		st.x = &learned{}
	}
	// An override keeps the window of an override or default of the same
	// name and dimension (as the PostgreSQL backend does), so setting the
	// same limits again changes nothing.
	var over []limitState
	for _, l := range limits {
		w := srl.Window{Start: now}
		found := false
		for _, o := range st.x.override {
			if o.Same(l) {
				w, found = o.w, true
				break
			}
		}
		if !found && len(st.x.headers)+len(st.x.override) == 0 && st.defs != nil {
			def := st.def()
			for i, d := range st.defs.limits {
				if d.Same(l) {
					w = def[i]
					break
				}
			}
		}
		over = append(over, limitState{Limit: l, w: w})
	}
	st.x.override = over
	return nil
}

// Clear implements [srl.Backend].
func (b *Backend) Clear(ctx context.Context, key string) error {
	if b.closed.Load() {
		return srl.ErrClosed
	}
	sh := b.shard(key)
	sh.mu.Lock()
	delete(sh.keys, key)
	sh.mu.Unlock()
	return nil
}

// ClearAll implements [srl.Backend].
func (b *Backend) ClearAll(ctx context.Context) error {
	if b.closed.Load() {
		return srl.ErrClosed
	}
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		clear(sh.keys)
		sh.mu.Unlock()
	}
	return nil
}

// Len returns the number of tracked keys.
func (b *Backend) Len() int {
	n := 0
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		n += len(sh.keys)
		sh.mu.Unlock()
	}
	return n
}

// EvictIdle removes the keys idle for longer than the idle TTL that can be
// forgotten without changing a decision: not blocked, no reservation to
// come, no override (only SetLimits or Clear remove those) and every window
// over — a daily quota the server reported exhausted is kept until its day
// ends. It returns how many it removed. The janitor calls it periodically; tests call it directly.
func (b *Backend) EvictIdle() int {
	if b.idleTTL <= 0 {
		return 0
	}
	now := b.now()
	cutoff := now - int64(b.idleTTL)
	n := 0
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		for k, st := range sh.keys {
			if st.lastUsed < cutoff && st.forgettable(now) {
				delete(sh.keys, k)
				n++
			}
		}
		sh.mu.Unlock()
	}
	if n > 0 {
		b.log.Debug("smartratelimit: evicted idle keys", "count", n)
	}
	return n
}

// forgettable reports whether forgetting st at instant now changes nothing:
// a new key would start in the same state.
func (st *keyState) forgettable(now int64) bool {
	if st.blocked() > now || st.lastSlot > now || (st.x != nil && len(st.x.override) > 0) {
		return false
	}
	over := true
	st.active(func(l *srl.Limit, w *srl.Window, _ srl.Source) bool {
		over = w.Idle(l.Limit, int64(l.Window), now)
		return over
	})
	return over
}

func (b *Backend) janitor() {
	defer close(b.done)
	every := b.idleTTL / 2
	if every < time.Second {
		every = time.Second
	}
	for {
		t := b.clock.NewTimer(every)
		select {
		case <-b.stop:
			t.Stop()
			return
		case <-t.C():
			b.EvictIdle()
		}
	}
}

// Close stops the janitor and makes later calls fail with ErrClosed.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		close(b.stop)
		<-b.done
		for i := range b.shards {
			sh := &b.shards[i]
			sh.mu.Lock()
			clear(sh.keys)
			sh.mu.Unlock()
		}
	})
	return nil
}
