package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
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

// Two limiters (as in two processes) share a key through PostgreSQL. A
// caller of B already holds a slot and sleeps until it when A learns a 429:
// B's caller does not go inside the block, which the shared table holds,
// but after it (found by review: only this process's blocks were checked
// after a sleep).
func TestPostgresBlockStopsSleepersOfOtherProcesses(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema := pgtest.Schema(t, dsn)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Second) // B's caller is asleep on its slot when the answer comes
		w.Header().Set("Retry-After", "4")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(srv.Close)
	open := func() srl.Backend {
		b, err := backend.Open(context.Background(), dsn+"&smartratelimit_schema="+schema+"&smartratelimit_fail=closed")
		require.NoError(t, err)
		t.Cleanup(func() { b.Close() })
		return b
	}
	defaults := middleware.WithDefaults(srl.Every(1, 2*time.Second))
	cA, _ := newClient(t, middleware.WithBackend(open()), defaults)
	_, lB := newClient(t, middleware.WithBackend(open()), defaults)
	key := keyOf(t, srv.URL)
	ctx := context.Background()

	status := make(chan int, 1)
	go func() { // A takes the first slot; its 429 comes a second later
		resp, err := cA.R().Get(srv.URL)
		if err != nil {
			status <- 0
			return
		}
		status <- resp.StatusCode()
	}()
	time.Sleep(300 * time.Millisecond)
	went := make(chan time.Time, 1)
	go func() { // B's caller gets the next slot (about 2 s on) and sleeps
		assert.NoError(t, lB.Wait(ctx, key))
		went <- time.Now()
	}()
	require.Equal(t, http.StatusTooManyRequests, <-status)
	st, err := lB.Status(ctx, key)
	require.NoError(t, err)
	require.True(t, st.BlockedUntil.After(time.Now()), "the block is in the shared table")
	at := <-went
	assert.False(t, at.Before(st.BlockedUntil), "B's caller went %v before the block A learned ended",
		st.BlockedUntil.Sub(at))
}
