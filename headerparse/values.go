package headerparse

import (
	"math"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	srl "github.com/smartratelimit/smartratelimit"
)

// Bounds on what one response may make the parser read or produce.
const (
	maxQuotas   = 64   // quotas in one Observation
	maxItems    = 64   // members read from one list field
	maxLines    = 64   // field lines read for one field name
	maxOdd      = 16   // non-canonical header names of interest remembered by the key scan
	maxDyn      = 32   // header names with a meaningful suffix remembered by the key scan
	maxCount    = 1e15 // counts above this are garbage (RFC 9651 integers stop here)
	maxValueLen = 256  // longer scalar values (numbers, dates) are garbage
	maxNameLen  = 200  // quota names are cut to this length
	maxDimLen   = 100  // dimensions longer than this are dropped
	maxWindowS  = 366 * 24 * 3600.0
)

// trimOWS removes optional whitespace (SP and HTAB) around s.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// number parses a non-negative decimal such as "42", "596.0" or
// "1470173023.123". Signs, exponents, hex, "Inf" and "NaN" are refused, as
// are values above maxCount.
func number(s string) (float64, bool) {
	s = trimOWS(s)
	if s == "" || len(s) > 32 {
		return 0, false
	}
	var mant uint64
	digits, frac, dot := 0, 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case isDigit(c):
			mant = mant*10 + uint64(c-'0')
			digits++
			if dot {
				frac++
			}
		case c == '.' && !dot && i > 0 && i < len(s)-1:
			dot = true
		default:
			return 0, false
		}
	}
	var v float64
	if digits <= 15 { // mantissa and power of ten exact: correctly rounded
		v = float64(mant)
		if frac > 0 {
			v /= pow10[frac]
		}
	} else {
		var err error
		if v, err = strconv.ParseFloat(s, 64); err != nil {
			return 0, false
		}
	}
	if v > maxCount {
		return 0, false
	}
	return v, true
}

var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// listEnd returns the index of the first ',' or ';' of s (where a list
// member or its parameters begin), or len(s).
func listEnd(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == ',' || s[i] == ';' {
			return i
		}
	}
	return len(s)
}

// hasListSyntax reports whether s has a ',' or ';': more than a bare
// number.
func hasListSyntax(s string) bool { return listEnd(s) < len(s) }

// leadNumber parses the number before the first ',' or ';' of s, so that
// "100;w=60" and "10, 10;w=1" give 100 and 10.
func leadNumber(s string) (float64, bool) { return number(s[:listEnd(s)]) }

// optLimit returns v as a known limit when it is positive and finite.
func optLimit(v float64, ok bool) srl.Opt[float64] {
	if ok && v > 0 && v <= maxCount {
		return srl.Some(v)
	}
	return srl.Opt[float64]{}
}

// optCount returns v as a known remaining count when it is non-negative and finite.
func optCount(v float64, ok bool) srl.Opt[float64] {
	if ok && v >= 0 && v <= maxCount {
		return srl.Some(v)
	}
	return srl.Opt[float64]{}
}

// seconds converts a number of seconds to a duration clamped to
// [0, MaxWindow], rounded to the microsecond (a float64 Unix time such as
// 1470173023.123 is only good to about a quarter of a microsecond).
func seconds(v float64) time.Duration {
	switch {
	case !(v > 0): // also NaN
		return 0
	case v >= maxWindowS:
		return srl.MaxWindow
	}
	return time.Duration(math.Round(v*1e6)) * time.Microsecond
}

// clampDur clamps d to [0, MaxWindow].
func clampDur(d time.Duration) time.Duration {
	switch {
	case d < 0:
		return 0
	case d > srl.MaxWindow:
		return srl.MaxWindow
	}
	return d
}

// window returns d as a known window when it is positive, clamped to MaxWindow.
func window(d time.Duration) srl.Opt[time.Duration] {
	if d <= 0 {
		return srl.Opt[time.Duration]{}
	}
	return srl.Some(clampDur(d))
}

// goDuration parses an unsigned Go duration such as "6m0s", "20ms" or
// "4m12.172s", clamped to MaxWindow.
func goDuration(s string) (time.Duration, bool) {
	s = trimOWS(s)
	if s == "" || len(s) > 64 || !(isDigit(s[0]) || s[0] == '.') {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, false
	}
	return clampDur(d), true
}

// httpDate parses any of the three HTTP-date forms of RFC 9110.
func httpDate(s string) (time.Time, bool) {
	s = trimOWS(s)
	if len(s) < 20 || len(s) > 64 || !isLetter(s[0]) {
		return time.Time{}, false
	}
	if t, ok := imfFixdate(s); ok {
		return t, true
	}
	t, err := http.ParseTime(s)
	return t, err == nil
}

// imfFixdate parses the usual form "Sun, 06 Nov 1994 08:49:37 GMT" without
// the layout machinery of time.Parse; it accepts exactly what
// http.ParseTime accepts in that form (the weekday is checked for syntax
// only, as time.Parse does).
func imfFixdate(s string) (time.Time, bool) {
	if len(s) != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
		s[16] != ' ' || s[19] != ':' || s[22] != ':' || s[25:] != " GMT" || !isWeekday(s[:3]) {
		return time.Time{}, false
	}
	month := monthOf(s[8:11])
	day, ok1 := digits2(s[5:7])
	hh, ok2 := digits2(s[17:19])
	mm, ok3 := digits2(s[20:22])
	ss, ok4 := digits2(s[23:25])
	yh, ok5 := digits2(s[12:14])
	yl, ok6 := digits2(s[14:16])
	year := yh*100 + yl
	if month == 0 || !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || hh > 23 || mm > 59 || ss > 59 ||
		day < 1 || day > daysIn(month, year) {
		return time.Time{}, false
	}
	days := daysFromCivil(year, month, day)
	return time.Unix(days*86400+int64(hh*3600+mm*60+ss), 0).UTC(), true
}

// isWeekday reports whether s is an English three-letter weekday as HTTP
// dates write it ("Mon").
func isWeekday(s string) bool {
	switch s {
	case "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun":
		return true
	}
	return false
}

// monthOf returns the number (1-12) of an English three-letter month as
// HTTP dates write it ("Jan"), or 0.
func monthOf(s string) int {
	switch s {
	case "Jan":
		return 1
	case "Feb":
		return 2
	case "Mar":
		return 3
	case "Apr":
		return 4
	case "May":
		return 5
	case "Jun":
		return 6
	case "Jul":
		return 7
	case "Aug":
		return 8
	case "Sep":
		return 9
	case "Oct":
		return 10
	case "Nov":
		return 11
	case "Dec":
		return 12
	}
	return 0
}

// daysIn returns the days of a month (1-12) of the proleptic Gregorian
// calendar.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days from 1970-01-01 to a date of the
// proleptic Gregorian calendar (H. Hinnant's days_from_civil).
func daysFromCivil(year, month, day int) int64 {
	if month <= 2 {
		year--
	}
	era := year / 400
	if year < 0 {
		era = (year - 399) / 400
	}
	yoe := year - era*400
	mp := (month + 9) % 12
	doy := (153*mp+2)/5 + day - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era*146097+doe) - 719468
}

func digits2(s string) (int, bool) {
	if !isDigit(s[0]) || !isDigit(s[1]) {
		return 0, false
	}
	return int(s[0]-'0')*10 + int(s[1]-'0'), true
}

// isoLayouts are the ISO 8601 shapes seen in reset headers: RFC 3339 (with
// or without fractional seconds; Anthropic, Vimeo), Jira's minute precision
// "2006-01-02T15:04Z", and offsets without a colon.
var isoLayouts = [...]string{
	time.RFC3339,
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04Z0700",
	"2006-01-02 15:04:05Z07:00",
}

// isoTime parses an RFC 3339 or ISO 8601 timestamp with a time zone.
func isoTime(s string) (time.Time, bool) {
	s = trimOWS(s)
	if len(s) < 17 || len(s) > 64 || !isDigit(s[0]) || s[4] != '-' {
		return time.Time{}, false
	}
	for _, layout := range isoLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// ratio parses "used/limit" ("32/40") into used and limit.
func ratio(s string) (used, limit float64, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			u, ok1 := number(s[:i])
			l, ok2 := number(s[i+1:])
			return u, l, ok1 && ok2
		}
	}
	return 0, 0, false
}

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return 'a' <= (c|0x20) && (c|0x20) <= 'z' }
func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c | 0x20
	}
	return c
}

// hasPrefixFold reports whether s begins with prefix, ignoring ASCII case;
// prefix must be lower case.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if lower(s[i]) != prefix[i] {
			return false
		}
	}
	return true
}

// equalFold reports whether s equals the lower-case ASCII string t, ignoring case.
func equalFold(s, t string) bool { return len(s) == len(t) && hasPrefixFold(s, t) }

// hasSuffixFold reports whether s ends with the lower-case suffix, ignoring case.
func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && hasPrefixFold(s[len(s)-len(suffix):], suffix)
}

// isCanonical reports whether k is in the form textproto.CanonicalMIMEHeaderKey
// produces (so that a direct map lookup with a canonical name finds it).
func isCanonical(k string) bool {
	up := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if up && 'a' <= c && c <= 'z' || !up && 'A' <= c && c <= 'Z' {
			return false
		}
		up = c == '-'
	}
	return true
}

// toLower returns s in lower case; it allocates only when s has upper case.
func toLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = lower(b[j])
			}
			return string(b)
		}
	}
	return s
}

// clip cuts s to at most n bytes, at a UTF-8 character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
