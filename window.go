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
// no more than the limit in any of its windows. The phase of every other
// limit — defaults, overrides, limits learned without a reset — is the
// limiter's own, and the server's windows may start anywhere in it. Those
// unaligned windows enforce the limit over any interval of a window's
// length, not only within each window: the units of the window before
// (Prev, PrevLate) that are still within a window's length of a new grant
// count against it, so a burst at the end of one window is not followed by
// another at the start of the next. (This holds exactly for whole-unit
// costs; a fractional cost may add less than one unit.)
//
// The arithmetic is pure and allocation-free; a backend guards it with its
// own lock (memory) or runs the same steps in one SQL statement (postgres).
// Window is 32 bytes: backends keep one per limit of every key.
type Window struct {
	// Start is the start of the latest window holding grants.
	Start int64
	// Used is the number of units granted in that window.
	Used float64
	// Prev is the number of units granted in the window just before
	// Start (0 when that window was not the one before), or NaN for an
	// aligned window, which needs no tail.
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
func (w Window) Aligned() bool { return math.IsNaN(w.Prev) }

// tail is what a window knows of the units of the window before it: how
// many, how far their grid runs past them (late, in units) and the offset
// of the latest in that window (last).
type tail struct {
	units, late float64
	last        int64
}

// tailOf returns the tail of the window k windows after w's latest: the
// latest window's own units (used, with Late and Last q) for the next one,
// w's for w, none further on.
func (w Window) tailOf(k int64, used float64, late, last uint16, limit float64, window int64) tail {
	switch {
	case k == 0 && w.Prev > 0: // not NaN: unaligned
		return tail{w.Prev, unpackFrac(w.PrevLate, limit), lastOffset(w.PrevLast, window)}
	case k == 1 && used > 0 && !w.Aligned():
		return tail{used, unpackFrac(late, limit), lastOffset(last, window)}
	}
	return tail{} // none: its count is 0, as that of a tail of no units
}

// count bounds the units of the window before that were granted within a
// window's length of instant o after the window's start (after instant o of
// the window before).
func (t tail) count(limit float64, window, o int64) float64 {
	if !(t.units > 0) || o >= t.last {
		return 0
	}
	// The units after an instant are fewer than the grid's end minus that
	// instant's position: with whole units, at most the ceiling less one.
	n := math.Ceil(t.units+t.late-float64(o)/float64(window)*limit) - 1
	return math.Max(0, math.Min(t.units, n))
}

// wait returns the offset from a window's start from which the units of
// the window before leave room for left more units, or window when they
// leave none in the window.
func (t tail) wait(left, limit float64, window int64) int64 {
	m := math.Floor(left + eps) // the tail may hold at most m units
	if !(t.units > 0) || t.units <= m+eps {
		return 0
	}
	if m < 0 {
		return window
	}
	o := math.Ceil((t.units + t.late - m - 1) * float64(window) / limit)
	o = math.Min(o, float64(t.last)) // none is left after the latest
	if !(o > 0) {
		return 0
	}
	return int64(math.Min(o, float64(window)))
}

// StartWindow returns the window of a limit first learned from a server's
// report at instant now: it ends when the server says it resets (an
// aligned window), or starts now when the server gave no reset. Apply the
// report with Reconcile next.
func StartWindow(window, now int64, u *QuotaUpdate) Window {
	if u.HasReset && window > 0 {
		w := Window{Start: now + int64(u.ResetIn) - window}
		w.align()
		return w
	}
	return Window{Start: now}
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
// once; in a future window slot j lands at start + j*window/limit, so
// waiters are paced rather than released together. A future window whose
// pacing lags behind tmin (another limit, a block or earlier waiters made
// the request later) counts the slots before tmin as spent, so the requests
// after it are paced too instead of bursting at tmin. In an unaligned
// window a request also waits until the units of the window before, within
// a window's length of it, leave room.
func (w Window) Earliest(limit float64, window, now, tmin int64, cost float64) int64 {
	if cost > limit+eps || window <= 0 || !(limit > 0) {
		return -1
	}
	if tmin < now {
		tmin = now
	}
	start, used, late, last := w.Start, w.Used, w.Late, w.Last
	tl := w.tailOf(0, 0, 0, 0, limit, window)
	if tmin >= start+window {
		k := (tmin - start) / window
		tl = w.tailOf(k, used, late, last, limit, window)
		start, used, late, last = start+k*window, 0, 0, 0
	}
	aligned := w.Aligned()
	for fresh := false; ; fresh = true {
		grid := used
		if !aligned {
			grid += unpackFrac(late, limit)
		}
		if start > now {
			used = paced(used, limit, window, start, tmin)
		}
		if fits(used, cost, limit) {
			slot := tmin
			if start > now {
				slot = max(start+int64(used/limit*float64(window)), tmin)
			}
			if tl.units > 0 {
				slot = max(slot, start+tl.wait(limit-used-cost, limit, window))
			}
			if slot < start+window {
				return slot
			}
		} else if fresh && used == 0 && !(tl.units > 0) {
			return -1 // not even an empty window holds it
		}
		tl = tail{} // after a window passed over: none
		if !fresh && !aligned {
			tl = w.tailOf(1, used, packFrac(grid-used, limit), last, limit, window)
		}
		start += window
		used, late, last = 0, 0, 0
	}
}

// paced returns the units of a future window starting at start that count
// as spent by instant t: used, or the slots paced before t if more.
func paced(used, limit float64, window, start, t int64) float64 {
	if t <= start {
		return used
	}
	return math.Max(used, float64(t-start)/float64(window)*limit)
}

// Take counts cost units at instant at (Earliest's answer for now, or
// later), which must not be earlier than the instant of any earlier Take.
func (w *Window) Take(limit float64, window, now, at int64, cost float64) {
	w.advance(window, at)
	aligned := w.Aligned()
	grid := w.Used
	if !aligned {
		grid += unpackFrac(w.Late, limit)
	}
	if w.Start > now {
		w.Used = paced(w.Used, limit, window, w.Start, at)
	}
	w.Used += cost
	if !aligned {
		grid = math.Max(grid, float64(at-w.Start)/float64(window)*limit) + cost
		w.Late = packFrac(grid-w.Used, limit)
		w.Last = max(w.Last, packFrac(float64(at-w.Start), float64(window)))
	}
	w.carry(limit, window)
}

// Untake gives back cost units of the latest grant (the inverse of its
// Take): when that empties a future window, the window before it — full,
// as every window before the latest one — becomes the latest again. A
// grant holds at most limit units: a larger cost gives back limit.
func (w *Window) Untake(limit float64, window, now int64, cost float64) {
	if !(cost <= limit) {
		cost = limit // else each window rolled back gives back limit more, unbounded
	}
	w.Used -= cost
	for w.Used < eps && w.Start-window > now && limit > 0 {
		w.Start -= window
		w.Used += limit
		if !w.Aligned() {
			// The window before ends where this one's tail said.
			w.Late = packFrac(w.Prev+unpackFrac(w.PrevLate, limit)-w.Used, limit)
			w.Last = w.PrevLast
			w.Prev, w.PrevLate, w.PrevLast = 0, 0, 0
		}
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
	switch x := (w.Used - 1) / limit * float64(window); {
	case !(x <= 4e18):
		return math.MaxInt64
	case x < -4e18:
		return 0
	default:
		return w.Start + int64(x)
	}
}

// advance moves w to the window holding instant t when w's window is over.
func (w *Window) advance(window, t int64) {
	if t >= w.Start+window {
		w.shift((t-w.Start)/window, window)
		w.Used = 0
	}
}

// shift moves the latest window k windows on, keeping Used; an unaligned
// window takes the tail of the one it leaves.
func (w *Window) shift(k, window int64) {
	if !w.Aligned() {
		w.Prev, w.PrevLate, w.PrevLast = 0, 0, 0
		if k == 1 {
			w.Prev, w.PrevLate, w.PrevLast = w.Used, w.Late, w.Last
		}
		w.Late, w.Last = 0, 0
	}
	w.Start += k * window
}

// maxStart bounds where carry moves a window's start: far enough to hold
// every sane carry, with room to spare for the arithmetic after it.
const maxStart = math.MaxInt64 / 4

// carry moves units beyond limit into the following windows, which then
// count as full: a server's report or a lowered limit may leave more units
// granted than a window holds.
func (w *Window) carry(limit float64, window int64) {
	if !(limit > 0) || w.Used <= limit+eps {
		return
	}
	k := math.Ceil((w.Used - limit) / limit)
	if k > 1<<20 {
		k = 1 << 20
	}
	// Nor so far that the window's start leaves the time line (a long
	// window and an absurd count wrapped it around, freeing the key).
	if m := float64((maxStart - w.Start) / window); k > m {
		if k = m; k < 1 {
			return // stays overfull: full
		}
	}
	// The units granted stay where they were (the tail); the excess
	// counted in the new window is on top of them.
	w.shift(int64(k), window)
	if w.Used -= k * limit; math.IsNaN(w.Used) {
		w.Used = limit // an infinite count less an infinite carry: full
	}
}

// Block makes the window restart at until (a server's 429 or Retry-After),
// so traffic resumes paced from the block's end rather than all at once.
// When slots were already handed out at or after until (lastSlot), the
// latest window keeps its count: restarting it would forget them.
// The server's own count restarts then, so an unaligned window keeps no
// tail.
func (w *Window) Block(until, lastSlot int64) {
	if w.Start < until && lastSlot < until {
		w.Start = until
		w.Used, w.Late, w.Last = 0, 0, 0
		if !w.Aligned() {
			w.Prev, w.PrevLate, w.PrevLast = 0, 0, 0
		}
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
// that request was sent (0 when unknown). The rules:
//
//   - a report about a window before the latest local one is stale: ignored
//     (so is any report while the latest local window is a future one: it
//     already holds reservations the server cannot know of);
//   - a report about the same window can only lower what is left
//     (Used = max(Used, limit - remaining + grantedSince)), and aligns the
//     current window's end with the server's;
//   - a report about a later window starts that window with the server's count.
func (w *Window) Reconcile(limit float64, window, now int64, u *QuotaUpdate, grantedSince float64, sentAt int64) {
	if !(limit > 0) || window <= 0 {
		return
	}
	w.advance(window, now)
	if sentAt > 0 && sentAt < w.Start-int64(time.Millisecond) && w.Start <= now {
		// The request was sent before the current local window began: the
		// server's count is about an earlier window. Only a report of a
		// window after the local one (below) may still apply.
		if !u.HasReset || now+int64(u.ResetIn) <= w.Start+window+Tolerance(window) {
			return
		}
	}
	used := math.NaN()
	if u.HasRemaining {
		// Of the units granted since, at most those in the latest window
		// can be in the server's window too.
		used = math.Max(0, limit-u.Remaining) + math.Min(grantedSince, w.Used)
	}
	if u.HasReset {
		end := now + int64(u.ResetIn)
		latestEnd := w.Start + window
		tol := Tolerance(window)
		switch {
		case end > latestEnd+tol:
			// The server is already in a window after the latest local one.
			w.align()
			w.Start = end - window
			w.Used = 0
			if !math.IsNaN(used) {
				w.Used = used
			}
		case w.Start > now:
			// The latest local window is a future one, already holding
			// reservations; the server speaks of the present one.
			return
		case end >= latestEnd-tol:
			// The same window.
			w.align()
			w.lower(used, limit, window, now)
		case sentAt <= 0 && end <= w.Start+tol:
			// Without the send time, a window ending about when the local
			// one began is taken for the one before: stale. (With it, the
			// request went out in the current window, checked above.)
			return
		default:
			// The server's current window ends inside the local current
			// window: align with the server.
			w.align()
			w.Start = end - window
			w.lower(used, limit, window, now)
		}
	} else if w.Start <= now {
		w.lower(used, limit, window, now)
	}
	w.carry(limit, window)
}

// align marks w as ending with the server's windows, for good: it needs
// no tail.
func (w *Window) align() {
	w.Prev, w.Late, w.Last, w.PrevLate, w.PrevLast = math.NaN(), 0, 0, 0, 0
}

// lower raises Used to used (lowering what is left), never the reverse.
// In an unaligned window the units the server counted beyond the local
// ones are taken as granted at now.
func (w *Window) lower(used, limit float64, window, now int64) {
	if !math.IsNaN(used) && used > w.Used {
		if !w.Aligned() {
			pos := float64(now-w.Start) / float64(window)
			grid := math.Max(w.Used+unpackFrac(w.Late, limit), pos*limit) + used - w.Used
			w.Late = packFrac(grid-used, limit)
			w.Last = max(w.Last, packFrac(float64(now-w.Start), float64(window)))
		}
		w.Used = used
	}
}

// Idle reports whether w, at instant now, limits nothing more than a new
// window would: its windows are over and no tail of theirs is left.
func (w Window) Idle(limit float64, window, now int64) bool {
	if window <= 0 || now < w.Start+window {
		return false
	}
	k := (now - w.Start) / window
	return w.tailOf(k, w.Used, w.Late, w.Last, limit, window).count(limit, window, now-w.Start-k*window) == 0
}

// State reports, at instant now, the units left in the current window,
// the units reserved in future windows and when the current window ends.
func (w Window) State(limit float64, window, now int64) (remaining, reserved float64, resetAt int64) {
	if window <= 0 {
		return 0, 0, now
	}
	if now >= w.Start+window {
		k := (now - w.Start) / window
		start := w.Start + k*window
		tl := w.tailOf(k, w.Used, w.Late, w.Last, limit, window)
		return math.Max(0, limit-tl.count(limit, window, now-start)), 0, start + window
	}
	if w.Start <= now {
		return math.Max(0, limit-w.Used-w.tailOf(0, 0, 0, 0, limit, window).count(limit, window, now-w.Start)), 0, w.Start + window
	}
	// The latest window is in the future: every window up to it is full.
	k := (w.Start-now)/window + 1 // windows from the current one to the latest
	if (w.Start-now)%window == 0 {
		k--
	}
	return 0, w.Used + float64(k-1)*limit, w.Start - (k-1)*window
}
