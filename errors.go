package smartratelimit

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrRateLimited reports that a request was not sent because a rate
	// limit would be exceeded; errors.As a [*LimitError] for the details.
	ErrRateLimited = errors.New("smartratelimit: rate limited")
	// ErrBackendUnavailable reports that the backend storing bucket state
	// could not be reached (or answered with an error). It is never reported
	// as ErrRateLimited.
	ErrBackendUnavailable = errors.New("smartratelimit: backend unavailable")
	// ErrClosed reports use of a limiter or backend after Close.
	ErrClosed = errors.New("smartratelimit: closed")
	// ErrInvalidLimit reports a limit or option that cannot be enforced.
	ErrInvalidLimit = errors.New("smartratelimit: invalid limit")
	// ErrCostExceedsLimit reports a request whose cost is larger than a
	// whole window of a limit, so it can never be sent under that limit.
	ErrCostExceedsLimit = errors.New("smartratelimit: request cost exceeds limit")
	// ErrUnknownKey reports a key the backend does not track.
	ErrUnknownKey = errors.New("smartratelimit: unknown key")
)

// Reason tells why a request was refused.
type Reason string

// Reasons carried by a [LimitError].
const (
	// ReasonMaxWait: the wait needed is longer than the configured max wait
	// (zero for fail-fast limiters).
	ReasonMaxWait Reason = "max_wait"
	// ReasonDeadline: the wait needed ends after the request context's deadline.
	ReasonDeadline Reason = "deadline"
	// ReasonCanceled: the request context ended while waiting.
	ReasonCanceled Reason = "canceled"
)

// LimitError is returned (wrapped) when a request is refused by the
// limiter. It matches ErrRateLimited with errors.Is.
type LimitError struct {
	// Key is the bucket key (scheme://host:port plus scope and partition).
	Key string
	// Wait is how long from the refusal the request would have had to wait.
	Wait time.Duration
	// Limit is the limit that binds (zero when the key was blocked by a
	// 429 or Retry-After rather than by a limit).
	Limit Limit
	// Blocked reports that the key is blocked by a server's 429 or Retry-After.
	Blocked bool
	// Reason tells why the wait was refused.
	Reason Reason
	// Err is the context error for ReasonCanceled and ReasonDeadline.
	Err error
}

func (e *LimitError) Error() string {
	why := ""
	switch {
	case e.Blocked:
		why = " (blocked by the server)"
	case e.Limit.Limit > 0:
		why = " (" + e.Limit.String() + ")"
	}
	msg := fmt.Sprintf("smartratelimit: %s rate limited%s: retry in %v", e.Key, why, e.Wait.Round(time.Millisecond))
	if e.Reason != "" {
		msg += " [" + string(e.Reason) + "]"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *LimitError) Is(target error) bool { return target == ErrRateLimited }

// Unwrap returns the context error, if any.
func (e *LimitError) Unwrap() error { return e.Err }
