// Package pgtest gives tests a PostgreSQL DSN and a schema of their own.
//
// The DSN comes from the SMARTRATELIMIT_TEST_POSTGRES environment variable
// (default postgres://postgres@127.0.0.1:5432/test?sslmode=disable). When
// nothing answers there, tests are skipped, except under CI=true, where
// they fail.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the environment variable holding the test DSN.
const EnvDSN = "SMARTRATELIMIT_TEST_POSTGRES"

// DefaultDSN is used when EnvDSN is unset.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DSN returns the test DSN after checking that the server answers; it
// skips tb (fails it when CI=true) otherwise.
func DSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		dsn = DefaultDSN
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		err = conn.Ping(ctx)
		conn.Close(ctx)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL unreachable (set %s): %v", EnvDSN, err)
		}
		tb.Skipf("PostgreSQL unreachable; set %s to a reachable DSN to run this test", EnvDSN)
	}
	return dsn
}

// Schema returns a fresh, random schema name (not created) and drops the
// schema with everything in it when tb ends.
func Schema(tb testing.TB, dsn string) string {
	tb.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "srl_test_" + hex.EncodeToString(b[:])
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Errorf("dropping schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			tb.Errorf("dropping schema %s: %v", name, err)
		}
	})
	return name
}
