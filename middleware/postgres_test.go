package middleware_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/smartratelimit/smartratelimit/backend"
	"github.com/smartratelimit/smartratelimit/internal/pgtest"
	"github.com/smartratelimit/smartratelimit/internal/testapi"
	"github.com/smartratelimit/smartratelimit/middleware"
)

// No credential, user info or query string reaches the shared table.
func TestPostgresStoresNoSecrets(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema := pgtest.Schema(t, dsn)
	srv := newServer(t, testapi.Config{Limit: 100, Window: time.Hour, Style: testapi.StyleIETF})
	b, err := backend.Open(context.Background(), dsn+"&smartratelimit_schema="+schema)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	c, l := newClient(t, middleware.WithBackend(b), middleware.WithPartitionByAuthorization())
	secrets := []string{"hunter2", "sk-live-TOKEN", "qs-secret", "alice", "Bearer"}
	withUser := strings.Replace(srv.URL, "http://", "http://alice:hunter2@", 1)
	_, err = c.R().SetAuthToken("sk-live-TOKEN").Get(withUser + "/v1/items?api_key=qs-secret")
	require.NoError(t, err)
	_, err = c.R().SetHeader("Authorization", "Bearer sk-live-TOKEN").Get(srv.URL + "/v1/other?token=qs-secret")
	require.NoError(t, err)
	keys, err := l.Keys(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, keys)

	conn, err := pgx.Connect(context.Background(), dsn)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), "SELECT t::text, convert_from(t.key, 'UTF8') FROM "+
		pgx.Identifier{schema, "buckets"}.Sanitize()+" AS t")
	require.NoError(t, err)
	n := 0
	for rows.Next() {
		var row, key string
		require.NoError(t, rows.Scan(&row, &key))
		n++
		for _, s := range secrets {
			assert.NotContains(t, row, s)
			assert.NotContains(t, key, s)
		}
		assert.NotContains(t, key, "?")
		assert.NotContains(t, key, "/v1")
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, len(keys), n)
}
