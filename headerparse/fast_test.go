package headerparse

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// imfFixdate is the fast path of httpDate: what it accepts, time.Parse
// must accept as the same instant (what it refuses goes on to
// http.ParseTime), and httpDate accepts what http.ParseTime does.
func checkIMFFixdate(t *testing.T, s string) {
	t.Helper()
	got, ok := imfFixdate(s)
	want, err := time.Parse(http.TimeFormat, s)
	if ok && (err != nil || !got.Equal(want)) {
		t.Fatalf("%q: imfFixdate %v, time.Parse %v, %v", s, got, want, err)
	}
	if s != trimOWS(s) {
		return // httpDate trims what http.ParseTime refuses
	}
	if _, ok := httpDate(s); ok != (err == nil) {
		if _, perr := http.ParseTime(s); ok != (perr == nil) {
			t.Fatalf("%q: httpDate ok=%v, http.ParseTime error %v", s, ok, perr)
		}
	}
}

func TestIMFFixdateMatchesTimeParse(t *testing.T) {
	for _, s := range []string{
		"Sun, 06 Nov 1994 08:49:37 GMT",
		"Tue, 29 Feb 2000 00:00:00 GMT", // leap century
		"Thu, 29 Feb 1900 00:00:00 GMT", // not a leap year
		"Thu, 29 Feb 2024 23:59:59 GMT",
		"Sat, 01 Jan 0000 00:00:00 GMT",
		"Sat, 29 Feb 0000 12:00:00 GMT",
		"Fri, 31 Dec 9999 23:59:59 GMT",
		"Thu, 01 Jan 1970 00:00:00 GMT",
		"Wed, 31 Dec 1969 23:59:59 GMT",
		"Mon, 31 Apr 2026 00:00:00 GMT",
		"Mon, 00 Jan 2026 00:00:00 GMT",
		"Mon, 01 Jan 2026 24:00:00 GMT",
		"Mon, 01 Jan 2026 23:60:00 GMT",
		"Mon, 01 Jan 2026 23:59:60 GMT",
		"Mon, 01 jan 2026 00:00:00 GMT",
		"mon, 01 Jan 2026 00:00:00 GMT",
		"Mox, 01 Jan 2026 00:00:00 GMT",
		"Mon, 01 Jan 2026 00:00:00 UTC",
		"Mon, 1 Jan 2026 00:00:00 GMT ",
		"Mon, 01 Jax 2026 00:00:00 GMT",
		"Mon, 0a Jan 2026 00:00:00 GMT",
		"Mon, 01 Jan 20x6 00:00:00 GMT",
	} {
		checkIMFFixdate(t, s)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		tm := time.Unix(rng.Int64N(253402300800+62167219200)-62167219200, 0).UTC() // years 0000-9999
		s := tm.Format(http.TimeFormat)
		checkIMFFixdate(t, s)
		if got, ok := imfFixdate(s); !ok || !got.Equal(tm) {
			t.Fatalf("%q: imfFixdate %v %v, want %v", s, got, ok, tm)
		}
	}
}

func FuzzIMFFixdate(f *testing.F) {
	f.Add("Sun, 06 Nov 1994 08:49:37 GMT")
	f.Add("Tue, 29 Feb 2000 00:00:00 GMT")
	f.Add("Thu, 29 Feb 1900 00:00:00 GMT")
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) != 29 {
			return
		}
		checkIMFFixdate(t, s)
	})
}

// classifyExact is a shortcut of classify: the same family for every name
// it knows, and those names are canonical with no meaningful suffix.
func TestClassifyExactAgreesWithClassify(t *testing.T) {
	known := 0
	for _, k := range []string{"Date", hXRLLimit, hXRLRemaining, hXRLReset, hXRLUsed, hXRLResource,
		"Ratelimit", "Ratelimit-Policy", "Retry-After",
		"X-Ratelimit-Limit-Requests", "Ratelimit-Limit", "date", "X-RateLimit-Limit", "Content-Type"} {
		f, id := classifyExact(k)
		if id == idNone {
			if f != 0 {
				t.Errorf("%q: not known, yet family %b", k, f)
			}
			continue
		}
		known++
		want, dyn := classify(k)
		if f != want || dyn || !isCanonical(k) {
			t.Errorf("%q: classifyExact %b, classify %b (dyn %v, canonical %v)", k, f, want, dyn, isCanonical(k))
		}
	}
	if known != 9 {
		t.Errorf("classifyExact knows %d of the 9 names", known)
	}
}

// Parse keeps its nil-for-none result when a quota was found and then
// dropped (a policy list whose end is malformed).
func TestParseNoQuotasIsNil(t *testing.T) {
	o := Parse(200, http.Header{"Ratelimit-Policy": {"10;w=1, 20;w=60, )"}}, time.Unix(0, 0))
	if o.Quotas != nil {
		t.Fatalf("Quotas = %#v, want nil", o.Quotas)
	}
}

// TestServerDateMemo: the remembered Date gives what parsing gives, only
// a later date replaces it, and a date far past the receipt is not kept.
func TestServerDateMemo(t *testing.T) {
	lastDate.Store(nil)
	t.Cleanup(func() { lastDate.Store(nil) })
	received := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	parse := func(raw string) time.Time {
		t.Helper()
		got, ok := serverDate(raw, received)
		want, wantOK := httpDate(raw)
		require.Equal(t, wantOK, ok, raw)
		require.True(t, want.Equal(got), "%s: %v, parsed %v", raw, got, want)
		return got
	}
	memo := func() string {
		if m := lastDate.Load(); m != nil {
			return m.raw
		}
		return ""
	}
	const d1, d2 = "Fri, 27 Nov 2026 12:00:00 GMT", "Fri, 27 Nov 2026 12:00:01 GMT"
	parse(d1)
	assert.Equal(t, d1, memo())
	parse(d1) // from the memo
	parse(d2)
	assert.Equal(t, d2, memo(), "a later date replaces it")
	parse(d1)
	assert.Equal(t, d2, memo(), "an earlier one does not")
	parse("Sat, 01 Jan 2028 00:00:00 GMT")
	assert.Equal(t, d2, memo(), "a wild clock is not kept")
	parse("Friday, 27-Nov-26 12:00:05 GMT") // RFC 850: parsed, kept
	assert.Equal(t, "Friday, 27-Nov-26 12:00:05 GMT", memo())
	parse("not a date")
	parse(" " + d1)
	assert.Equal(t, "Friday, 27-Nov-26 12:00:05 GMT", memo())

	// The memo cannot change a result: a memo holding a raw value maps
	// it to that value's own time.
	lastDate.Store(&dateMemo{raw: d2, t: parse(d2)})
	assert.True(t, parse(d2).Equal(time.Date(2026, 11, 27, 12, 0, 1, 0, time.UTC)))
}

// The header map's order is random; Parse's result is not: the same
// headers give the same quotas in the same order, also when there are more
// suffixed or non-canonical names than the scan keeps.
func TestParseIsDeterministic(t *testing.T) {
	azure := http.Header{}
	for i := range maxDyn + 8 {
		azure.Set(fmt.Sprintf("X-Ms-Ratelimit-Remaining-Subscription-%02d", i), fmt.Sprint(i))
	}
	kong := http.Header{
		"X-Ratelimit-Limit-Minute":     {"60"},
		"X-Ratelimit-Remaining-Minute": {"59"},
		"X-Ratelimit-Limit-Second":     {"5"},
		"X-Ratelimit-Remaining-Second": {"4"},
		"X-Ratelimit-Limit-Hour":       {"1000"},
		"X-Ratelimit-Remaining-Hour":   {"990"},
	}
	odd := http.Header{}
	for i := range maxOdd + 4 {
		// Non-canonical spellings of one header, set by direct assignment.
		name := []byte("x-ratelimit-remaining")
		for j := range name {
			if i>>(j%5)&1 == 1 && name[j] >= 'a' && name[j] <= 'z' {
				name[j] -= 'a' - 'A'
			}
		}
		odd[string(name)] = []string{fmt.Sprint(i)}
	}
	odd["x-ratelimit-limit"] = []string{"100"}
	for name, h := range map[string]http.Header{"azure": azure, "kong": kong, "odd": odd} {
		first := Parse(200, h, t0)
		require.NotEmpty(t, first.Quotas, name)
		for range 50 {
			require.Equal(t, first, Parse(200, h, t0), name)
		}
	}
}
