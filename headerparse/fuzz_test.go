package headerparse

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// headText writes h as "Name: value" lines, the form FuzzParse reads.
func headText(h http.Header) string {
	var b strings.Builder
	for k, vs := range h {
		for _, v := range vs {
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// fuzzHeader builds a header from "Name: value" lines. Names starting with
// a lower-case letter are stored as is (as by direct map assignment), the
// others through Header.Add (canonical).
func fuzzHeader(head string) http.Header {
	h := http.Header{}
	for _, line := range strings.Split(head, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimLeft(v, " ")
		if k != "" && k[0] >= 'a' && k[0] <= 'z' {
			h[k] = append(h[k], v)
		} else {
			h.Add(k, v)
		}
	}
	return h
}

// FuzzParse checks the promises Parse makes for any input: no panic, known
// limits positive and finite, remaining counts non-negative, durations in
// [0, MaxWindow], at most maxQuotas quotas; with and without a Mapping.
func FuzzParse(f *testing.F) {
	for _, cases := range [][]parseCase{providerCases(), ietfEdgeCases(), garbageCases()} {
		for _, tc := range cases {
			f.Add(tc.status, headText(tc.h), int64(0), uint8(0))
		}
	}
	f.Add(429, "x-ratelimit-limit: 10\nX-My-Reset: 1500\nx-my-limit: 7;w=60\n", int64(time.Hour), uint8(2))
	f.Add(403, "retry-after: Thu, 26 Nov 2026 12:01:30 GMT\ndate: Thu, 26 Nov 2026 12:00:00 GMT\n", int64(-time.Hour), uint8(5))
	f.Fuzz(func(t *testing.T, status int, head string, skew int64, format uint8) {
		h := fuzzHeader(head)
		recv := t0.Add(time.Duration(skew))
		o := Parse(status, h, recv)
		checkInvariants(t, &o)
		if o.Status != status || !o.Received.Equal(recv) {
			t.Fatalf("status %d received %v", o.Status, o.Received)
		}
		p := Parser{Mapping: &Mapping{
			Limit: "X-My-Limit", Remaining: "x-my-left", Reset: "X-My-Reset", Used: "X-RateLimit-Used",
			RetryAfter: "X-My-Wait", ResetFormat: ResetFormat(format % 9), Window: time.Duration(skew),
		}}
		o = p.Parse(status, h, recv)
		checkInvariants(t, &o)
		// ParseInto a buffer left dirty by another response gives Parse's
		// result.
		dirty := p.Parse(429, http.Header{"Ratelimit-Policy": {`"a";q=1;w=1, "b";q=2;w=2, "c";q=3;w=3, "d";q=4;w=4, "e";q=5;w=5`}}, t0)
		p.ParseInto(&dirty, status, h, recv)
		if !reflect.DeepEqual(dirty, o) && !(len(dirty.Quotas) == 0 && len(o.Quotas) == 0) {
			t.Fatalf("ParseInto = %+v, Parse = %+v", dirty, o)
		}
		// Headers read by id say what they say when read by name.
		for _, p := range []*Parser{{}, &p} {
			o := p.Parse(status, h, recv)
			exactLookups = false
			byName := p.Parse(status, h, recv)
			exactLookups = true
			if !reflect.DeepEqual(o, byName) {
				t.Fatalf("by id %+v, by name %+v", o, byName)
			}
		}
	})
}
