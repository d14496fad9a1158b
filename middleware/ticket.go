package middleware

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/go-resty/resty/v2"
)

// ticket is a request's state from its before hook to the end of its
// Execute, reused by each attempt. Only the goroutine running the request's
// Execute touches it (resty runs every hook there).
type ticket struct {
	key      string
	host     string // host:port, for per-host profiles and overrides
	seq      uint64 // the attempt's grant
	sent     int64  // when the attempt was sent (l.now() timeline)
	probe    bool   // the request holds the key's first-contact gate
	known    bool   // the key had a response in this process before the request
	observed bool   // the attempt's response was learned

	buf learnBuf // kept from request to request: learning allocates nothing
}

// reset zeroes t but for its buffers. Field by field: a struct literal
// would be built in a temporary and copied, buffers and all.
func (t *ticket) reset() {
	t.key, t.host = "", ""
	t.seq, t.sent = 0, 0
	t.probe, t.known, t.observed = false, false, false
}

// The ticket table holds the ticket of each request between its before
// hook and the end of its Execute. It is on every request's path, so its
// common case touches little memory and takes no lock: a request's
// pointer picks a shard, and the request claims one of the shard's slots
// with a compare-and-swap; only the goroutine running the request reads
// or writes the slot's ticket until it releases the slot. When a shard's
// slots are all taken (many requests in flight at once), the request's
// ticket goes to the shard's spill map under its lock. Tickets come from
// a pool rather than living in the slots: a P gets back the ticket (and
// buffers) it released last, still in its caches, where a slot picked by
// the request's address would be a cold one.
const (
	ticketShards = 64
	ticketSlots  = 4
)

type ticketShard struct {
	reqs   [ticketSlots]atomic.Pointer[resty.Request]
	tks    [ticketSlots]*ticket // tks[i] is reqs[i]'s; only its request's goroutine reads or writes it
	spillN atomic.Int32         // tickets in spill
	mu     sync.Mutex           // guards spill
	spill  map[*resty.Request]*ticket
}

type ticketTable [ticketShards]ticketShard

// freeTickets recycles tickets with their buffers. It hands each P the
// ticket it released last, still in its caches: one client's requests in
// a row reuse one ticket.
var freeTickets = sync.Pool{New: func() any { return new(ticket) }}

func (tt *ticketTable) shard(r *resty.Request) *ticketShard {
	h := uint64(uintptr(unsafe.Pointer(r))) * 0x9e3779b97f4a7c15 // Fibonacci hashing
	return &tt[h>>(64-6)]
}

// get returns r's ticket, or nil.
func (tt *ticketTable) get(r *resty.Request) *ticket {
	if r == nil {
		return nil
	}
	sh := tt.shard(r)
	for i := range sh.reqs {
		if sh.reqs[i].Load() == r {
			return sh.tks[i]
		}
	}
	if sh.spillN.Load() == 0 {
		return nil
	}
	sh.mu.Lock()
	t := sh.spill[r]
	sh.mu.Unlock()
	return t
}

// open returns r's ticket, creating a zero one for r's first attempt.
func (tt *ticketTable) open(r *resty.Request) *ticket {
	if t := tt.get(r); t != nil {
		return t
	}
	sh := tt.shard(r)
	t := freeTickets.Get().(*ticket)
	for i := range sh.reqs {
		if sh.reqs[i].Load() == nil && sh.reqs[i].CompareAndSwap(nil, r) {
			sh.tks[i] = t
			return t
		}
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.spill == nil {
		sh.spill = map[*resty.Request]*ticket{}
	}
	sh.spill[r] = t
	sh.spillN.Add(1)
	return t
}

// close releases r's ticket; t (from get) is not used after.
func (tt *ticketTable) close(r *resty.Request, t *ticket) {
	sh := tt.shard(r)
	for i := range sh.reqs {
		if sh.reqs[i].Load() == r {
			sh.tks[i] = nil
			sh.reqs[i].Store(nil)
			t.reset() // drops the key's string for the collector
			freeTickets.Put(t)
			return
		}
	}
	sh.mu.Lock()
	_, ok := sh.spill[r]
	if ok {
		delete(sh.spill, r)
		sh.spillN.Add(-1)
	}
	sh.mu.Unlock()
	if ok && t != nil {
		t.reset()
		freeTickets.Put(t)
	}
}

// count returns how many tickets are open (for tests).
func (tt *ticketTable) count() int {
	n := 0
	for i := range tt {
		sh := &tt[i]
		for j := range sh.reqs {
			if sh.reqs[j].Load() != nil {
				n++
			}
		}
		sh.mu.Lock()
		n += len(sh.spill)
		sh.mu.Unlock()
	}
	return n
}
