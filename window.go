package smartratelimit

import (
	"math"
	"time"
)

// Window is the state of one limit's fixed-window bucket on a backend's own
// time line (nanoseconds from any origin). It holds only the latest window
// that has grants and the units granted in it: reservations are handed out
// in time order, so every earlier window is either over or full. The zero
// Window starts its first window at instant 0; backends start a new limit
// with Window{Start: now}.
//
// A window is aligned when its phase is the server's: a limit learned with
// a reset ends its windows when the server's end, so the server can count
// no more than the limit in any of its windows. An aligned window lasts
// exactly the server's window, and its end is never before the server's:
// it is the latest end the server's reports allow, at most Uncertainty
// after the server's. The units it granted within that uncertainty (plus
// the Span's margin for late timers) of its end may fall in the server's
// next window, so they count against the next local window too.
//
// The phase of every other limit — defaults, overrides, limits learned
// without a reset or from reports too imprecise to align with — is the
// limiter's own, and the server's windows may start anywhere in it. Those
// unaligned windows last the limit's Span and enforce the limit over any
// interval of a Span's length, not only within each window: the units of
// the window before (Prev, PrevLate) that are still within a Span of a
// new grant count against it, so a burst at the end of one window is not
// followed by another at the start of the next. (This holds exactly for
// whole-unit costs; a fractional cost may add less than one unit.)
//
// The arithmetic is pure and allocation-free; a backend guards it with its
// own lock (memory) or runs the same steps in one SQL statement (postgres).
// Window is 32 bytes: backends keep one per limit of every key. Its
// methods take the limit's window length (Limit.Window in nanoseconds).
type Window struct {
	// Start is the start of the latest window holding grants.
	Start int64
	// Used is the number of units granted in that window.
	Used float64
	// Prev is the number of units granted in the window just before
	// Start (0 when that window was not the one before). An aligned
	// window stores it as -1 - units (so it is negative); NaN, as
	// written by earlier versions, is an aligned window with none.
	Prev float64
	// Late is how far the window's pacing grid (slot j at Start +
	// j*window/limit) runs past its units: each grant moves the grid's end
	// to the larger of that end and the grant's own position on the grid,
	// plus its cost; Late is that end less Used, as a fraction of the limit
	// in 65535ths, rounded up (it never exceeds the limit). Of the window's
	// whole units, at most ceil(Used + late - (t-Start)*limit/window) - 1
	// were granted after instant t.
	Late uint16
	// Last is when the window's latest grant went, as a fraction of the
	// window after Start in 65535ths, rounded up: no unit of the window
	// was granted after it.
	Last uint16
	// PrevLate and PrevLast are Late and Last of the window before.
	PrevLate, PrevLast uint16
}

// fixed is the scale of Late and Last.
const fixed = 65535

// packFrac returns part/whole in 65535ths, rounded up and clamped.
func packFrac(part, whole float64) uint16 {
	if !(part > 0) || !(whole > 0) {
		return 0
	}
	v := part / whole * fixed
	if !(v < fixed) {
		return fixed
	}
	q := uint16(v) // v's ceiling, as min(ceil(v), fixed) in SQL
	if float64(q) < v {
		q++
	}
	return q
}

// unpackFrac returns q 65535ths of whole.
func unpackFrac(q uint16, whole float64) float64 { return float64(q) / fixed * whole }

// lastOffset returns the offset in a window of a Last (rounded up).
func lastOffset(q uint16, window int64) int64 {
	return int64(math.Ceil(unpackFrac(q, float64(window))))
}

// Aligned reports whether the window's phase is the server's.
func (w Window) Aligned() bool { return !(w.Prev >= 0) } // negative or NaN

// prev returns the units of the window before.
func (w Window) prev() float64 {
	switch {
	case w.Prev >= 0:
		return w.Prev
	case w.Prev < 0:
		return -1 - w.Prev
	}
	return 0 // NaN: aligned, none
}

// setPrev stores the units of the window before, keeping the alignment.
func (w *Window) setPrev(units float64) {
	if w.Aligned() {
		w.Prev = -1 - units
	} else {
		w.Prev = units
	}
}

// spanOf is Limit.Span of a window of window nanoseconds.
func spanOf(window int64) int64 {
	return window + min(int64(SpanMargin)+window/1000, window/10)
}

// Period returns how long each of w's windows lasts, for a limit of window
// nanoseconds: the window when aligned, else the limit's Span.
func (w Window) Period(window int64) int64 {
	if w.Aligned() {
		return window
	}
	return spanOf(window)
}

// tail is what a window knows of the units of the window before it: how
// many, how far their grid runs past them (late, in units) and the offset
// of the latest in that window (last). A unit of the window before counts
// against a grant at offset o when granted after offset max(o-lag, floor)
// of the window before: unaligned windows count those within a window's
// length (lag and floor 0); aligned ones those within a window and the
// Span's margin (lag), and only those of the last Uncertainty and margin
// of the window before (floor).
type tail struct {
	units, late float64
	last        int64
	lag, floor  int64
}

// tailOf returns the tail of the window k windows after w's latest: the
// latest window's own units (used, with Late and Last q) for the next one,
// w's for w, none further on. p is w's Period.
func (w Window) tailOf(k int64, used float64, late, last uint16, limit float64, window, p int64) tail {
	var t tail
	switch {
	case k == 0 && w.prev() > 0:
		t = tail{units: w.prev(), late: unpackFrac(w.PrevLate, limit), last: lastOffset(w.PrevLast, p)}
	case k == 1 && used > 0:
		t = tail{units: used, late: unpackFrac(late, limit), last: lastOffset(last, p)}
	default:
		return tail{} // none: its count is 0, as that of a tail of no units
	}
	if w.Aligned() {
		t.lag = spanOf(window) - window
		t.floor = window - Uncertainty(window) - t.lag
	}
	return t
}

// count bounds the units of the window before that count against a grant
// at offset o of a window of p.
func (t tail) count(limit float64, p, o int64) float64 {
	if !(t.units > 0) {
		return 0
	}
	if o = max(o-t.lag, t.floor); o >= t.last {
		return 0
	}
	// The units after an instant are fewer than the grid's end minus that
	// instant's position: with whole units, at most the ceiling less one.
	n := math.Ceil(t.units+t.late-float64(o)/float64(p)*limit) - 1
	return math.Max(0, math.Min(t.units, n))
}

// wait returns the offset from a window's start from which the units of
// the window before leave room for left more units, or p when they leave
// none in the window.
func (t tail) wait(left, limit float64, p int64) int64 {
	m := math.Floor(left + eps) // the tail may hold at most m units
	if !(t.units > 0) || t.units <= m+eps {
		return 0
	}
	if m < 0 {
		return p
	}
	o := math.Ceil((t.units + t.late - m - 1) * float64(p) / limit)
	o = math.Min(o, float64(t.last)) // none is left after the latest
	if o <= float64(t.floor) {
		return 0 // the units after the floor leave room already
	}
	if o += float64(t.lag); !(o > 0) {
		return 0
	}
	return int64(math.Min(o, float64(p)))
}

// ResetSlack is how much later than its report says a server's window may
// end: servers send resets in whole seconds, rounded either way, counted
// from a Date header of one-second precision.
const ResetSlack = time.Second

// Uncertainty is how much later than the server's an aligned window may
// end: two ResetSlacks (a report's rounding either way) plus a twentieth
// of the window for the round trip, at most the window. A report whose
// own uncertainty (its round trip plus both slacks) is larger aligns no
// window: a window of two seconds or less is never aligned.
func Uncertainty(window int64) int64 {
	return min(window, 2*int64(ResetSlack)+window/20)
}

// serverEnd returns the bounds of the end of the server's window a report
// at instant now speaks of. The server counted the request between its
// send time (now when unknown) and now, in a window ending after that and
// within a window of it, its reset (rounded by up to ResetSlack) later:
// hi is the latest end that allows, lo the earliest. ok reports whether
// they are close enough to align a window with.
func serverEnd(window, now, sentAt int64, resetIn time.Duration) (lo, hi int64, ok bool) {
	sent := now
	if sentAt > 0 && sentAt < now {
		sent = sentAt
	}
	hi = min(now+int64(resetIn)+int64(ResetSlack), now+window)
	lo = max(sent+int64(resetIn)-int64(ResetSlack), sent)
	return lo, hi, lo <= hi && hi-lo <= Uncertainty(window)
}

// StartWindow returns the window of a limit first learned from a server's
// report at instant now about a request sent at sentAt (0: unknown): one
// ending at the latest end the report allows (aligned), or, without a
// reset precise enough, one starting when the request was sent. Apply the
// report with Reconcile next.
func StartWindow(window, now, sentAt int64, u *QuotaUpdate) Window {
	if u.HasReset && window > 0 {
		if _, hi, ok := serverEnd(window, now, sentAt, u.ResetIn); ok {
			return Window{Start: hi - window, Prev: -1}
		}
	}
	if sentAt > 0 && sentAt < now {
		return Window{Start: sentAt}
	}
	return Window{Start: now}
}

// Pending counts in a window just started (StartWindow) the units granted
// before it that the server may not have counted yet: those granted after
// the reported request, sent since or still to be sent, the latest at
// instant latest. At most a limit's worth (more would have drawn the
// server's 429s already), as granted at the later of now and latest, in
// the window holding it (a slot booked past the window's end: every
// grant to come goes after it, so the windows before are full to them).
// Without them the window's first report would lower nothing by them, and
// slots booked under other limits (defaults of another window length)
// would go on top of the server's count.
func (w *Window) Pending(limit float64, window, now, latest int64, units float64) {
	if units = math.Min(units, limit); !(units > 0) || window <= 0 {
		return
	}
	p := w.Period(window)
	at := max(now, latest)
	w.advance(p, at)
	pos := float64(min(max(at-w.Start, 0), p))
	grid := math.Max(w.Used+unpackFrac(w.Late, limit), pos/float64(p)*limit) + units
	w.Used += units
	w.Late = packFrac(grid-w.Used, limit)
	w.Last = max(w.Last, packFrac(pos, float64(p)))
	w.carry(limit, p)
}

// eps absorbs float rounding when comparing unit counts.
const eps = 1e-9

// fits reports whether cost more units fit in a window holding used of limit.
// A zero cost fits while anything is left.
func fits(used, cost, limit float64) bool {
	if cost <= 0 {
		return used < limit-eps
	}
	return used+cost <= limit+eps
}

// Earliest returns the earliest instant at or after tmin (and now) at which
// cost units fit under limit units per window ns, without changing w, or -1
// when cost exceeds a whole window. In the current window a request goes at
// once; in a future window slot j lands at start + j*period/limit, so
// waiters are paced rather than released together. A future window whose
// pacing lags behind tmin (another limit, a block or earlier waiters made
// the request later) counts the slots before tmin as spent, so the requests
// after it are paced too instead of bursting at tmin. A request also waits
// until the units of the window before that count against it leave room.
func (w Window) Earliest(limit float64, window, now, tmin int64, cost float64) int64 {
	if cost > limit+eps || window <= 0 || !(limit > 0) {
		return -1
	}
	p := w.Period(window)
	if tmin < now {
		tmin = now
	}
	start, used, late, last := w.Start, w.Used, w.Late, w.Last
	tl := w.tailOf(0, 0, 0, 0, limit, window, p)
	if tmin >= start+p {
		k := (tmin - start) / p
		tl = w.tailOf(k, used, late, last, limit, window, p)
		start, used, late, last = start+k*p, 0, 0, 0
	}
	for fresh := false; ; fresh = true {
		grid := used + unpackFrac(late, limit)
		if start > now {
			used = paced(used, limit, p, start, tmin)
		}
		if fits(used, cost, limit) {
			slot := tmin
			if start > now {
				slot = max(start+int64(used/limit*float64(p)), tmin)
			}
			if tl.units > 0 {
				slot = max(slot, start+tl.wait(limit-used-cost, limit, p))
			}
			if slot < start+p {
				return slot
			}
		} else if fresh && used == 0 && !(tl.units > 0) {
			return -1 // not even an empty window holds it
		}
		tl = tail{} // after a window passed over: none
		if !fresh {
			tl = w.tailOf(1, used, packFrac(grid-used, limit), last, limit, window, p)
		}
		start += p
		used, late, last = 0, 0, 0
	}
}

// paced returns the units of a future window starting at start that count
// as spent by instant t: used, or the slots paced before t if more.
func paced(used, limit float64, p, start, t int64) float64 {
	if t <= start {
		return used
	}
	return math.Max(used, float64(t-start)/float64(p)*limit)
}

// Take counts cost units at instant at (Earliest's answer for now, or
// later), which must not be earlier than the instant of any earlier Take.
func (w *Window) Take(limit float64, window, now, at int64, cost float64) {
	p := w.Period(window)
	w.advance(p, at)
	grid := w.Used + unpackFrac(w.Late, limit)
	if w.Start > now {
		w.Used = paced(w.Used, limit, p, w.Start, at)
	}
	w.Used += cost
	grid = math.Max(grid, float64(at-w.Start)/float64(p)*limit) + cost
	w.Late = packFrac(grid-w.Used, limit)
	w.Last = max(w.Last, packFrac(float64(at-w.Start), float64(p)))
	w.carry(limit, p)
}

// Untake gives back cost units of the latest grant (the inverse of its
// Take): when that empties a future window, the window before it — full,
// as every window before the latest one — becomes the latest again. A
// grant holds at most limit units: a larger cost gives back limit.
func (w *Window) Untake(limit float64, window, now int64, cost float64) {
	if !(cost <= limit) {
		cost = limit // else each window rolled back gives back limit more, unbounded
	}
	p := w.Period(window)
	w.Used -= cost
	for w.Used < eps && w.Start-p > now && limit > 0 {
		w.Start -= p
		w.Used += limit
		// The window before ends where this one's tail said.
		w.Late = packFrac(w.prev()+unpackFrac(w.PrevLate, limit)-w.Used, limit)
		w.Last = w.PrevLast
		w.setPrev(0)
		w.PrevLate, w.PrevLast = 0, 0
	}
	w.Used = max(w.Used, 0)
}

// LastSlot returns the paced slot of the latest unit held by a future
// window, or 0 when the latest window is not in the future.
func (w Window) LastSlot(limit float64, window, now int64) int64 {
	if w.Start <= now || w.Used < eps || !(limit > 0) {
		return 0
	}
	// A slot beyond the time line (a count far beyond the limit, only from
	// a caller of the Backend API) is later than any handed out; one far
	// before it is earlier than now. Converted as they are, they would be
	// whatever the platform makes of an out-of-range float.
	switch x := (w.Used - 1) / limit * float64(w.Period(window)); {
	case !(x <= 4e18):
		return math.MaxInt64
	case x < -4e18:
		return 0
	default:
		return w.Start + int64(x)
	}
}

// advance moves w to the window of period p holding instant t when w's
// window is over.
func (w *Window) advance(p, t int64) {
	if t >= w.Start+p {
		w.shift((t-w.Start)/p, p)
		w.Used = 0
	}
}

// shift moves the latest window k windows of period p on, keeping Used;
// it takes the tail of the one it leaves.
func (w *Window) shift(k, p int64) {
	units, late, last := 0.0, uint16(0), uint16(0)
	if k == 1 {
		units, late, last = w.Used, w.Late, w.Last
	}
	w.setPrev(units)
	w.PrevLate, w.PrevLast = late, last
	w.Late, w.Last = 0, 0
	w.Start += k * p
}

// maxStart bounds where carry moves a window's start: far enough to hold
// every sane carry, with room to spare for the arithmetic after it.
const maxStart = math.MaxInt64 / 4

// carry moves units beyond limit into the following windows (of period
// p), which then count as full: a server's report or a lowered limit may
// leave more units granted than a window holds.
func (w *Window) carry(limit float64, p int64) {
	if !(limit > 0) || w.Used <= limit+eps {
		return
	}
	k := math.Ceil((w.Used - limit) / limit)
	if k > 1<<20 {
		k = 1 << 20
	}
	// Nor so far that the window's start leaves the time line (a long
	// window and an absurd count wrapped it around, freeing the key).
	if m := float64((maxStart - w.Start) / p); k > m {
		if k = m; k < 1 {
			return // stays overfull: full
		}
	}
	// The units granted stay where they were (the tail); the excess
	// counted in the new window is on top of them.
	w.shift(int64(k), p)
	if w.Used -= k * limit; math.IsNaN(w.Used) {
		w.Used = limit // an infinite count less an infinite carry: full
	}
}

// Relimit re-expresses w's grids (Late, PrevLate), counted in units of a
// limit of from, for a limit of to (a learned limit taking over a default's
// window, or a server announcing another limit). A grid's slots are where
// its limit put them: read under a higher limit as they are, they would
// say the units went earlier than they did, and a tail would count fewer
// of them. Under a higher limit a grid's end keeps its place in the
// window; under a lower one it keeps its units (later, as safe).
func (w *Window) Relimit(from, to float64) {
	if !(from > 0) || !(to > 0) || from == to {
		return
	}
	w.Late = relimitLate(w.Late, w.Used, from, to)
	w.PrevLate = relimitLate(w.PrevLate, w.prev(), from, to)
}

// relimitLate returns Late q of a window holding used units under a limit
// of from as a Late under a limit of to (both positive).
func relimitLate(q uint16, used, from, to float64) uint16 {
	if to < from {
		return packFrac(unpackFrac(q, from), to)
	}
	if !(used <= 1e300) {
		return fixed
	}
	// The grid's end (used + late) stays at (used + late)/from of the
	// window: late' = that much of to less used, as a fraction of to.
	return packFrac(used/from-used/to+unpackFrac(q, from)/from, 1)
}

// Block makes the window restart at until (a server's 429 or Retry-After),
// so traffic resumes paced from the block's end rather than all at once.
// When slots were already handed out at or after until (lastSlot), the
// latest window keeps its count: restarting it would forget them.
// The server's own count restarts then, so the window keeps no tail. The
// restarted window is unaligned: a Retry-After is rounded to whole seconds
// either way, or is no window's end at all, so a window starting at until
// may end before the server's, which an aligned window's tail does not
// cover; the next precise report aligns it again.
func (w *Window) Block(until, lastSlot int64) {
	if w.Start < until && lastSlot < until {
		*w = Window{Start: until}
	}
}

// Tolerance is how far a server's reset may differ from the local window
// end and still be the same window: one second (most servers send whole
// seconds, and the Date header they are measured against has one-second
// precision) plus a twentieth of the window.
func Tolerance(window int64) int64 {
	return int64(time.Second) + window/20
}

// Reconcile applies a server's report on one limit at instant now.
// grantedSince is the number of units granted after the reported request
// was granted (they may not be in the server's count yet); sentAt is when
// that request was sent (0 when unknown). The server's window ends
// between the bounds of serverEnd; the local window's end (Start + its
// period) is compared with their upper one. The rules:
//
//   - a report about a window before the latest local one is stale: ignored
//     (so is any report while the latest local window is a future one: it
//     already holds reservations the server cannot know of); a request
//     sent before the local window began was counted in an earlier window,
//     unless the report's bounds hold an aligned window's end;
//   - a report about the same window can only lower what is left
//     (Used = max(Used, limit - remaining + grantedSince)); when it
//     contradicts the window's phase (its bounds leave the window's end
//     neither at nor after the server's, nor within Uncertainty of it),
//     or the window is not aligned, a report precise enough aligns it;
//   - a report about a later window (its end past the local end by more
//     than Tolerance or, for an aligned window, its earliest end past the
//     local end) starts that window with the server's count, aligned when
//     precise enough; without a count, the units granted are kept.
//
// Aligning moves the window's phase: the units already granted count in
// the new current window (a tail of the window before, within a window of
// now, too), as granted at now.
func (w *Window) Reconcile(limit float64, window, now int64, u *QuotaUpdate, grantedSince float64, sentAt int64) {
	if !(limit > 0) || window <= 0 {
		return
	}
	p := w.Period(window)
	w.advance(p, now)
	var lo, hi int64
	var precise bool
	if u.HasReset {
		if lo, hi, precise = serverEnd(window, now, sentAt, u.ResetIn); hi < lo && u.ResetIn < 0 {
			return // the server's window ended before it counted the request: over
		}
	}
	tol := Tolerance(window)
	latestEnd := w.Start + p
	// A report of a window after the latest local one: ending past it by
	// more than Tolerance or (an aligned window ends no earlier than the
	// server's window it follows) starting after it at the earliest.
	later := u.HasReset && (hi > latestEnd+tol || w.Aligned() && lo > latestEnd)
	// A report whose bounds hold an aligned window's end is about that
	// window, whenever its request was sent (the server counted it in the
	// window it reports; an aligned window may start up to Uncertainty
	// after the server's). A precise report about the current window that
	// is not such a one realigns it.
	current := u.HasReset && w.Aligned() && latestEnd >= lo && latestEnd <= hi+Uncertainty(window)
	if sentAt > 0 && sentAt < w.Start-int64(time.Millisecond) && w.Start <= now && !later && !current {
		// The request was sent before the current local window began: the
		// server's count is about an earlier window. Only a report of a
		// window after the local one (below) may still apply.
		return
	}
	used := math.NaN()
	if u.HasRemaining {
		// Of the units granted since, at most those in the latest window
		// can be in the server's window too.
		used = math.Max(0, limit-u.Remaining) + math.Min(grantedSince, w.Used)
	}
	if !u.HasReset {
		if w.Start <= now {
			w.lower(used, limit, p, now)
		}
		w.carry(limit, p)
		return
	}
	switch {
	case later:
		// The server is already in a window after the latest local one.
		if precise {
			w.realign(limit, window, now, hi)
			if !math.IsNaN(used) {
				w.Used = used
			}
		} else if w.Start <= now {
			w.lower(used, limit, p, now)
		}
	case w.Start > now:
		// The latest local window is a future one, already holding
		// reservations; the server speaks of the present one.
		return
	case hi >= latestEnd-tol || sentAt > 0 || lo > w.Start+tol:
		// The same window, or (with the send time, or ending well
		// after the local one began) the server's current window ends
		// inside the local current one.
		if precise && !current {
			w.realign(limit, window, now, hi)
		}
		// (The server's count may hold units of the window before that the
		// tail counts too. Taking them off the count would trust the tail
		// to keep them until the server's window ends, which holds only for
		// requests that reach the server within the Span's margin: with
		// clients 50ms apart, 12 of 150 model cases overfilled.)
		w.lower(used, limit, w.Period(window), now)
	default:
		// Without the send time, a window ending about when the local
		// one began is taken for the one before: stale. (With it, the
		// request went out in the current window, checked above.)
		return
	}
	w.carry(limit, w.Period(window))
}

// realign makes w an aligned window ending at end, or at the end of the
// window of its phase holding now. The units of w's current window stay
// counted in it, with the units of the window before that would count
// against a grant at now, all as granted at now or at the window's latest
// grant if later: their place in the new phase is not known.
func (w *Window) realign(limit float64, window, now, end int64) {
	p := w.Period(window)
	carried := w.Used
	if w.Start <= now {
		carried += w.tailOf(0, 0, 0, 0, limit, window, p).count(limit, p, now-w.Start)
	}
	// Its units went by now, or by its latest grant when that is later
	// (a slot after now, behind a block or an earlier waiter).
	latest := max(now, w.Start+lastOffset(w.Last, p))
	start := StartAt(end-window, window, now)
	pos := float64(min(max(latest-start, 0), window))
	*w = Window{Start: start, Used: carried, Prev: -1}
	if carried > 0 {
		w.Late = packFrac(pos/float64(window)*limit, limit)
		w.Last = packFrac(pos, float64(window))
	}
}

// StartAt returns the start of the window of period p holding instant
// now, on the phase of a window starting at start (start itself unless
// start is after now: a window of the phase no later than now).
func StartAt(start, p, now int64) int64 {
	if start > now {
		start -= ((start-now-1)/p + 1) * p
	}
	return start
}

// lower raises Used to used (lowering what is left), never the reverse.
// In an unaligned window the units the server counted beyond the local
// ones are taken as granted at now. An aligned window's grid keeps its
// end: the server counted them in its window, which ends no later than
// the local one, so none of them counts against the next.
func (w *Window) lower(used, limit float64, p, now int64) {
	if !math.IsNaN(used) && used > w.Used {
		grid := w.Used + unpackFrac(w.Late, limit)
		if !w.Aligned() {
			pos := float64(now-w.Start) / float64(p)
			grid = math.Max(grid, pos*limit) + used - w.Used
			w.Last = max(w.Last, packFrac(float64(now-w.Start), float64(p)))
		}
		w.Late = packFrac(grid-used, limit)
		w.Used = used
	}
}

// Idle reports whether w, at instant now, limits nothing more than a new
// window would: its windows are over and no tail of theirs is left.
func (w Window) Idle(limit float64, window, now int64) bool {
	p := w.Period(window)
	if window <= 0 || now < w.Start+p {
		return false
	}
	k := (now - w.Start) / p
	return w.tailOf(k, w.Used, w.Late, w.Last, limit, window, p).count(limit, p, now-w.Start-k*p) == 0
}

// State reports, at instant now, the units left in the current window,
// the units reserved in future windows and when the current window ends.
func (w Window) State(limit float64, window, now int64) (remaining, reserved float64, resetAt int64) {
	if window <= 0 {
		return 0, 0, now
	}
	p := w.Period(window)
	if now >= w.Start+p {
		k := (now - w.Start) / p
		start := w.Start + k*p
		tl := w.tailOf(k, w.Used, w.Late, w.Last, limit, window, p)
		return math.Max(0, limit-tl.count(limit, p, now-start)), 0, start + p
	}
	if w.Start <= now {
		return math.Max(0, limit-w.Used-w.tailOf(0, 0, 0, 0, limit, window, p).count(limit, p, now-w.Start)), 0, w.Start + p
	}
	// The latest window is in the future: every window up to it is full.
	k := (w.Start-now)/p + 1 // windows from the current one to the latest
	if (w.Start-now)%p == 0 {
		k--
	}
	return 0, w.Used + float64(k-1)*limit, w.Start - (k-1)*p
}
