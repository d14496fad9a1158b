package headerparse

import (
	"strconv"
	"strings"
	"testing"
)

// refNumber is number's specification written plainly: a non-negative
// decimal of digits with at most one '.' between digits, trimmed of
// optional white space, at most 32 bytes, no more than maxCount; the value
// is strconv.ParseFloat's (correctly rounded).
func refNumber(s string) (float64, bool) {
	s = trimOWS(s)
	if s == "" || len(s) > 32 {
		return 0, false
	}
	dot := strings.IndexByte(s, '.')
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isDigit(c) && !(c == '.' && i == dot && i > 0 && i < len(s)-1) {
			return 0, false
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v > maxCount {
		return 0, false
	}
	return v, true
}

func checkNumber(t *testing.T, s string) {
	t.Helper()
	got, ok := number(s)
	want, wok := refNumber(s)
	if ok != wok || got != want {
		t.Fatalf("number(%q) = %v, %v; want %v, %v", s, got, ok, want, wok)
	}
}

func TestNumberMatchesParseFloat(t *testing.T) {
	for _, s := range []string{
		"", " ", "0", "7", "42", " 42 ", "\t42", "4102444800", "1470173023.123", "596.0",
		"999999999999999", "1000000000000000", "1000000000000001", "9999999999999999",
		"123456789012345678901234567890", "0000000000000000000000000000042",
		"1.", ".5", "1..2", "1.2.3", "-1", "+1", "1e3", "0x10", "Inf", "NaN", "4 2", "42a",
		"18446744073709551616", "0.000000000000001", "12345678901234.5", "1234567890123456.5",
	} {
		checkNumber(t, s)
	}
}

func FuzzNumber(f *testing.F) {
	for _, s := range []string{"0", "42", "4102444800", "1470173023.123", "999999999999999", "1e3", " 7 "} {
		f.Add(s)
	}
	f.Fuzz(checkNumber)
}
