package smartratelimit

import (
	"encoding/json"
	"time"
)

// Opt is a value that may be unknown. The zero value is unknown. A server
// that did not say something leaves it unknown: it is never read as zero.
type Opt[T any] struct {
	Value T
	Valid bool
}

// Some returns a known value.
func Some[T any](v T) Opt[T] { return Opt[T]{Value: v, Valid: true} }

// Get returns the value and whether it is known.
func (o Opt[T]) Get() (T, bool) { return o.Value, o.Valid }

// Or returns the value when known, else def.
func (o Opt[T]) Or(def T) T {
	if o.Valid {
		return o.Value
	}
	return def
}

// MarshalJSON encodes an unknown value as null.
func (o Opt[T]) MarshalJSON() ([]byte, error) {
	if !o.Valid {
		return []byte("null"), nil
	}
	return json.Marshal(o.Value)
}

// UnmarshalJSON decodes null as unknown.
func (o *Opt[T]) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*o = Opt[T]{}
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*o = Some(v)
	return nil
}

// Dimension is what a quota counts.
type Dimension string

// The dimensions servers announce. Any other string is allowed too (for
// example a vendor's own unit); it is compared as is.
const (
	DimRequests           Dimension = "requests"
	DimTokens             Dimension = "tokens"
	DimInputTokens        Dimension = "input_tokens"
	DimOutputTokens       Dimension = "output_tokens"
	DimBytes              Dimension = "bytes"
	DimPoints             Dimension = "points"
	DimConcurrentRequests Dimension = "concurrent_requests"
)

// OrRequests returns d, or DimRequests when d is empty.
func (d Dimension) OrRequests() Dimension {
	if d == "" {
		return DimRequests
	}
	return d
}

// Quota is one quota a server announced in a response. Every field the
// server did not send is unknown (Valid false).
type Quota struct {
	// Name is the policy name ("burst", "core", "tokens"); empty when the
	// server gave none.
	Name string `json:"name"`
	// Dimension is what the quota counts; DimRequests unless the server said otherwise.
	Dimension Dimension `json:"dimension"`
	// Limit is how many units the quota allows per window.
	Limit Opt[float64] `json:"limit"`
	// Remaining is how many units are left in the current window.
	Remaining Opt[float64] `json:"remaining"`
	// ResetIn is how long after the response was received the quota resets
	// (or more quota arrives). Absolute times were converted against the
	// response's Date header, so skewed clocks change nothing. Never negative.
	ResetIn Opt[time.Duration] `json:"-"`
	// Window is the length of the quota's window when the server said it
	// (or the provider documents it).
	Window Opt[time.Duration] `json:"-"`
	// PartitionKey is the IETF pk parameter (or a vendor's equivalent) when sent.
	PartitionKey string `json:"partition_key,omitempty"`
	// Source names the header family the quota came from, for example
	// "x-ratelimit", "ietf-draft10", "openai", "anthropic".
	Source string `json:"source,omitempty"`
}

// Observation is what one response said about rate limits.
type Observation struct {
	// Status is the response's HTTP status code.
	Status int
	// Received is when the response was received (the parser's time argument).
	Received time.Time
	// Quotas lists every quota found, family by family, each in the order
	// its headers list them (headers whose names carry a suffix in the
	// order of their names): the same headers always give the same list.
	Quotas []Quota
	// RetryAfter is how long the server asked the client to wait, from
	// Retry-After, retry-after-ms, X-Retry-In and vendor equivalents.
	RetryAfter Opt[time.Duration]
	// Limited reports that the response itself is a rate-limit rejection:
	// 429; 503 with a retry hint; 403 with a retry hint or an exhausted quota.
	Limited bool
}

// Binding returns the quota that binds now: the one with the least
// remaining (as a fraction of its limit when both are known), and whether
// there is any. A quota with no remaining value binds only if no other
// quota has one.
func (o *Observation) Binding() (Quota, bool) {
	best := -1
	for i := range o.Quotas {
		if best < 0 || lessRemaining(&o.Quotas[i], &o.Quotas[best]) {
			best = i
		}
	}
	if best < 0 {
		return Quota{}, false
	}
	return o.Quotas[best], true
}

func lessRemaining(a, b *Quota) bool {
	if a.Remaining.Valid != b.Remaining.Valid {
		return a.Remaining.Valid
	}
	if !a.Remaining.Valid {
		return false
	}
	fa, fb := fraction(a), fraction(b)
	if fa != fb {
		return fa < fb
	}
	return a.Remaining.Value < b.Remaining.Value
}

func fraction(q *Quota) float64 {
	if q.Limit.Valid && q.Limit.Value > 0 {
		return q.Remaining.Value / q.Limit.Value
	}
	return q.Remaining.Value
}

// ResetAt returns the time q resets, on the receiver's clock.
func (o *Observation) ResetAt(q Quota) (time.Time, bool) {
	if !q.ResetIn.Valid {
		return time.Time{}, false
	}
	return o.Received.Add(q.ResetIn.Value), true
}

// Empty reports whether the response said nothing about rate limits.
func (o *Observation) Empty() bool {
	return len(o.Quotas) == 0 && !o.RetryAfter.Valid && !o.Limited
}
