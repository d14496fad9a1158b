package smartratelimit

import (
	"context"
	"time"
)

// Backend stores the buckets of every key and decides, atomically, when a
// request may go. Implementations must be safe for concurrent use; the
// conformance suite in backend/backendtest checks every one the same way.
//
// A backend separates two outcomes: a decision (Reservation.OK false means
// "limited, nothing reserved") and a failure (a non-nil error, which must
// wrap ErrBackendUnavailable when the store could not be reached). A
// failure is never reported as a rate limit.
type Backend interface {
	// Acquire reserves the earliest slot at which the request fits every
	// limit of its key and returns how long to wait for it. When that slot is
	// more than req.MaxWait away it reserves nothing and returns OK false
	// with the wait that would have been needed. A cost larger than a whole
	// window of a limit returns an error wrapping ErrCostExceedsLimit.
	Acquire(ctx context.Context, req AcquireRequest) (Reservation, error)
	// Observe applies what a response said about key's limits. It must not
	// keep u.Quotas after it returns: callers reuse its storage.
	Observe(ctx context.Context, key string, u Update) error
	// Status returns the state of one key, or an error wrapping
	// ErrUnknownKey when the key is not tracked.
	Status(ctx context.Context, key string) (Status, error)
	// Keys lists the tracked keys in lexical order.
	Keys(ctx context.Context) ([]string, error)
	// SetLimits sets override limits for key, enforced instead of the
	// defaults and together with limits learned from headers. Nil removes
	// the override.
	SetLimits(ctx context.Context, key string, limits []Limit) error
	// Clear forgets one key.
	Clear(ctx context.Context, key string) error
	// ClearAll forgets every key.
	ClearAll(ctx context.Context) error
	// Close releases the backend's resources. Later calls fail with ErrClosed.
	Close() error
}

// Canceler is implemented by backends that can take back a reservation
// that will not be used (its caller's context ended while it waited, or a
// block made it take a later slot), so a cancelled waiter does not keep
// its slot. costs are the request's costs, as given to Acquire. Taking
// back is best effort: a slot in a window that is no longer the latest one
// stays spent, which is safe.
type Canceler interface {
	Cancel(ctx context.Context, key string, r Reservation, costs []Cost) error
}

// Forever is a MaxWait with no bound.
const Forever = time.Duration(1<<63 - 1)

// AcquireRequest asks for a slot for one request.
type AcquireRequest struct {
	// Key identifies the bucket (see the middleware's key function).
	Key string
	// Defaults are enforced when the key has neither overrides nor limits
	// learned from headers. The backend must not retain the slice.
	Defaults []Limit
	// Costs are what the request consumes per dimension. A limit counting
	// requests costs 1 unless Costs names DimRequests. A limit of any other
	// dimension costs the amount named here, or nothing when absent (the
	// request then only waits while that limit is exhausted). An amount
	// that is negative, NaN or infinite is an error wrapping ErrInvalidLimit.
	Costs []Cost
	// MaxWait is the longest acceptable wait; a slot further away reserves
	// nothing. Zero means the request must be able to go now (fail fast);
	// Forever means no bound.
	MaxWait time.Duration
}

// Cost is what a request consumes of one dimension.
type Cost struct {
	Dimension Dimension
	Amount    float64
}

// CostOf returns the cost of a request for limit l given costs.
func CostOf(l *Limit, costs []Cost) float64 {
	d := l.Dimension.OrRequests()
	for i := range costs {
		if costs[i].Dimension.OrRequests() == d {
			return costs[i].Amount
		}
	}
	if d == DimRequests {
		return 1
	}
	return 0
}

// Reservation is a backend's answer to Acquire.
type Reservation struct {
	// OK reports that a slot was reserved. When false, nothing was reserved.
	OK bool
	// Wait is how long from now until the slot (or, when !OK, until the
	// earliest slot that would have been given). Zero means go now.
	Wait time.Duration
	// Seq is the key's grant counter after this grant. Pass it back as
	// Update.SentSeq with the response so grants made while the request was
	// in flight are not counted twice.
	Seq uint64
	// Limit is the limit that decided the wait (the zero Limit when nothing
	// had to wait, or when a block decided it).
	Limit Limit
	// Blocked reports that the wait comes from a block set by a 429 or
	// Retry-After.
	Blocked bool
	// At is the slot on the backend's own time line, for Cancel.
	At int64
}

// Source tells where a key's limits come from.
type Source string

// Sources of limits.
const (
	SourceDefaults Source = "defaults"
	SourceHeaders  Source = "headers"
	SourceOverride Source = "override"
)

// QuotaUpdate is what a response said about one limit, resolved by the
// middleware for a backend: the limit (Window inferred when the server did
// not send one) and, when known, the remaining units and the time until the
// server's window ends, measured from the moment Observe is called.
type QuotaUpdate struct {
	Limit
	Remaining    float64
	HasRemaining bool
	ResetIn      time.Duration
	HasReset     bool
}

// Update is what a backend applies after a response.
type Update struct {
	// Quotas are the limits the server announced. They are merged into the
	// key's learned limits by Name and Dimension; learned limits the
	// response did not mention stay. A learned limit keeps the longest
	// window reported for it (windows are often inferred from the time to
	// reset, which only shows the full window right after a reset).
	Quotas []QuotaUpdate
	// BlockFor, when positive, blocks the key for every caller until that
	// long from now, at most MaxWindow (429, 503 with Retry-After, 403 with
	// nothing remaining).
	// After the block, traffic resumes paced from the block's end.
	BlockFor time.Duration
	// SentSeq is the Reservation.Seq of the request this response answers;
	// zero when unknown.
	SentSeq uint64
	// SentAgo is how long before the Observe call the request was sent;
	// zero when unknown. A report about a request sent before the latest
	// local window began describes an earlier window and lowers nothing.
	SentAgo time.Duration
}

// LimitStatus is the state of one limit of a key.
type LimitStatus struct {
	Limit
	// Source tells where the limit comes from.
	Source Source `json:"source"`
	// Remaining is how many units are left in the current window.
	Remaining float64 `json:"remaining"`
	// Reserved is how many units are reserved in future windows by waiting callers.
	Reserved float64 `json:"reserved"`
	// ResetAt is when the current window ends.
	ResetAt time.Time `json:"reset_at"`
}

// Utilization is the used fraction of the current window (0..1).
func (s LimitStatus) Utilization() float64 {
	if s.Limit.Limit <= 0 {
		return 0
	}
	u := 1 - s.Remaining/s.Limit.Limit
	if u < 0 {
		return 0
	}
	if u > 1 {
		return 1
	}
	return u
}

// Status is the state of one key.
type Status struct {
	Key string `json:"key"`
	// Limits are every limit the key enforces now. A key with no learned
	// or override limits reports its defaults once it has seen a request.
	Limits []LimitStatus `json:"limits"`
	// BlockedUntil is when a block from a 429 or Retry-After ends; zero when not blocked.
	BlockedUntil time.Time `json:"blocked_until"`
	// Seq counts the grants made for the key.
	Seq uint64 `json:"seq"`
	// LastUsed is the last time the key was acquired or observed.
	LastUsed time.Time `json:"last_used"`
	// Degraded reports that a fallback served the key because the shared
	// store was unreachable.
	Degraded bool `json:"degraded,omitempty"`
}

// Binding returns the limit closest to exhaustion (least remaining as a
// fraction of its limit, counting reservations) and whether there is one.
func (s *Status) Binding() (LimitStatus, bool) {
	best := -1
	var bestFrac float64
	for i, l := range s.Limits {
		f := (l.Remaining - l.Reserved) / l.Limit.Limit
		if best < 0 || f < bestFrac {
			best, bestFrac = i, f
		}
	}
	if best < 0 {
		return LimitStatus{}, false
	}
	return s.Limits[best], true
}
