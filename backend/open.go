// Package backend opens a [smartratelimit.Backend] from a storage URL, as
// the Python library's storage="..." argument and every CLI --storage flag
// do:
//
//	memory                                   the in-process default (backend/memory)
//	postgres://user@host:5432/db?sslmode=…   shared through PostgreSQL (backend/postgres)
//	postgresql://…                           the same
//
// PostgreSQL URLs may carry the limiter's own parameters, removed before
// connecting: smartratelimit_schema, smartratelimit_table and
// smartratelimit_fail (open, the default: a local in-memory limiter takes
// over while the database is unreachable; or closed: calls fail with
// [smartratelimit.ErrBackendUnavailable]). redis:// and sqlite:// are
// reserved for backends to come and fail with [ErrUnsupportedStorage].
package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/backend/memory"
	"github.com/smartratelimit/smartratelimit/backend/postgres"
)

// ErrUnsupportedStorage reports a storage URL whose kind is not supported.
var ErrUnsupportedStorage = errors.New("smartratelimit: unsupported storage")

// Open returns the backend a storage URL names. Extra PostgreSQL options
// (pgOpts) apply to postgres URLs and come after those of the URL.
func Open(ctx context.Context, storage string, pgOpts ...postgres.Option) (srl.Backend, error) {
	scheme, _, _ := strings.Cut(storage, "://")
	switch strings.ToLower(scheme) {
	case "", "memory", "mem":
		if storage != "" && !strings.EqualFold(storage, "memory") && !strings.EqualFold(storage, "memory://") {
			return nil, fmt.Errorf("%w: %q: write just memory", ErrUnsupportedStorage, redact(storage))
		}
		return memory.New()
	case "postgres", "postgresql":
		dsn, opts, err := postgresOptions(storage)
		if err != nil {
			return nil, err
		}
		return postgres.New(ctx, dsn, append(opts, pgOpts...)...)
	case "redis", "rediss", "sqlite", "sqlite3":
		return nil, fmt.Errorf("%w: %s:// is not available yet (memory and postgres:// are)", ErrUnsupportedStorage, scheme)
	}
	return nil, fmt.Errorf("%w: %q (want memory or postgres://…)", ErrUnsupportedStorage, redact(storage))
}

// postgresOptions splits the limiter's own parameters off a PostgreSQL URL.
func postgresOptions(storage string) (string, []postgres.Option, error) {
	u, err := url.Parse(storage)
	if err != nil {
		return "", nil, fmt.Errorf("%w: unparseable PostgreSQL URL %q", ErrUnsupportedStorage, redact(storage))
	}
	q := u.Query()
	var opts []postgres.Option
	if v := q.Get("smartratelimit_schema"); v != "" {
		opts = append(opts, postgres.WithSchema(v))
	}
	if v := q.Get("smartratelimit_table"); v != "" {
		opts = append(opts, postgres.WithTable(v))
	}
	switch v := strings.ToLower(q.Get("smartratelimit_fail")); v {
	case "", "open":
	case "closed":
		opts = append(opts, postgres.WithFailClosed())
	default:
		return "", nil, fmt.Errorf("%w: smartratelimit_fail=%q: want open or closed", srl.ErrInvalidLimit, v)
	}
	for _, k := range []string{"smartratelimit_schema", "smartratelimit_table", "smartratelimit_fail"} {
		q.Del(k)
	}
	u.RawQuery = q.Encode()
	return u.String(), opts, nil
}

// Redact returns a storage URL or DSN for messages and logs: a URL loses
// its user info (user name and password), query (libpq reads password=
// and sslpassword= there too) and fragment; a keyword/value DSN
// ("host=db password='…'") keeps its keywords, with the value of every
// password keyword hidden. A string that is neither loses its query and
// anything up to its last '@'.
func Redact(storage string) string { return redact(storage) }

// hidden replaces a password keyword's value.
const hidden = "xxxxx"

func redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.Opaque == "" {
		u.User = nil
		u.RawQuery, u.ForceQuery = "", false
		u.Fragment, u.RawFragment = "", ""
		return u.String()
	}
	s = redactPasswords(s)
	if keywordValue(s) {
		return s
	}
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		s = "…@" + s[i+1:]
	}
	return s
}

// keywordValue reports whether s starts as a keyword/value DSN does: a
// keyword, optional spaces and '='.
func keywordValue(s string) bool {
	s = strings.TrimLeft(s, " \t\n\r\v\f")
	i := 0
	for i < len(s) && (s[i] == '_' || 'a' <= s[i] && s[i] <= 'z' || 'A' <= s[i] && s[i] <= 'Z' || i > 0 && '0' <= s[i] && s[i] <= '9') {
		i++
	}
	return i > 0 && strings.HasPrefix(strings.TrimLeft(s[i:], " \t\n\r\v\f"), "=")
}

// redactPasswords hides the value of every keyword ending in "password"
// (any case: password, sslpassword) followed by '=' in s, as libpq reads
// keyword/value strings: the value is quoted ('a b', with \' and \\
// escapes) or runs to the next space (with \ escapes). An unterminated
// quote hides the rest of s.
func redactPasswords(s string) string {
	const kw = "password"
	lower := []byte(s) // ASCII lower case: the same length as s
	for i, c := range lower {
		if 'A' <= c && c <= 'Z' {
			lower[i] = c + 'a' - 'A'
		}
	}
	var b strings.Builder
	done := 0 // s[:done] is written
	for from := 0; ; {
		j := bytes.Index(lower[from:], []byte(kw))
		if j < 0 {
			break
		}
		p := from + j + len(kw)
		from = p
		p = skipSpace(s, p)
		if p >= len(s) || s[p] != '=' {
			continue
		}
		p = skipSpace(s, p+1)
		b.WriteString(s[done:p])
		b.WriteString(hidden)
		done = valueEnd(s, p)
		from = done
	}
	if done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func skipSpace(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

// valueEnd returns where the keyword value starting at s[i] ends.
func valueEnd(s string, i int) int {
	quoted := i < len(s) && s[i] == '\''
	if quoted {
		i++
	}
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++ // escapes the next byte
		case quoted && c == '\'':
			return i + 1
		case !quoted && isSpace(c):
			return i
		}
	}
	return len(s)
}
