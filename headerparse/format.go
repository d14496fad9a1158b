package headerparse

import (
	"fmt"
	"strings"
)

// ResetFormat tells how a reset header expresses the moment a quota resets.
// The zero value, ResetAuto, guesses from the value itself.
type ResetFormat int

const (
	// ResetAuto guesses: a plain number above 1e12 is Unix epoch
	// milliseconds, above 1e9 Unix epoch seconds, otherwise seconds from
	// now; otherwise an HTTP-date, then an RFC 3339 / ISO 8601 time
	// (including Jira's minute precision "2006-01-02T15:04Z"), then a Go
	// duration ("6m0s").
	ResetAuto ResetFormat = iota
	// ResetDeltaSeconds is a number of seconds from now, decimals allowed ("30", "64.57").
	ResetDeltaSeconds
	// ResetDeltaMillis is a number of milliseconds from now ("600000").
	ResetDeltaMillis
	// ResetEpochSeconds is a Unix time in seconds, decimals allowed ("1470173023.123").
	ResetEpochSeconds
	// ResetEpochMillis is a Unix time in milliseconds ("1700000000000").
	ResetEpochMillis
	// ResetHTTPDate is an HTTP-date of RFC 9110 in any of its three forms.
	ResetHTTPDate
	// ResetRFC3339 is an RFC 3339 or ISO 8601 timestamp with a zone.
	ResetRFC3339
	// ResetDuration is a Go duration from now ("6m0s", "20ms", "4m12.172s").
	ResetDuration
)

var resetFormatNames = [...]string{
	ResetAuto:         "auto",
	ResetDeltaSeconds: "delta_seconds",
	ResetDeltaMillis:  "delta_ms",
	ResetEpochSeconds: "epoch_seconds",
	ResetEpochMillis:  "epoch_ms",
	ResetHTTPDate:     "http_date",
	ResetRFC3339:      "rfc3339",
	ResetDuration:     "duration",
}

// resetFormatAliases are other spellings ParseResetFormat accepts.
var resetFormatAliases = map[string]ResetFormat{
	"":             ResetAuto,
	"seconds":      ResetDeltaSeconds,
	"delta":        ResetDeltaSeconds,
	"delta_s":      ResetDeltaSeconds,
	"ms":           ResetDeltaMillis,
	"millis":       ResetDeltaMillis,
	"delta_millis": ResetDeltaMillis,
	"epoch":        ResetEpochSeconds,
	"epoch_s":      ResetEpochSeconds,
	"unix":         ResetEpochSeconds,
	"epoch_millis": ResetEpochMillis,
	"unix_ms":      ResetEpochMillis,
	"http-date":    ResetHTTPDate,
	"httpdate":     ResetHTTPDate,
	"rfc1123":      ResetHTTPDate,
	"iso8601":      ResetRFC3339,
	"iso":          ResetRFC3339,
	"go_duration":  ResetDuration,
}

// String returns the canonical name of f ("auto", "delta_seconds",
// "delta_ms", "epoch_seconds", "epoch_ms", "http_date", "rfc3339",
// "duration"), which ParseResetFormat accepts.
func (f ResetFormat) String() string {
	if f >= 0 && int(f) < len(resetFormatNames) {
		return resetFormatNames[f]
	}
	return fmt.Sprintf("ResetFormat(%d)", int(f))
}

// ParseResetFormat parses a reset format name: one of the names String
// returns, case-insensitive, with '-' accepted for '_', or a common alias
// ("seconds", "ms", "epoch", "unix", "unix_ms", "iso8601"). The error wraps
// ErrInvalidMapping.
func ParseResetFormat(s string) (ResetFormat, error) {
	name := strings.ToLower(strings.TrimSpace(s))
	if f, ok := resetFormatAliases[name]; ok {
		return f, nil
	}
	name = strings.ReplaceAll(name, "-", "_")
	for f, n := range resetFormatNames {
		if n == name {
			return ResetFormat(f), nil
		}
	}
	if f, ok := resetFormatAliases[name]; ok {
		return f, nil
	}
	return 0, fmt.Errorf("%w: unknown reset format %q (want one of %s)",
		ErrInvalidMapping, s, strings.Join(resetFormatNames[:], ", "))
}
