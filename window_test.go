package smartratelimit

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Earliest and Take tables use a window of 100s holding 10 units, so
// slot j of a future aligned window lands at start + 10j s; the units of
// its window before count only from 92.88s of it (Uncertainty 7s and the
// Span's margin 120ms), which aw's units, granted at its start, are not.
// The Block table needs no window; the State table uses 100s too. The Reconcile tables
// use a minute, where Tolerance is 1s + 3s and Uncertainty 2s + 3s.

const sec = int64(time.Second)

// tenth and fifth are variables so that tenth+fifth is computed in float64
// (0.30000000000000004), not exactly as a constant.
var tenth, fifth = 0.1, 0.2

// aw returns an aligned window: the fixed-window arithmetic alone, which
// the tables below describe. Unaligned windows add their tail (see the
// tests after TestWindowProperties).
func aw(start int64, used float64) Window {
	return Window{Start: start, Used: used, Prev: math.NaN()}
}

// uw returns an unaligned window (the any-interval rule, on the Span).
func uw(start int64, used float64) Window { return Window{Start: start, Used: used} }

// sameWindow compares windows with NaN equal to itself.
func sameWindow(t *testing.T, want, got Window, msg ...any) {
	t.Helper()
	norm := func(w Window) Window {
		if w.Aligned() {
			w.Prev = -1
		}
		return w
	}
	assert.Equal(t, norm(want), norm(got), msg...)
}

func TestWindowEarliest(t *testing.T) {
	tests := []struct {
		name      string
		w         Window
		limit     float64
		window    int64
		now, tmin int64
		cost      float64
		want      int64
	}{
		{"room in the current window: at once", aw(0, 3), 10, 100 * sec, 50 * sec, 0, 1, 50 * sec},
		{"room in the current window: at tmin", aw(0, 3), 10, 100 * sec, 50 * sec, 70 * sec, 1, 70 * sec},
		{"last unit of the current window", aw(0, 9), 10, 100 * sec, 99 * sec, 0, 1, 99 * sec},
		{"exhausted: slot 0 of the next window", aw(0, 10), 10, 100 * sec, 50 * sec, 0, 1, 100 * sec},
		{"future window: slot 3", aw(100*sec, 3), 10, 100 * sec, 50 * sec, 0, 1, 130 * sec},
		{"future window: slot 9", aw(100*sec, 9), 10, 100 * sec, 50 * sec, 0, 1, 190 * sec},
		{"future window full: slot 0 of the one after", aw(100*sec, 10), 10, 100 * sec, 50 * sec, 0, 1, 200 * sec},
		{"future window: tmin after the slot", aw(100*sec, 3), 10, 100 * sec, 50 * sec, 150 * sec, 1, 150 * sec},
		{"future window: tmin before the slot", aw(100*sec, 3), 10, 100 * sec, 50 * sec, 120 * sec, 1, 130 * sec},
		{"cost 4 fits exactly", aw(0, 6), 10, 100 * sec, 50 * sec, 0, 4, 50 * sec},
		{"cost 4 does not fit: next window", aw(0, 7), 10, 100 * sec, 50 * sec, 0, 4, 100 * sec},
		{"cost 3 in a future window lands at its slot", aw(100*sec, 4), 10, 100 * sec, 50 * sec, 0, 3, 140 * sec},
		{"cost 4 after 7 in a future window: the one after", aw(100*sec, 7), 10, 100 * sec, 50 * sec, 0, 4, 200 * sec},
		{"cost of a whole window on a fresh one", aw(0, 0), 10, 100 * sec, 50 * sec, 0, 10, 50 * sec},
		{"cost of a whole window after one unit", aw(0, 1), 10, 100 * sec, 50 * sec, 0, 10, 100 * sec},
		{"cost above the limit", aw(0, 0), 10, 100 * sec, 50 * sec, 0, 11, -1},
		{"zero cost while units are left", aw(0, 9.5), 10, 100 * sec, 50 * sec, 0, 0, 50 * sec},
		{"zero cost waits while exhausted", aw(0, 10), 10, 100 * sec, 50 * sec, 0, 0, 100 * sec},
		{"zero cost in a future window takes its slot", aw(100*sec, 5), 10, 100 * sec, 50 * sec, 0, 0, 150 * sec},
		{"zero cost skips a full future window", aw(100*sec, 10), 10, 100 * sec, 50 * sec, 0, 0, 200 * sec},
		{"stale window: fresh at now", aw(0, 10), 10, 100 * sec, 250 * sec, 0, 1, 250 * sec},
		{"now exactly at the window end", aw(0, 10), 10, 100 * sec, 100 * sec, 0, 1, 100 * sec},
		{"tmin in a later fresh window", aw(0, 10), 10, 100 * sec, 50 * sec, 370 * sec, 1, 370 * sec},
		{"tmin at the start of a later fresh window", aw(0, 4), 10, 100 * sec, 50 * sec, 300 * sec, 1, 300 * sec},
		{"carried window far ahead", aw(300*sec, 2), 10, 100 * sec, 50 * sec, 0, 1, 320 * sec},
		{"fractional pacing truncates to the nanosecond", aw(100*sec, 1), 3, 100 * sec, 50 * sec, 0, 1, 133333333333},
		{"float rounding within eps still fits", aw(0, tenth+fifth), 1, 100 * sec, 50 * sec, 0, 0.7, 50 * sec},
		{"fractional units", aw(100*sec, 2.5), 10, 100 * sec, 50 * sec, 0, 0.5, 125 * sec},
		{"zero window", aw(0, 0), 10, 0, 50, 0, 1, -1},
		{"negative window", aw(0, 0), 10, -100, 50, 0, 1, -1},
		{"zero limit", aw(0, 0), 0, 100 * sec, 50 * sec, 0, 0, -1},
		{"NaN limit", aw(0, 0), math.NaN(), 100 * sec, 50 * sec, 0, 0, -1},
		{"negative origin", aw(-1000*sec, 10), 10, 100 * sec, -950 * sec, -2000 * sec, 1, -900 * sec},
		{"negative origin, tmin in a later window", aw(-1000*sec, 10), 10, 100 * sec, -950 * sec, 0, 1, 0},

		// A future window lagging behind tmin: the slots before tmin are spent.
		{"lagging future window: paced from tmin", aw(100*sec, 1), 10, 100 * sec, 50 * sec, 150 * sec, 1, 150 * sec},
		{"lagging future window: slots before tmin spent, next window", aw(100*sec, 1), 10, 100 * sec, 50 * sec, 195 * sec, 1, 200 * sec},
		{"lagging future window: cost 2 no longer fits at tmin", aw(100*sec, 0), 10, 100 * sec, 50 * sec, 185 * sec, 2, 200 * sec},
		{"lagging future window: cost 2 still fits at tmin", aw(100*sec, 0), 10, 100 * sec, 50 * sec, 180 * sec, 2, 180 * sec},
		{"lagging fresh future window on the grid", aw(0, 10), 10, 100 * sec, 50 * sec, 395 * sec, 1, 400 * sec},
		{"lagging: zero cost with room left after tmin", aw(100*sec, 0), 10, 100 * sec, 50 * sec, 195 * sec, 0, 195 * sec},
		{"lagging: the current window is not paced", aw(0, 1), 10, 100 * sec, 50 * sec, 95 * sec, 1, 95 * sec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.w
			got := w.Earliest(tt.limit, tt.window, tt.now, tt.tmin, tt.cost)
			assert.Equal(t, tt.want, got)
			sameWindow(t, tt.w, w, "Earliest must not change the window")
		})
	}
}

func TestWindowTake(t *testing.T) {
	tests := []struct {
		name    string
		w       Window
		limit   float64
		window  int64
		now, at int64
		cost    float64
		want    Window
	}{
		{"same window", aw(0, 3), 10, 100 * sec, 50 * sec, 50 * sec, 1, aw(0, 4)},
		{"multi-unit", aw(0, 3), 10, 100 * sec, 50 * sec, 50 * sec, 4, aw(0, 7)},
		{"zero cost counts nothing", aw(0, 3), 10, 100 * sec, 50 * sec, 50 * sec, 0, aw(0, 3)},
		{"into the next window", aw(0, 10), 10, 100 * sec, 100 * sec, 100 * sec, 1, aw(100*sec, 1)},
		{"skips idle windows on the grid", aw(0, 10), 10, 100 * sec, 250 * sec, 250 * sec, 1, aw(200*sec, 1)},
		{"paced slot inside a future window", aw(100*sec, 3), 10, 100 * sec, 50 * sec, 130 * sec, 1, aw(100*sec, 4)},
		{"fills a window exactly", aw(0, 9), 10, 100 * sec, 50 * sec, 50 * sec, 1, aw(0, 10)},
		{"lowered limit carries the excess", aw(0, 8), 5, 100 * sec, 50 * sec, 50 * sec, 1, aw(100*sec, 4)},
		{"carry over several windows", aw(0, 7), 2, 100 * sec, 50 * sec, 50 * sec, 0, aw(300*sec, 1)},
		{"carry of an exact multiple leaves the last window full", aw(0, 6), 2, 100 * sec, 50 * sec, 50 * sec, 0, aw(200*sec, 2)},
		{"carry is bounded", aw(0, 1e9), 1, 100 * sec, 50 * sec, 50 * sec, 0, aw((1<<20)*100*sec, 1e9-(1<<20))},

		// A future window lagging behind at: the slots before at are spent.
		{"lagging future window counts the slots before at", aw(100*sec, 1), 10, 100 * sec, 50 * sec, 150 * sec, 1, aw(100*sec, 6)},
		{"lagging future window: zero cost still spends them", aw(100*sec, 1), 10, 100 * sec, 50 * sec, 150 * sec, 0, aw(100*sec, 5)},
		{"a fresh future window reached at a late instant", aw(0, 10), 10, 100 * sec, 50 * sec, 120 * sec, 1, aw(100*sec, 3)},
		{"a paced slot counts nothing extra", aw(100*sec, 3), 10, 100 * sec, 50 * sec, 130 * sec, 1, aw(100*sec, 4)},
		{"the current window is not paced", aw(0, 1), 10, 100 * sec, 50 * sec, 90 * sec, 1, aw(0, 2)},
		{"a window starting at now is current", aw(100*sec, 1), 10, 100 * sec, 100 * sec, 150 * sec, 1, aw(100*sec, 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.w
			got.Take(tt.limit, tt.window, tt.now, tt.at, tt.cost)
			// The grid (Late, Last) is the tail's: see the tail tests.
			assert.Equal(t, tt.want.Start, got.Start)
			assert.Equal(t, tt.want.Used, got.Used)
			assert.True(t, got.Aligned())
		})
	}
}

func TestWindowBlock(t *testing.T) {
	tests := []struct {
		name     string
		w        Window
		until    int64
		lastSlot int64
		want     Window
	}{
		{"restarts at the block end, unaligned", aw(0, 5), 70, 40, Window{Start: 70}},
		{"restarts a full window, unaligned", aw(0, 10), 300, 90, Window{Start: 300}},
		{"keeps reservations beyond the block", aw(200, 5), 150, 240, aw(200, 5)},
		{"keeps a window starting at the block end", aw(200, 5), 200, 240, aw(200, 5)},
		{"keeps a window holding slots after the block end", aw(100, 5), 130, 140, aw(100, 5)},
		{"keeps a window holding a slot at the block end", aw(100, 5), 140, 140, aw(100, 5)},
		{"restarts when every slot is before the block end", aw(100, 5), 141, 140, Window{Start: 141}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.w
			got.Block(tt.until, tt.lastSlot)
			sameWindow(t, tt.want, got)
		})
	}
}

// TestWindowBlockResumesPaced checks the timeline after a block: the first
// request goes at the block's end, the next ones are paced from it.
func TestWindowBlockResumesPaced(t *testing.T) {
	const limit, window = 10, 100 * sec
	w := aw(0, 2)
	w.Block(70*sec, 5*sec)
	var got []int64
	last := 70 * sec // the backend's tmin: never before the block end
	for range 12 {
		at := w.Earliest(limit, window, 10*sec, last, 1)
		w.Take(limit, window, 10*sec, at, 1)
		got = append(got, at/sec)
		last = at
	}
	assert.Equal(t, []int64{70, 80, 90, 100, 110, 120, 130, 140, 150, 160, 170, 180}, got)
}

func TestWindowReconcile(t *testing.T) {
	const window = int64(time.Minute)
	lim := Every(10, time.Minute)
	type update struct {
		remaining float64 // NaN: not reported
		resetIn   int64   // negative: not reported
	}
	tests := []struct {
		name    string
		w       Window
		now     int64
		u       update
		granted float64
		sentAt  int64 // 0: unknown
		want    Window
	}{
		// The same window: the server's end, between its reset less and
		// plus ResetSlack (here 59s to 61s), leaves the local end (60s) at
		// or after its earliest and within Uncertainty (5s) of its latest.
		{"same window lowers", aw(0, 2), 20 * sec, update{5, 40 * sec}, 0, 0, aw(0, 5)},
		{"same window never raises", aw(0, 7), 20 * sec, update{5, 40 * sec}, 0, 0, aw(0, 7)},
		{"same window: grants since the request was sent", aw(0, 2), 20 * sec, update{9, 40 * sec}, 2, 0, aw(0, 3)},
		{"same window: remaining above the limit means none used", aw(0, 2), 20 * sec, update{15, 40 * sec}, 0, 0, aw(0, 2)},
		{"reset 1s late: the local end may be the server's", aw(0, 2), 20 * sec, update{5, 41 * sec}, 0, 0, aw(0, 5)},
		{"reset 3s early is jitter: no realign", aw(0, 2), 20 * sec, update{5, 37 * sec}, 0, 0, aw(0, 5)},
		{"reset 4s early: within Uncertainty", aw(0, 2), 20 * sec, update{5, 36 * sec}, 0, 0, aw(0, 5)},
		{"same window with more granted than the limit carries", aw(0, 2), 20 * sec, update{0, 40 * sec}, 3, 0, aw(60*sec, 2)},
		{"stale local window advances first", aw(0, 9), 70 * sec, update{8, 50 * sec}, 0, 0, aw(60*sec, 2)},

		// The same window by Tolerance, but its phase contradicts the local
		// one: aligned with the latest end the report allows, keeping the
		// units granted.
		{"reset 6s early: the local end would be too late", aw(0, 2), 20 * sec, update{5, 33 * sec}, 0, 0, aw(-6*sec, 5)},
		{"realign keeps the local count", aw(0, 7), 20 * sec, update{5, 33 * sec}, 0, 0, aw(-6*sec, 7)},
		{"an unaligned window aligns", Window{Start: 0, Used: 2}, 20 * sec, update{5, 40 * sec}, 0, 0, aw(sec, 5)},
		{"an imprecise report aligns nothing", Window{Start: 0, Used: 2}, 20 * sec, update{5, 40 * sec}, 0, 10 * sec, Window{Start: 0, Used: 5}},

		// A later window (its latest end past the local end and Tolerance):
		// the window ends at the latest end the report allows.
		{"later window takes the server's count", aw(0, 8), 20 * sec, update{6, 50 * sec}, 0, 0, aw(11*sec, 4)},
		{"later window may raise what is left", aw(0, 10), 20 * sec, update{9, 50 * sec}, 0, 0, aw(11*sec, 1)},
		{"later window just past Tolerance", aw(0, 8), 20 * sec, update{6, 43*sec + 1}, 0, 0, aw(4*sec+1, 4)},
		{"later window without remaining keeps the local units", aw(0, 8), 20 * sec, update{math.NaN(), 50 * sec}, 0, 0, aw(11*sec, 8)},
		{"later window with grants since", aw(0, 8), 20 * sec, update{6, 50 * sec}, 3, 0, aw(11*sec, 7)},
		{"later window overfull carries", aw(0, 8), 20 * sec, update{0, 50 * sec}, 12, 0, aw(71*sec, 8)},
		{"reset 3s late: its earliest end is past the local one, so a later window", aw(0, 2), 20 * sec, update{5, 43 * sec}, 0, 0, aw(4*sec, 5)},
		{"reset 3s late: later, so the server's count applies", aw(0, 7), 20 * sec, update{5, 43 * sec}, 0, 0, aw(4*sec, 5)},
		{"reset Tolerance late", aw(0, 2), 20 * sec, update{5, 44 * sec}, 0, 0, aw(5*sec, 5)},
		{"reset 3s late on an unaligned window: not later; aligned, keeping its count", Window{Start: 0, Used: 7}, 20 * sec, update{5, 43 * sec}, 0, 0, aw(4*sec, 7)},
		{"later window, imprecise: its count applies to the local one", aw(0, 2), 20 * sec, update{6, 50 * sec}, 0, 10 * sec, aw(0, 4)},

		// A report about a window before the latest local one.
		{"stale: the local window already moved on", aw(60*sec, 1), 62 * sec, update{0, sec / 2}, 0, 0, aw(60*sec, 1)},
		{"stale: ends within Tolerance of the local start", aw(60*sec, 1), 62 * sec, update{0, 3 * sec}, 0, 0, aw(60*sec, 1)},
		{"stale: the local latest window is in the future", aw(60*sec, 3), 20 * sec, update{0, 40 * sec}, 0, 0, aw(60*sec, 3)},
		{"stale: no realign either", aw(60*sec, 3), 20 * sec, update{0, 10 * sec}, 0, 0, aw(60*sec, 3)},

		// The server's window ends inside the local current one: align.
		{"align to an earlier server end", aw(0, 2), 20 * sec, update{5, 20 * sec}, 0, 0, aw(-19*sec, 5)},
		{"align never raises", aw(0, 7), 20 * sec, update{5, 20 * sec}, 0, 0, aw(-19*sec, 7)},
		{"align without remaining keeps the count", aw(0, 7), 20 * sec, update{math.NaN(), 20 * sec}, 0, 0, aw(-19*sec, 7)},
		{"align to an end at now", aw(0, 7), 20 * sec, update{0, 0}, 0, 0, aw(-39*sec, 10)},

		// Remaining without a reset: the current window, unless reservations
		// already went to a later one.
		{"remaining only lowers", aw(0, 2), 20 * sec, update{5, -1}, 0, 0, aw(0, 5)},
		{"remaining only never raises", aw(0, 7), 20 * sec, update{5, -1}, 0, 0, aw(0, 7)},
		{"remaining only with grants since", aw(0, 2), 20 * sec, update{8, -1}, 1, 0, aw(0, 3)},
		{"remaining only with too many grants carries", aw(0, 2), 20 * sec, update{0, -1}, 3, 0, aw(60*sec, 2)},
		{"remaining only on a stale local window", aw(0, 8), 70 * sec, update{9, -1}, 0, 0, aw(60*sec, 1)},
		{"remaining only ignored with future reservations", aw(60*sec, 3), 20 * sec, update{0, -1}, 0, 0, aw(60*sec, 3)},

		// Grants since count at most the units of the latest window.
		{"grants since beyond the latest window's units", aw(0, 2), 20 * sec, update{5, 40 * sec}, 6, 0, aw(0, 7)},
		{"grants since on a freshly advanced window count nothing", aw(0, 9), 70 * sec, update{8, 50 * sec}, 4, 0, aw(60*sec, 2)},
		{"grants since within the latest window's units", aw(0, 4), 20 * sec, update{8, 40 * sec}, 3, 0, aw(0, 5)},

		// A future latest window ignores every report: a later window than
		// it would end more than a window from now.
		{"future: a report of the same window as its own", aw(60*sec, 3), 20 * sec, update{0, 100 * sec}, 0, 0, aw(60*sec, 3)},
		{"future: a reset beyond a window is no later window", aw(60*sec, 3), 20 * sec, update{4, 130 * sec}, 0, 0, aw(60*sec, 3)},

		// The send time: a request sent before the current window began
		// (more than 1ms before) was counted in an earlier server window.
		// (Sent 10s or more before, the report is too imprecise to align.)
		{"sent before the window began: ignored", uw(60*sec, 1), 70 * sec, update{0, 50 * sec}, 0, 55 * sec, uw(60*sec, 1)},
		{"sent before the window began, its reset naming an aligned window: applies", aw(60*sec, 1), 70 * sec, update{0, 50 * sec}, 0, 55 * sec, aw(60*sec, 10)},
		{"sent before the window began, without reset: ignored", aw(60*sec, 1), 70 * sec, update{0, -1}, 0, 55 * sec, aw(60*sec, 1)},
		{"sent before the window began: no realign either", aw(60*sec, 1), 70 * sec, update{0, 30 * sec}, 0, 55 * sec, aw(60*sec, 1)},
		{"sent 1ms before the window began: applies", uw(60*sec, 1), 70 * sec, update{0, 50 * sec}, 0, 60*sec - int64(time.Millisecond), uw(60*sec, 10)},
		{"sent 1ms+1ns before the window began: ignored", uw(60*sec, 1), 70 * sec, update{0, 50 * sec}, 0, 60*sec - int64(time.Millisecond) - 1, uw(60*sec, 1)},
		{"sent in the current window: applies", aw(60*sec, 1), 70 * sec, update{0, 50 * sec}, 0, 61 * sec, aw(60*sec, 10)},
		{"sent before, window advanced first: ignored", uw(0, 9), 70 * sec, update{8, 50 * sec}, 0, 50 * sec, uw(sec*60+int64(80*time.Millisecond), 0)},
		{"sent before, window advanced first, its reset naming the new one: applies", aw(0, 9), 70 * sec, update{8, 50 * sec}, 0, 50 * sec, aw(60*sec, 2)},
		{"sent before, but about a later window: its count applies", aw(60*sec, 1), 70 * sec, update{4, 58 * sec}, 0, 55 * sec, aw(60*sec, 6)},
		{"sent before, later window only within Tolerance: ignored", uw(60*sec, 1), 70 * sec, update{4, 53 * sec}, 0, 55 * sec, uw(60*sec, 1)},
		{"sent before, an aligned window's end within the report's bounds: applies", aw(60*sec, 1), 70 * sec, update{4, 53 * sec}, 0, 55 * sec, aw(60*sec, 6)},
		{"sent before a future window: ignored", aw(60*sec, 3), 20 * sec, update{4, 130 * sec}, 0, 10 * sec, aw(60*sec, 3)},

		// Nothing to apply.
		{"neither remaining nor reset", aw(0, 2), 20 * sec, update{math.NaN(), -1}, 0, 0, aw(0, 2)},
		{"reset only, same window", aw(0, 2), 20 * sec, update{math.NaN(), 40 * sec}, 0, 0, aw(0, 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &QuotaUpdate{Limit: lim}
			if !math.IsNaN(tt.u.remaining) {
				u.Remaining, u.HasRemaining = tt.u.remaining, true
			}
			if tt.u.resetIn >= 0 {
				u.ResetIn, u.HasReset = time.Duration(tt.u.resetIn), true
			}
			got := tt.w
			got.Reconcile(lim.Limit, window, tt.now, u, tt.granted, tt.sentAt)
			// The grid (Late, Last) is the tail's: see TestRealignTail.
			assert.Equal(t, tt.want.Start, got.Start, "start")
			assert.Equal(t, tt.want.Used, got.Used, "used")
			assert.Equal(t, tt.want.Aligned(), got.Aligned(), "aligned")
		})
	}
}

func TestWindowReconcileInvalid(t *testing.T) {
	u := &QuotaUpdate{Limit: Every(10, time.Minute), Remaining: 0, HasRemaining: true}
	for _, c := range []struct {
		name   string
		limit  float64
		window int64
	}{{"zero limit", 0, int64(time.Minute)}, {"NaN limit", math.NaN(), int64(time.Minute)}, {"zero window", 10, 0}} {
		w := aw(0, 2)
		w.Reconcile(c.limit, c.window, 20*sec, u, 0, 0)
		sameWindow(t, aw(0, 2), w, c.name)
	}
}

func TestTolerance(t *testing.T) {
	assert.Equal(t, int64(time.Second+50*time.Millisecond), Tolerance(int64(time.Second)))
	assert.Equal(t, int64(4*time.Second), Tolerance(int64(time.Minute)))
	assert.Equal(t, int64(181*time.Second), Tolerance(int64(time.Hour)))
}

func TestStartWindow(t *testing.T) {
	const window = int64(time.Minute)
	tests := []struct {
		name   string
		window int64
		u      QuotaUpdate
		want   Window
	}{
		{"ends at the server's reset, at the latest", window, QuotaUpdate{ResetIn: 20 * time.Second, HasReset: true}, aw(61*sec, 0)},
		{"a reset of a whole window starts now", window, QuotaUpdate{ResetIn: time.Minute, HasReset: true}, aw(100*sec, 0)},
		{"no reset starts now", window, QuotaUpdate{Remaining: 3, HasRemaining: true}, Window{Start: 100 * sec}},
		{"no window starts now", 0, QuotaUpdate{ResetIn: 20 * time.Second, HasReset: true}, Window{Start: 100 * sec}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sameWindow(t, tt.want, StartWindow(tt.window, 100*sec, 0, &tt.u))
		})
	}
}

func TestWindowState(t *testing.T) {
	type state struct {
		remaining, reserved float64
		resetAt             int64
	}
	// A window of 100s holding 10 units (see TestWindowEarliest).
	tests := []struct {
		name   string
		w      Window
		window int64
		now    int64
		want   state
	}{
		{"current window", aw(0, 3), 100 * sec, 50 * sec, state{7, 0, 100 * sec}},
		{"current window at its start", aw(50*sec, 3), 100 * sec, 50 * sec, state{7, 0, 150 * sec}},
		{"current window exhausted", aw(0, 10), 100 * sec, 50 * sec, state{0, 0, 100 * sec}},
		{"current window overfull", aw(0, 12), 100 * sec, 50 * sec, state{0, 0, 100 * sec}},
		{"fresh window on the grid", aw(0, 10), 100 * sec, 250 * sec, state{10, 0, 300 * sec}},
		{"fresh at the window end", aw(0, 10), 100 * sec, 100 * sec, state{10, 0, 200 * sec}},
		{"reserved in the next window", aw(100*sec, 4), 100 * sec, 50 * sec, state{0, 4, 100 * sec}},
		{"reserved two windows ahead", aw(200*sec, 4), 100 * sec, 50 * sec, state{0, 14, 100 * sec}},
		{"reserved a whole window ahead", aw(150*sec, 4), 100 * sec, 50 * sec, state{0, 4, 150 * sec}},
		{"reserved two whole windows ahead", aw(250*sec, 4), 100 * sec, 50 * sec, state{0, 14, 150 * sec}},
		{"no window", aw(0, 3), 0, 50, state{0, 0, 50}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got state
			got.remaining, got.reserved, got.resetAt = tt.w.State(10, tt.window, tt.now)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestWindowProperties drives Earliest and Take of an aligned window with
// random costs and a clock that moves forward by random steps, the way a
// backend does (tmin is never before the previous slot), on the grid of
// windows of the limits' Span, and checks every answer against a model
// that keeps the units of every window of the grid, not just the latest
// one:
//
//   - no window of the grid ever holds more than limit units granted (nor
//     counts more spent, real and paced, unless the tail delayed a grant);
//   - successive slots never go backwards;
//   - every slot is the model's earliest — the first window from tmin's on
//     with room, at once in the current window, else at its paced slot,
//     where a future window counts the slots paced before tmin as spent —
//     or, when the window before the slot's had a grant within its last
//     Uncertainty and margin (its tail counts), no earlier;
//   - a future window is paced: a grant in it never goes before the
//     window's start plus its share of the units granted in it before.
func TestWindowProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, l := range []Limit{
		Every(10, 1000), Every(1, 1000), Every(3, 1000), Every(7.5, 997),
		PerSecond(100), Every(5, 20*time.Millisecond), PerMinute(10),
	} {
		limit, span := l.Limit, l.Span()
		require.Greater(t, span, int64(l.Window), "the span stretches the window")
		origin := rng.Int64N(1_000_000) - 500_000
		w := aw(origin, 0)
		taken := map[int64]float64{}   // grid window index -> units counted spent (real and paced)
		granted := map[int64]float64{} // grid window index -> units really granted
		latest := map[int64]int64{}    // grid window index -> offset of its latest grant
		lag := spanOf(span) - span
		floor := span - Uncertainty(span) - lag // a tail's units before it count nothing
		index := func(t int64) int64 {
			d := t - origin
			if d < 0 {
				return -1 - (-d-1)/span
			}
			return d / span
		}
		// spent is the model's count of window k at instant t: a future
		// window (start after now) spends the slots paced before t.
		spent := func(k, now, t int64) float64 {
			start := origin + k*span
			used := taken[k]
			if start > now && t > start {
				used = math.Max(used, float64(t-start)/float64(span)*limit)
			}
			return used
		}
		costs := []float64{0, 0.5, 1, 1, 1, 2, 3, limit}
		now, last := origin, origin
		for i := range 5000 {
			now += rng.Int64N(span / 3)
			if rng.IntN(10) == 0 {
				now += rng.Int64N(5 * span) // idle for a while
			}
			tmin := max(now, last)
			if rng.IntN(20) == 0 {
				tmin += rng.Int64N(2 * span) // a block or another limit
			}
			cost := costs[rng.IntN(len(costs))]

			got := w.Earliest(limit, span, now, tmin, cost)
			if cost > limit {
				require.Equal(t, int64(-1), got, "op %d: cost %v above limit %v", i, cost, limit)
				continue
			}

			// The model: scan the grid from tmin's window.
			want := int64(-1)
			for k := index(tmin); ; k++ {
				used := spent(k, now, tmin)
				if cost <= 0 && used >= limit-eps || cost > 0 && used+cost > limit+eps {
					continue
				}
				start := origin + k*span
				want = max(tmin, start)
				if start > now {
					want = max(tmin, start+int64(used/limit*float64(span)))
				}
				break
			}
			// The window before counts against want's window when it holds
			// units (granted or paced) and a grant after the floor (one
			// never granted in is at its start).
			exact := true
			if k := index(want) - 1; spent(k, now, tmin) > 0 && latest[k]+2 > floor {
				require.GreaterOrEqual(t, got, want, "op %d: %v now %d tmin %d cost %v state %+v", i, l, now, tmin, cost, w)
				exact = false
			} else {
				require.Equal(t, want, got, "op %d: %v now %d tmin %d cost %v state %+v", i, l, now, tmin, cost, w)
			}
			require.GreaterOrEqual(t, got, last, "op %d: slots must not go backwards", i)

			w.Take(limit, span, now, got, cost)
			k := index(got)
			start := origin + k*span
			if start > now {
				// Paced: the units granted before this one fit in [start, got).
				require.LessOrEqual(t, granted[k]/limit*float64(span), float64(got-start)+1,
					"op %d: a grant in future window %d goes before its paced slot", i, k)
			}
			taken[k] = spent(k, now, got) + cost
			granted[k] += cost
			latest[k] = max(latest[k], got-start)
			require.LessOrEqual(t, granted[k], limit+eps, "op %d: window %d over the limit", i, k)
			if exact {
				// (A grant the tail delays in a future window spends the
				// slots paced before it too, and may carry their excess.)
				require.LessOrEqual(t, taken[k], limit+eps, "op %d: window %d counts more than the limit", i, k)
			}
			last = got
		}
	}
}

// A limit smaller than the float tolerance must not loop forever: a
// request that fits no window at all is refused (-1), and such limits are
// invalid anyway.
func TestEarliestTerminatesOnTinyLimits(t *testing.T) {
	w := Window{Start: 0}
	for _, limit := range []float64{1e-10, 1e-12, 5e-324} {
		done := make(chan int64, 1)
		go func() { done <- w.Earliest(limit, int64(time.Second), 10, 10, 0) }()
		select {
		case got := <-done:
			if got != -1 {
				t.Errorf("limit %g: got %d, want -1", limit, got)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("limit %g: Earliest does not return", limit)
		}
	}
	if err := (Limit{Limit: 1e-10, Window: time.Second}).Validate(); !errors.Is(err, ErrInvalidLimit) {
		t.Errorf("a limit below MinLimit must be invalid, got %v", err)
	}
}

// TestUnalignedWindowSlidingLimit drives an unaligned window (a default or
// an override: the server's windows may have any phase) with bursts,
// pauses, paced waiters and late instants, and checks that no interval of
// a window's length — wherever it starts — holds more than limit units,
// for whole-unit costs; and that slots never go backwards.
func TestUnalignedWindowSlidingLimit(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, l := range []Limit{
		Every(10, 1000), Every(1, 1000), Every(3, 1000), Every(7, 997),
		PerSecond(100), Every(5, 20*time.Millisecond), PerMinute(10), PerHour(50),
	} {
		limit, span := l.Limit, l.Span()
		origin := rng.Int64N(1_000_000) - 500_000
		w := Window{Start: origin}
		type grant struct {
			at   int64
			cost float64
		}
		var grants []grant
		costs := []float64{0, 1, 1, 1, 1, 2, 3}
		now, last := origin, origin
		for i := range 4000 {
			switch rng.IntN(12) {
			case 0:
				now += rng.Int64N(3 * span) // a pause
			case 1, 2:
				// a burst: no time passes
			default:
				now += rng.Int64N(span / 7)
			}
			tmin := max(now, last)
			if rng.IntN(25) == 0 {
				tmin += rng.Int64N(span) // another limit or a block
			}
			cost := costs[rng.IntN(len(costs))]
			got := w.Earliest(limit, int64(l.Window), now, tmin, cost)
			if cost > limit {
				require.Equal(t, int64(-1), got)
				continue
			}
			require.GreaterOrEqual(t, got, tmin, "op %d: %v", i, l)
			before := w
			w.Take(limit, int64(l.Window), now, got, cost)
			_ = i
			grants = append(grants, grant{got, cost})
			// Units in (got-span, got].
			sum := 0.0
			for j := len(grants) - 1; j >= 0 && grants[j].at > got-span; j-- {
				sum += grants[j].cost
			}
			if sum > limit+eps {
				for j := len(grants) - 1; j >= 0 && j > len(grants)-30; j-- {
					t.Logf("grant %d at %d (rel %d) cost %v", j, grants[j].at, grants[j].at-origin, grants[j].cost)
				}
				t.Logf("origin %d span %d", origin, span)
			}
			require.LessOrEqual(t, sum, limit+eps,
				"op %d: %v: %v units within a window's length of %d (now %d, tmin %d, cost %v, before %+v)",
				i, l, sum, got, now, tmin, cost, before)
			last = got
			if rng.IntN(3) == 0 {
				now = max(now, got) // the caller slept until its slot
			}
		}
	}
}

// TestUnalignedWindowTimelines shows what the tail changes, on a window of
// 100ns holding 10 units: unaligned, its windows last its Span, 110ns.
func TestUnalignedWindowTimelines(t *testing.T) {
	const limit, window = 10, 100
	require.Equal(t, int64(110), spanOf(window))
	take := func(w *Window, now, tmin int64, n int) []int64 { return takeN(w, limit, window, now, tmin, n) }

	t.Run("a burst after a pause goes at once", func(t *testing.T) {
		w := Window{Start: 0}
		assert.Equal(t, []int64{30, 30, 30, 30, 30, 30, 30, 30, 30, 30}, take(&w, 30, 30, 10))
	})
	t.Run("a burst at the end of a window: the next waits a window's length", func(t *testing.T) {
		w := Window{Start: 0}
		take(&w, 95, 95, 10) // ten units at 95
		// A fixed window would take ten more at 110. Unaligned, the units
		// at 95 count until 205, then leave together (the window knows
		// when its latest grant went, rounded up to a 65535th).
		got := take(&w, 110, 110, 10)
		assert.Equal(t, []int64{206, 206, 206, 206, 206, 206, 206, 206, 206, 206}, got)
	})
	t.Run("sustained load is paced as before", func(t *testing.T) {
		w := Window{Start: 0}
		got := take(&w, 0, 0, 30)
		want := []int64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
		for j := range 20 {
			want = append(want, int64(110+11*j))
		}
		assert.Equal(t, want, got)
	})
	t.Run("after a paced window a new burst is paced on the grid", func(t *testing.T) {
		w := Window{Start: 0}
		take(&w, 0, 0, 20) // ten at once, then ten paced in [110, 220)
		// At 220 the window before ended with a unit at 209: the new
		// window's units go one per slot, never two within 110 of each
		// other's neighbours.
		got := take(&w, 220, 220, 5)
		assert.Equal(t, []int64{220, 231, 242, 253, 264}, got)
	})
	t.Run("a light window leaves room at once", func(t *testing.T) {
		w := Window{Start: 0}
		take(&w, 80, 80, 3) // three units late in the window
		got := take(&w, 110, 110, 8)
		assert.Equal(t, []int64{110, 110, 110, 110, 110, 110, 110, 191}, got,
			"seven go at once; the eighth waits until the three leave")
	})
	t.Run("state counts the tail", func(t *testing.T) {
		w := Window{Start: 0}
		take(&w, 0, 0, 20)
		rem, _, _ := w.State(limit, window, 220)
		assert.Equal(t, 1.0, rem, "at the start of the window after a paced one, one slot is free")
		assert.True(t, w.Idle(limit, window, 330), "two windows later nothing is left")
		assert.False(t, w.Idle(limit, window, 225))
	})
}

// TestWindowCarryStaysOnTheTimeLine: a report of a count far beyond the
// limit (only a caller of the Backend API can send one) carries into later
// windows without wrapping their start around the int64 time line, which
// left a long window free instead of full: the key stays limited.
func TestWindowCarryStaysOnTheTimeLine(t *testing.T) {
	for _, l := range []Limit{Every(10, time.Hour), Every(10, 3*time.Hour), Every(10, 24*time.Hour), Every(10, MaxWindow)} {
		for _, remaining := range []float64{-1e7, -1e300} {
			span := l.Span()
			now := 5 * sec
			w := Window{Start: now}
			u := &QuotaUpdate{Limit: l, Remaining: remaining, HasRemaining: true}
			w.Reconcile(l.Limit, span, now, u, 0, 0)
			assert.Greater(t, w.Start, now, "%v, remaining %g: the key waits (%+v)", l, remaining, w)
			assert.Greater(t, w.Earliest(l.Limit, span, now, now, 1), now, "%v, remaining %g", l, remaining)
			rem, reserved, _ := w.State(l.Limit, span, now)
			assert.Zero(t, rem)
			assert.Positive(t, reserved)
		}
	}
}

// TestWindowCarryOfAnInfiniteCount: a report whose count overflows to
// infinity (a huge limit less a huge negative remaining, only from a
// caller of the Backend API) leaves the window full, not NaN.
func TestWindowCarryOfAnInfiniteCount(t *testing.T) {
	for _, l := range []Limit{Every(math.MaxFloat64, time.Hour), Every(math.MaxFloat64/3, time.Second), Every(10, time.Minute)} {
		for _, remaining := range []float64{-math.MaxFloat64, -1e300} {
			span := l.Span()
			w := Window{Start: 5 * sec}
			u := &QuotaUpdate{Limit: l, Remaining: remaining, HasRemaining: true}
			w.Reconcile(l.Limit, span, 5*sec, u, 0, 0)
			rem, reserved, _ := w.State(l.Limit, span, 5*sec)
			assert.False(t, math.IsNaN(w.Used) || math.IsNaN(rem) || math.IsNaN(reserved), "%v, remaining %g: %+v", l, remaining, w)
			assert.Zero(t, rem, "%v, remaining %g", l, remaining)
			assert.Greater(t, w.Earliest(l.Limit, span, 5*sec, 5*sec, 1), 5*sec, "%v, remaining %g: limited", l, remaining)
		}
	}
}

// TestUntakeReturns: giving back more than a grant can hold (a caller of
// the Backend API passing Cancel other costs than Acquire's) returns at
// once: it rolled back one window per limit's worth of units, 1e299 of
// them under the backend's lock.
func TestUntakeReturns(t *testing.T) {
	for _, cost := range []float64{1e300, math.MaxFloat64, math.Inf(1), 50} {
		w := Window{Start: 1 << 60, Used: 2} // a future window far ahead: a year-long block, a carry
		done := make(chan Window, 1)
		go func() {
			w := w
			w.Untake(3, int64(time.Millisecond), 0, cost)
			done <- w
		}()
		select {
		case got := <-done:
			assert.GreaterOrEqual(t, got.Used, 0.0, "cost %v: %+v", cost, got)
			assert.LessOrEqual(t, got.Start, w.Start, "cost %v: %+v", cost, got)
		case <-time.After(2 * time.Second):
			t.Fatalf("Untake of %v does not return", cost)
		}
	}
}

// LastSlot of a window holding far more than its limit is later than any
// slot (math.MaxInt64), as the SQL takes it, not the platform's conversion
// of an out-of-range float (found by review).
func TestLastSlotOfAnOverfullWindow(t *testing.T) {
	w := Window{Start: 10, Used: 1e300}
	if got := w.LastSlot(1, int64(time.Second), 0); got != math.MaxInt64 {
		t.Errorf("LastSlot = %d; want math.MaxInt64", got)
	}
	w = Window{Start: 10, Used: math.Inf(1)}
	if got := w.LastSlot(1, int64(time.Second), 0); got != math.MaxInt64 {
		t.Errorf("LastSlot of an infinite count = %d; want math.MaxInt64", got)
	}
	w = Window{Start: 10, Used: 3} // unaligned: paced on the Span
	if got := w.LastSlot(1, int64(time.Second), 0); got != 10+2*PerSecond(1).Span() {
		t.Errorf("LastSlot = %d; want the third slot", got)
	}
}

// TestAlignedWindowTail: an aligned window's units granted within its last
// Uncertainty and the Span's margin may fall in the server's next window
// (its end is at most Uncertainty after the server's), so they count
// against the next local window too, until a window and the margin after
// each; the units before that do not.
func TestAlignedWindowTail(t *testing.T) {
	const limit = 10
	window := int64(time.Minute)
	lag := spanOf(window) - window // 80ms
	require.Equal(t, int64(80*time.Millisecond), lag)
	require.Equal(t, 5*sec, Uncertainty(window))
	take := func(w *Window, now, tmin int64, n int) []int64 { return takeN(w, limit, window, now, tmin, n) }
	aligned := func() Window { return Window{Start: 0, Prev: -1} }

	t.Run("units before the last Uncertainty count only in their window", func(t *testing.T) {
		w := aligned()
		take(&w, 54*sec, 54*sec, 10) // at 54s: before 60s - 5s - 80ms
		got := take(&w, 60*sec, 60*sec, 10)
		assert.Equal(t, []int64{60 * sec, 60 * sec, 60 * sec, 60 * sec, 60 * sec, 60 * sec, 60 * sec, 60 * sec, 60 * sec, 60 * sec}, got,
			"the next window takes the limit at once")
	})
	t.Run("units of the last Uncertainty count against the next window", func(t *testing.T) {
		w := aligned()
		take(&w, 10*sec, 10*sec, 6)
		take(&w, 58*sec, 58*sec, 4) // within the last 5.08s
		rem, _, _ := w.State(limit, window, 60*sec)
		assert.Equal(t, 6.0, rem, "the four count at the start of the next window")
		got := take(&w, 60*sec, 60*sec, 7)
		for _, at := range got[:6] {
			assert.Equal(t, 60*sec, at)
		}
		// The seventh waits until the four are a window and the margin
		// old (58s + 80ms, plus the rounding of when they went).
		assert.GreaterOrEqual(t, got[6], 118*sec+lag)
		assert.Less(t, got[6], 118*sec+lag+sec/1000)
	})
	t.Run("a burst at the very end blocks the next window until it is a window old", func(t *testing.T) {
		w := aligned()
		take(&w, 59*sec+900*int64(time.Millisecond), 59*sec+900*int64(time.Millisecond), 10)
		assert.False(t, w.Idle(limit, window, 60*sec))
		r := w.Earliest(limit, window, 60*sec, 60*sec, 1)
		assert.GreaterOrEqual(t, r, 119*sec+900*int64(time.Millisecond)+lag)
		assert.True(t, w.Idle(limit, window, 120*sec+lag))
	})
	t.Run("a server's count adds no tail", func(t *testing.T) {
		w := aligned()
		// At 58s the server reports 9 used: they are in its window, which
		// ends no later than the local one, so none counts in the next.
		w.Reconcile(limit, window, 58*sec, &QuotaUpdate{Limit: Every(limit, time.Minute), Remaining: 1, HasRemaining: true, ResetIn: time.Second, HasReset: true}, 0, 0)
		require.Equal(t, 9.0, w.Used)
		require.Equal(t, int64(0), w.Start)
		rem, _, _ := w.State(limit, window, 60*sec)
		assert.Equal(t, 10.0, rem)
	})
	t.Run("realigned units count as granted at the report", func(t *testing.T) {
		w := aligned()
		take(&w, 10*sec, 10*sec, 3)
		// At 20s a report puts the server's end at 43s to 45s: the local
		// window ends at 45s with the three, as if granted at 20s (25s
		// before its end: before its tail).
		w.Reconcile(limit, window, 20*sec, &QuotaUpdate{Limit: Every(limit, time.Minute), ResetIn: 24 * time.Second, HasReset: true}, 0, 0)
		require.Equal(t, -15*sec, w.Start)
		require.Equal(t, 3.0, w.Used)
		rem, _, _ := w.State(limit, window, 45*sec)
		assert.Equal(t, 10.0, rem, "the next window starts full")
		// Realigned at 44s, a second before the end at 45s, the units are
		// in the new window's tail.
		w = aligned()
		take(&w, 10*sec, 10*sec, 3)
		w.Reconcile(limit, window, 44*sec, &QuotaUpdate{Limit: Every(limit, time.Minute), ResetIn: 0, HasReset: true}, 0, 0)
		require.Equal(t, -15*sec, w.Start)
		rem, _, _ = w.State(limit, window, 45*sec)
		assert.Equal(t, 7.0, rem, "the three count in the next window")
	})
	t.Run("a server's count that holds the tail's units counts them again", func(t *testing.T) {
		w := aligned()
		take(&w, 58*sec, 58*sec, 4) // in the last 5.08s: the next window's tail
		// At 61s the server reports 4 used in its window, which ends between
		// 118s and 120s: maybe the four, maybe others (requests of other
		// clients, slower to arrive, that the tail would stop counting
		// before the server's window ends). The window takes the count on
		// top of the tail: 2 left, where the server may allow 6.
		w.Reconcile(limit, window, 61*sec, &QuotaUpdate{Limit: Every(limit, time.Minute), Remaining: 6, HasRemaining: true, ResetIn: 58 * time.Second, HasReset: true}, 0, 0)
		require.Equal(t, 60*sec, w.Start)
		rem, _, _ := w.State(limit, window, 61*sec)
		assert.Equal(t, 2.0, rem, "the count and the tail")
	})
	t.Run("realigned units of a slot after now count from their slot", func(t *testing.T) {
		w := aligned()
		take(&w, 20*sec, 50*sec, 1) // at 20s, a slot at 50s (behind a block)
		// At 20s a report puts the server's end at 52s to 54s: the local
		// window ends at 54s, and the unit, sent at 50s, is in its tail.
		w.Reconcile(limit, window, 20*sec, &QuotaUpdate{Limit: Every(limit, time.Minute), ResetIn: 33 * time.Second, HasReset: true}, 0, 0)
		require.Equal(t, -6*sec, w.Start)
		rem, _, _ := w.State(limit, window, 54*sec)
		assert.Equal(t, 9.0, rem, "the unit at 50s counts in the next window")
	})
}

// takeN takes n units one at a time, each at Earliest from the previous
// one's slot (from tmin), at instant now, and returns their slots.
func takeN(w *Window, limit float64, window, now, tmin int64, n int) []int64 {
	var got []int64
	for range n {
		at := w.Earliest(limit, window, now, tmin, 1)
		w.Take(limit, window, now, at, 1)
		got = append(got, at)
		tmin = at
	}
	return got
}

// TestPendingCountsInTheWindowOfTheLatestSlot (found by review): a new
// learned window (StartWindow) counts the grants the server may not have
// counted yet as granted at the key's latest slot; when that slot, booked
// under the defaults, is past the window's end, they count in the window
// holding it, whose next window they share a server window with — not
// at the end of the current one, where they count against its next
// window only.
func TestPendingCountsInTheWindowOfTheLatestSlot(t *testing.T) {
	const limit = 5
	window := int64(10 * time.Second)
	ms := int64(time.Millisecond)
	// At 191ms a report on a request sent at 0 puts the server's end at
	// 10.191s at the latest; two grants came after it, the latest booked
	// at 20.04s (the defaults' next window).
	now, latest := 191*ms, 20040*ms
	u := &QuotaUpdate{Limit: Every(limit, 10*time.Second), Remaining: 3, HasRemaining: true, ResetIn: 9329 * time.Millisecond, HasReset: true}
	w := StartWindow(window, now, 1, u)
	require.Equal(t, now, w.Start)
	w.Pending(limit, window, now, latest, 2)
	w.Reconcile(limit, window, now, u, 2, 1)
	// The unit at 20.04s is within a window of 30.04s: with it, a server
	// window holds at most five of the grants from 20.191s.
	got := takeN(&w, limit, window, latest, 20191*ms, 4)
	assert.GreaterOrEqual(t, got[3], latest+window, "the fourth grant after the slot at 20.04s waits until it is a window old")
}
