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

// Redact returns a storage URL without its password, for messages and logs.
func Redact(storage string) string { return redact(storage) }

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		if i := strings.LastIndex(s, "@"); i >= 0 {
			return "…@" + s[i+1:]
		}
		return s
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.Redacted()
}
