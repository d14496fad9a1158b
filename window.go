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
// The arithmetic is pure and allocation-free; a backend guards it with its
// own lock (memory) or runs the same steps in one SQL statement (postgres).
type Window struct {
	// Start is the start of the latest window holding grants.
	Start int64
	// Used is the number of units granted in that window.
	Used float64
}

// StartWindow returns the window of a limit first learned from a server's
// report at instant now: it ends when the server says it resets (or starts
// now when the server gave no reset). Apply the report with Reconcile next.
func StartWindow(window, now int64, u *QuotaUpdate) Window {
	if u.HasReset && window > 0 {
		return Window{Start: now + int64(u.ResetIn) - window}
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
// after it are paced too instead of bursting at tmin.
func (w Window) Earliest(limit float64, window, now, tmin int64, cost float64) int64 {
	if cost > limit+eps || window <= 0 || !(limit > 0) {
		return -1
	}
	if tmin < now {
		tmin = now
	}
	start, used := w.Start, w.Used
	if tmin >= start+window {
		start += (tmin - start) / window * window
		used = 0
	}
	for fresh := false; ; fresh = true {
		if start > now {
			used = paced(used, limit, window, start, tmin)
		}
		if fits(used, cost, limit) {
			break
		}
		if fresh && used == 0 {
			return -1 // not even an empty window holds it
		}
		start += window
		used = 0
	}
	if start <= now {
		return tmin
	}
	slot := start + int64(used/limit*float64(window))
	if slot < tmin {
		slot = tmin
	}
	return slot
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
	if w.Start > now {
		w.Used = paced(w.Used, limit, window, w.Start, at)
	}
	w.Used += cost
	w.carry(limit, window)
}

// Untake gives back cost units of the latest grant (the inverse of its
// Take): when that empties a future window, the window before it — full,
// as every window before the latest one — becomes the latest again.
func (w *Window) Untake(limit float64, window, now int64, cost float64) {
	w.Used -= cost
	for w.Used < eps && w.Start-window > now && limit > 0 {
		w.Start -= window
		w.Used += limit
	}
	w.Used = max(w.Used, 0)
}

// LastSlot returns the paced slot of the latest unit held by a future
// window, or 0 when the latest window is not in the future.
func (w Window) LastSlot(limit float64, window, now int64) int64 {
	if w.Start <= now || w.Used < eps || !(limit > 0) {
		return 0
	}
	return w.Start + int64((w.Used-1)/limit*float64(window))
}

// advance moves w to the window holding instant t when w's window is over.
func (w *Window) advance(window, t int64) {
	if t >= w.Start+window {
		w.Start += (t - w.Start) / window * window
		w.Used = 0
	}
}

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
	w.Start += int64(k) * window
	w.Used -= k * limit
}

// Block makes the window restart at until (a server's 429 or Retry-After),
// so traffic resumes paced from the block's end rather than all at once.
// When slots were already handed out at or after until (lastSlot), the
// latest window keeps its count: restarting it would forget them.
func (w *Window) Block(until, lastSlot int64) {
	if w.Start < until && lastSlot < until {
		w.Start = until
		w.Used = 0
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
			w.lower(used)
		case sentAt <= 0 && end <= w.Start+tol:
			// Without the send time, a window ending about when the local
			// one began is taken for the one before: stale. (With it, the
			// request went out in the current window, checked above.)
			return
		default:
			// The server's current window ends inside the local current
			// window: align with the server.
			w.Start = end - window
			w.lower(used)
		}
	} else if w.Start <= now {
		w.lower(used)
	}
	w.carry(limit, window)
}

// lower raises Used to used (lowering what is left), never the reverse.
func (w *Window) lower(used float64) {
	if !math.IsNaN(used) && used > w.Used {
		w.Used = used
	}
}

// State reports, at instant now, the units left in the current window,
// the units reserved in future windows and when the current window ends.
func (w Window) State(limit float64, window, now int64) (remaining, reserved float64, resetAt int64) {
	if window <= 0 {
		return 0, 0, now
	}
	if now >= w.Start+window {
		start := w.Start + (now-w.Start)/window*window
		return limit, 0, start + window
	}
	if w.Start <= now {
		return math.Max(0, limit-w.Used), 0, w.Start + window
	}
	// The latest window is in the future: every window up to it is full.
	k := (w.Start-now)/window + 1 // windows from the current one to the latest
	if (w.Start-now)%window == 0 {
		k--
	}
	return 0, w.Used + float64(k-1)*limit, w.Start - (k-1)*window
}
