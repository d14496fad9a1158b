package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/pgtest"
)

// newTest returns a Backend on a fresh schema, closed when t ends, with
// the DSN and schema it uses.
func newTest(t testing.TB, opts ...Option) (*Backend, string, string) {
	t.Helper()
	dsn := pgtest.DSN(t)
	schema := pgtest.Schema(t, dsn)
	b, err := New(context.Background(), dsn, append([]Option{WithSchema(schema), WithFailClosed()}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, dsn, schema
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func req(key string, maxWait time.Duration, defaults ...smartratelimit.Limit) smartratelimit.AcquireRequest {
	return smartratelimit.AcquireRequest{Key: key, Defaults: defaults, MaxWait: maxWait}
}
