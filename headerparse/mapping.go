package headerparse

import (
	"errors"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// ErrInvalidMapping reports a mapping spec or reset format name that cannot be used.
var ErrInvalidMapping = errors.New("headerparse: invalid mapping")

// Mapping is a custom header mapping for one API: which headers carry its
// limit, remaining count, reset and retry hint, and how the reset is
// written. It is for servers whose headers the standard formats do not
// cover or read wrongly (for example a reset in milliseconds from now,
// which no guess can tell from seconds).
//
// A Parser reads the mapped headers first; the standard formats still
// apply to every other header. A standard family whose headers the mapping
// names in part (say reset=X-RateLimit-Reset with reset_format=delta_ms)
// fills in what the mapping left out instead of reporting a second quota.
//
// Mappings are chosen per host by the caller: the middleware keeps a
// host→Mapping map and parses each response with a [Parser] holding the
// host's Mapping (or none).
type Mapping struct {
	// Limit, Remaining, Reset, Used and RetryAfter are header names
	// (case-insensitive); empty means not used. Remaining is derived as
	// Limit−Used, and Limit as Used+Remaining, when one of them is missing.
	// RetryAfter is read like Retry-After (seconds, decimals allowed, or an
	// HTTP-date) and also accepts a Go duration.
	Limit, Remaining, Reset, Used, RetryAfter string
	// ResetFormat is how the Reset header is written; ResetAuto guesses.
	ResetFormat ResetFormat
	// Window is the quota's window when the server does not send one; 0 = unknown.
	Window time.Duration
	// Name is the quota's name in the Observation; empty is allowed.
	Name string
	// Dimension is what the quota counts; empty means requests.
	Dimension srl.Dimension
}

// ParseMapping parses a mapping spec: comma-separated key=value pairs with
// the keys limit, remaining, reset, used and retry_after (header names),
// reset_format (see [ParseResetFormat]), window (a Go duration such as
// "60s", or whole seconds), name and dimension. For example:
//
//	limit=X-My-Limit,remaining=X-My-Left,reset=X-My-Reset,reset_format=delta_ms,window=60s
//
// Header names are stored in canonical form. At least one header must be
// named. Errors wrap [ErrInvalidMapping].
func ParseMapping(spec string) (Mapping, error) {
	var m Mapping
	if strings.TrimSpace(spec) == "" {
		return m, fmt.Errorf("%w: empty spec", ErrInvalidMapping)
	}
	seen := map[string]bool{}
	for _, pair := range strings.Split(spec, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(k)), "-", "_")
		v = strings.TrimSpace(v)
		if !ok || v == "" {
			return Mapping{}, fmt.Errorf("%w: %q is not key=value", ErrInvalidMapping, pair)
		}
		if seen[k] {
			return Mapping{}, fmt.Errorf("%w: key %q given twice", ErrInvalidMapping, k)
		}
		seen[k] = true
		var err error
		switch k {
		case "limit":
			m.Limit, err = headerName(k, v)
		case "remaining":
			m.Remaining, err = headerName(k, v)
		case "reset":
			m.Reset, err = headerName(k, v)
		case "used":
			m.Used, err = headerName(k, v)
		case "retry_after":
			m.RetryAfter, err = headerName(k, v)
		case "reset_format":
			m.ResetFormat, err = ParseResetFormat(v)
		case "window":
			m.Window, err = parseWindow(v)
		case "name":
			if len(v) > maxNameLen {
				err = fmt.Errorf("%w: name longer than %d bytes", ErrInvalidMapping, maxNameLen)
			}
			m.Name = v
		case "dimension":
			if len(v) > maxDimLen {
				err = fmt.Errorf("%w: dimension longer than %d bytes", ErrInvalidMapping, maxDimLen)
			}
			m.Dimension = srl.Dimension(v)
		default:
			err = fmt.Errorf("%w: unknown key %q (want limit, remaining, reset, used, retry_after, reset_format, window, name or dimension)", ErrInvalidMapping, k)
		}
		if err != nil {
			return Mapping{}, err
		}
	}
	if m.Limit == "" && m.Remaining == "" && m.Reset == "" && m.Used == "" && m.RetryAfter == "" {
		return Mapping{}, fmt.Errorf("%w: names no header (set limit, remaining, reset, used or retry_after)", ErrInvalidMapping)
	}
	return m, nil
}

func headerName(key, v string) (string, error) {
	for i := 0; i < len(v); i++ {
		if !isTchar(v[i]) {
			return "", fmt.Errorf("%w: %s=%q is not a header name", ErrInvalidMapping, key, v)
		}
	}
	return textproto.CanonicalMIMEHeaderKey(v), nil
}

func parseWindow(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.ParseUint(v, 10, 32)
		if nerr != nil {
			return 0, fmt.Errorf("%w: window %q is not a duration such as 60s", ErrInvalidMapping, v)
		}
		d = time.Duration(n) * time.Second
	}
	if d <= 0 || d > srl.MaxWindow {
		return 0, fmt.Errorf("%w: window %v must be positive and at most %v", ErrInvalidMapping, d, srl.MaxWindow)
	}
	return d, nil
}
