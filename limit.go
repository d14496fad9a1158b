package smartratelimit

import (
	"fmt"
	"math"
	"time"
)

// Limit is a quota the limiter enforces: at most Limit units of Dimension
// in any window of Window length.
type Limit struct {
	// Name identifies the limit within its key ("burst", "1s"); limits with
	// the same Name and Dimension are the same limit.
	Name string `json:"name"`
	// Dimension is what the limit counts; empty means DimRequests.
	Dimension Dimension `json:"dimension"`
	// Limit is the number of units allowed per window; it must be positive.
	Limit float64 `json:"limit"`
	// Window is the window length; it must be positive.
	Window time.Duration `json:"window"`
}

// PerSecond returns a limit of n requests per second.
func PerSecond(n float64) Limit { return Every(n, time.Second) }

// PerMinute returns a limit of n requests per minute.
func PerMinute(n float64) Limit { return Every(n, time.Minute) }

// PerHour returns a limit of n requests per hour.
func PerHour(n float64) Limit { return Every(n, time.Hour) }

// Every returns a limit of n requests per window, named after the window
// (for example "1s", "1m0s").
func Every(n float64, window time.Duration) Limit {
	return Limit{Name: window.String(), Dimension: DimRequests, Limit: n, Window: window}
}

// MinLimit is the smallest limit that can be enforced (a millionth of a
// unit per window); smaller values from servers are ignored.
const MinLimit = 1e-6

// MaxWindow is the longest window a limit may have (one year). Longer
// windows from servers are clamped to it.
const MaxWindow = 366 * 24 * time.Hour

// Span is the window length the arithmetic enforces on a window whose
// phase is not the server's, in nanoseconds: the window stretched by a
// small safety margin (20ms plus a thousandth of the window, at most a
// tenth of it). A paced request that leaves up to that late (a timer
// waking late on a loaded machine) then cannot put one more request than
// the limit into the server's window: the limit's slots span slightly
// more than a window. (A window aligned with the server's lasts the
// window itself; the margin widens the part of it whose requests count
// against the next: see Window.)
func (l Limit) Span() int64 { return spanOf(int64(l.Window)) }

// SpanMargin is the fixed part of the safety margin added to every window.
const SpanMargin = 20 * time.Millisecond

// Validate reports whether l can be enforced; the error wraps ErrInvalidLimit.
func (l Limit) Validate() error {
	switch {
	case math.IsNaN(l.Limit) || math.IsInf(l.Limit, 0) || l.Limit < MinLimit:
		return fmt.Errorf("%w: limit %v must be a number of at least %g", ErrInvalidLimit, l.Limit, MinLimit)
	case l.Window <= 0 || l.Window > MaxWindow:
		return fmt.Errorf("%w: window %v must be positive and at most %v", ErrInvalidLimit, l.Window, MaxWindow)
	case len(l.Name) > 200 || len(l.Dimension) > 100:
		return fmt.Errorf("%w: name or dimension too long", ErrInvalidLimit)
	}
	return nil
}

// Same reports whether l and o name the same limit (Name and Dimension).
func (l Limit) Same(o Limit) bool {
	return l.Name == o.Name && l.Dimension.OrRequests() == o.Dimension.OrRequests()
}

// String formats l as "100 requests/1m0s (name)".
func (l Limit) String() string {
	s := fmt.Sprintf("%g %s/%v", l.Limit, l.Dimension.OrRequests(), l.Window)
	if l.Name != "" && l.Name != l.Window.String() {
		s += " (" + l.Name + ")"
	}
	return s
}
