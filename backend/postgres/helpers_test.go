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

// learn teaches b limits as a server's headers would (each full, in a
// window starting now): learned limits are aligned with the server's
// windows and grant their current window at once, where defaults and
// overrides are paced. Acquiring then needs no defaults.
func learn(t testing.TB, b smartratelimit.Backend, key string, lims ...smartratelimit.Limit) {
	t.Helper()
	var qs []smartratelimit.QuotaUpdate
	for _, l := range lims {
		qs = append(qs, smartratelimit.QuotaUpdate{Limit: l, Remaining: l.Limit, HasRemaining: true,
			ResetIn: time.Duration(l.Span()), HasReset: true})
	}
	if err := b.Observe(context.Background(), key, smartratelimit.Update{Quotas: qs}); err != nil {
		t.Fatalf("Observe: %v", err)
	}
}
