package middleware

import (
	"net/http"
	"time"

	"github.com/go-resty/resty/v2"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/headerparse"
)

// RetryCondition is a resty retry condition that retries rate-limit
// responses: 429, and 503 or 403 that carry a retry hint or an exhausted
// quota. Transport errors are left to resty's other conditions.
func (l *Limiter) RetryCondition(r *resty.Response, err error) bool {
	if r == nil || r.RawResponse == nil {
		return false
	}
	switch r.StatusCode() {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusForbidden:
	default:
		return false
	}
	obs := l.responseParser(r.RawResponse.Request).Parse(r.StatusCode(), r.Header(), r.ReceivedAt())
	return obs.Limited
}

// RetryAfter is a resty RetryAfter function that waits the time the server
// gave (Retry-After, or the reset of an exhausted quota), or the default
// block when it gave none. A wait beyond the limiter's max wait (or at once
// for a fail-fast limiter) ends the retries with a [*srl.LimitError]. The
// before-request hook then also waits on the key's block, shared with
// every other caller.
func (l *Limiter) RetryAfter(_ *resty.Client, r *resty.Response) (time.Duration, error) {
	if r == nil || r.RawResponse == nil {
		return 0, nil
	}
	obs := l.responseParser(r.RawResponse.Request).Parse(r.StatusCode(), r.Header(), r.ReceivedAt())
	u := l.update(&obs, l.cfg.clock.Since(r.ReceivedAt()), nil)
	wait := u.BlockFor
	if wait <= 0 {
		wait = l.cfg.defaultBlock
	}
	maxWait := l.cfg.maxWait
	if l.cfg.failFast {
		maxWait = 0
	}
	if wait > maxWait {
		key := ""
		if t := l.tickets.get(r.Request); t != nil {
			key = t.key // scope, partition and key function included
		} else {
			key, _ = KeyOf(r.Request.URL)
		}
		return 0, l.refuse(&srl.LimitError{Key: key, Wait: wait, Blocked: true, Reason: srl.ReasonMaxWait})
	}
	return wait, nil
}

// EnableRetries makes c retry rate-limited responses up to n times at the
// time the server gave, capped by the limiter's max wait. It sets c's
// retry count, adds [Limiter.RetryCondition] and sets
// [Limiter.RetryAfter], and returns c.
func (l *Limiter) EnableRetries(c *resty.Client, n int) *resty.Client {
	return c.SetRetryCount(n).
		SetRetryMaxWaitTime(max(c.RetryMaxWaitTime, min(l.cfg.maxWait, srl.MaxWindow))).
		AddRetryCondition(l.RetryCondition).
		SetRetryAfter(l.RetryAfter)
}

// responseParser returns the header parser for a response's host.
func (l *Limiter) responseParser(req *http.Request) *headerparse.Parser {
	if req != nil && l.hostParser != nil {
		if u, err := fromURL(req.URL); err == nil {
			return l.parserFor(u.hostPort())
		}
	}
	return &l.parser
}
