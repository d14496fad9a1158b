package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The demo's summary names its storage without the query of its URL,
// which may hold a password (found by review: it printed --storage as
// given). pgx ignores sslpassword without an encrypted client key.
func TestDemoSummaryHidesStorageSecrets(t *testing.T) {
	storage := pgStorage(t) + "&sslpassword=qs-secret"
	code, out, errOut := runCLI("demo", "--requests", "2", "--limit", "100/1s", "--storage", storage)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "2 requests in")
	assert.Contains(t, out, "storage)")
	assert.NotContains(t, out+errOut, "qs-secret")
	assert.NotContains(t, out+errOut, "smartratelimit_schema")
}
