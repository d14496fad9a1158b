package postgres

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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

// reopenAsOf makes b's table what schema version left it (stmts undo what
// came after, then the version is set back), opens it again with New, which
// must migrate it to schemaVersion, and returns the new Backend and a
// connection of its own, both closed when t ends.
func reopenAsOf(t *testing.T, b *Backend, dsn, schema string, version int, stmts ...string) (*Backend, *pgx.Conn) {
	t.Helper()
	ctx := ctxT(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	for _, s := range append(stmts, `UPDATE `+b.n.qVersion+` SET version = `+strconv.Itoa(version)) {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	b2, err := New(ctx, dsn, WithSchema(schema), WithFailClosed())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b2.Close() })
	if v, err := b2.n.currentVersion(ctx, conn); err != nil || v != schemaVersion {
		t.Fatalf("migrated from version %d to %d (%v); want %d", version, v, err, schemaVersion)
	}
	return b2, conn
}
