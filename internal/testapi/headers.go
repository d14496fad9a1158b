package testapi

import (
	"net/http"
	"strconv"
	"time"
)

// seconds rounds ns up to whole seconds, as servers do for integer fields.
func seconds(ns int64) string { return strconv.FormatInt(ceilDiv(ns, int64(time.Second)), 10) }

// millis rounds ns up to whole milliseconds.
func millis(ns int64) string { return strconv.FormatInt(ceilDiv(ns, int64(time.Millisecond)), 10) }

// goDuration formats ns as a Go duration rounded up to the millisecond, the
// precision OpenAI sends ("1s", "6m0s", "20ms").
func goDuration(ns int64) string {
	return time.Duration(ceilDiv(ns, int64(time.Millisecond)) * int64(time.Millisecond)).String()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// writeLimitHeaders sets the style's fields for o.
func (h *Handler) writeLimitHeaders(hdr http.Header, o *outcome) {
	limit := h.requests.size
	switch h.cfg.Style {
	case StyleGitHub:
		hdr.Set("X-RateLimit-Limit", itoa(limit))
		hdr.Set("X-RateLimit-Remaining", itoa(o.reqRemaining))
		hdr.Set("X-RateLimit-Used", itoa(limit-o.reqRemaining))
		hdr.Set("X-RateLimit-Reset", seconds(o.now.UnixNano()+o.reqReset))
		hdr.Set("X-RateLimit-Resource", "core")
	case StyleIETF:
		hdr.Set("RateLimit-Policy", `"default";q=`+itoa(limit)+`;w=`+seconds(h.requests.window))
		hdr.Set("RateLimit", `"default";r=`+itoa(o.reqRemaining)+`;t=`+seconds(o.reqReset))
	case StyleIETFLegacy:
		hdr.Set("RateLimit-Limit", itoa(limit))
		hdr.Set("RateLimit-Remaining", itoa(o.reqRemaining))
		hdr.Set("RateLimit-Reset", seconds(o.reqReset))
		hdr.Set("RateLimit-Policy", itoa(limit)+`;w=`+seconds(h.requests.window))
	case StyleOpenAI:
		hdr.Set("X-Ratelimit-Limit-Requests", itoa(limit))
		hdr.Set("X-Ratelimit-Limit-Tokens", itoa(h.tokens.size))
		hdr.Set("X-Ratelimit-Remaining-Requests", itoa(o.reqRemaining))
		hdr.Set("X-Ratelimit-Remaining-Tokens", itoa(o.tokRemaining))
		hdr.Set("X-Ratelimit-Reset-Requests", goDuration(o.reqReset))
		hdr.Set("X-Ratelimit-Reset-Tokens", goDuration(o.tokReset))
		if !o.ok {
			hdr.Set("Retry-After-Ms", millis(o.retry))
		}
	case StyleNone:
		return
	}
	if !o.ok {
		hdr.Set("Retry-After", seconds(o.retry))
	}
}
