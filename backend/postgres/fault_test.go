package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/backend/memory"
	"github.com/smartratelimit/smartratelimit/internal/pgtest"
)

func newMemory(t *testing.T) srl.Backend {
	m, err := memory.New()
	require.NoError(t, err)
	return m
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestUnreachableFailClosed(t *testing.T) {
	ctx := ctxT(t)
	start := time.Now()
	_, err := New(ctx, "postgres://alice:s3cret@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", WithFailClosed())
	require.Error(t, err)
	assert.ErrorIs(t, err, srl.ErrBackendUnavailable)
	assert.NotErrorIs(t, err, srl.ErrRateLimited)
	assert.Contains(t, err.Error(), "127.0.0.1:1")
	assert.NotContains(t, err.Error(), "s3cret")
	assert.NotContains(t, err.Error(), "alice")
	assert.Less(t, time.Since(start), 10*time.Second)
	t.Log(err)
}

func TestUnreachableFailOpen(t *testing.T) {
	ctx := ctxT(t)
	var logs syncBuffer
	b, err := New(ctx, "postgres://alice:s3cret@127.0.0.1:1/test?sslmode=disable&connect_timeout=1",
		WithFallback(newMemory(t)), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	require.NoError(t, err)
	defer b.Close()
	assert.True(t, b.Degraded())
	assertDegradedFallback(t, ctx, b, &logs)
	assert.NotContains(t, logs.String(), "s3cret")
	assert.NotContains(t, logs.String(), "alice")
}

// TestUnreachableFailOpenByDefault: without WithFallback or
// WithFailClosed an in-memory backend takes over, logs once, and Status
// says degraded.
func TestUnreachableFailOpenByDefault(t *testing.T) {
	ctx := ctxT(t)
	var logs syncBuffer
	b, err := New(ctx, "postgres://alice:s3cret@127.0.0.1:1/test?sslmode=disable&connect_timeout=1",
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	require.NoError(t, err, "fails open by default")
	defer b.Close()
	assert.True(t, b.Degraded())
	_, isMemory := b.fallback.(*memory.Backend)
	assert.True(t, isMemory, "the default fallback is backend/memory")
	assertDegradedFallback(t, ctx, b, &logs)
}

// proxy forwards TCP connections to target until Stop, which also cuts
// every open connection; Start listens again on the same address.
type proxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target, conns: map[net.Conn]bool{}}
	p.Start("127.0.0.1:0")
	t.Cleanup(p.Stop)
	return p
}

func (p *proxy) Start(addr string) {
	var ln net.Listener
	var err error
	for range 50 { // the port may linger for a moment after Stop
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(p.t, err)
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close(); c.Close() }()
			go func() { _, _ = io.Copy(c, up); up.Close(); c.Close() }()
		}
	}()
}

func (p *proxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// viaProxy returns dsn with its host:port replaced by the proxy's.
func viaProxy(t *testing.T, dsn string) (*proxy, string) {
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	p := newProxy(t, u.Host)
	u.Host = p.addr
	q := u.Query()
	q.Set("connect_timeout", "1")
	u.RawQuery = q.Encode()
	return p, u.String()
}

func TestFailOpenAndRecover(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema := pgtest.Schema(t, dsn)
	p, pdsn := viaProxy(t, dsn)
	ctx := ctxT(t)
	var logs syncBuffer
	b, err := New(ctx, pdsn, WithSchema(schema), WithFallback(newMemory(t)),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	require.NoError(t, err)
	defer b.Close()
	lim := srl.Every(1000, time.Hour)
	r, err := b.Acquire(ctx, req("k", 0, lim))
	require.NoError(t, err)
	require.True(t, r.OK)

	p.Stop()
	for range 20 {
		r, err := b.Acquire(ctx, req("k", 0, lim))
		require.NoError(t, err, "served by the fallback")
		assert.True(t, r.OK)
	}
	assert.True(t, b.Degraded())
	st, err := b.Status(ctx, "k")
	require.NoError(t, err)
	assert.True(t, st.Degraded)
	assert.Equal(t, 1, strings.Count(logs.String(), "unreachable"), "logged once")

	p.Start(p.addr)
	require.Eventually(t, func() bool { return !b.Degraded() }, 5*time.Second, 50*time.Millisecond, "back on the database without a restart")
	st, err = b.Status(ctx, "k")
	require.NoError(t, err)
	assert.False(t, st.Degraded)
	assert.Equal(t, uint64(1), st.Seq, "the database's own state")
	assert.Contains(t, logs.String(), "reachable again")
}

func TestFailClosedDuringOutage(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema := pgtest.Schema(t, dsn)
	p, pdsn := viaProxy(t, dsn)
	ctx := ctxT(t)
	b, err := New(ctx, pdsn, WithSchema(schema), WithFailClosed())
	require.NoError(t, err)
	defer b.Close()
	_, err = b.Acquire(ctx, req("k", 0, srl.PerSecond(100)))
	require.NoError(t, err)
	p.Stop()
	_, err = b.Acquire(ctx, req("k", 0, srl.PerSecond(100)))
	require.Error(t, err)
	assert.ErrorIs(t, err, srl.ErrBackendUnavailable)
	assert.NotErrorIs(t, err, srl.ErrRateLimited)
	assert.Contains(t, err.Error(), p.addr)
	p.Start(p.addr)
	_, err = b.Acquire(ctx, req("k", 0, srl.PerSecond(100)))
	assert.NoError(t, err, "pgx reconnects")
}

// TestConnectionsKilled terminates the backend's connections over and over
// while goroutines acquire: pgx reconnects and the failed calls are retried.
func TestConnectionsKilled(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema := pgtest.Schema(t, dsn)
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	app := "srl_kill_" + hex.EncodeToString(rb[:])
	ctx := ctxT(t)
	for _, failClosed := range []bool{true, false} {
		opts := []Option{WithSchema(schema)}
		if failClosed {
			opts = append(opts, WithFailClosed())
		} else {
			opts = append(opts, WithFallback(newMemory(t)), WithLogger(slog.New(slog.DiscardHandler)))
		}
		b, err := New(ctx, dsn+"&application_name="+app, opts...)
		require.NoError(t, err)

		killer, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		stop := make(chan struct{})
		var kills atomic.Int64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				var n int64
				if err := killer.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n); err == nil {
					kills.Add(n)
				}
			}
		}()
		var calls, failures, degraded atomic.Int64
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					_, err := b.Acquire(ctx, req("k", 0, srl.Every(1e9, time.Hour)))
					calls.Add(1)
					if err != nil {
						failures.Add(1)
						assert.ErrorIs(t, err, srl.ErrBackendUnavailable)
					}
					if b.Degraded() {
						degraded.Add(1)
					}
				}
			}()
		}
		time.Sleep(2 * time.Second)
		close(stop)
		wg.Wait()
		killer.Close(ctx)
		t.Logf("fail closed %v: %d calls, %d connections killed, %d failed, %d served degraded",
			failClosed, calls.Load(), kills.Load(), failures.Load(), degraded.Load())
		assert.Greater(t, kills.Load(), int64(10))
		if failClosed {
			assert.Less(t, failures.Load(), calls.Load()/100+1, "nearly every call succeeds")
		} else {
			assert.Zero(t, failures.Load(), "fail open never fails")
		}
		r, err := b.Acquire(ctx, req("k", 0, srl.Every(1e9, time.Hour)))
		require.NoError(t, err)
		assert.True(t, r.OK)
		require.NoError(t, b.Close())
	}
}

func TestDatabaseClock(t *testing.T) {
	b, dsn, _ := newTest(t)
	ctx := ctxT(t)
	_, err := b.Acquire(ctx, req("k", 0, srl.PerMinute(1)))
	require.NoError(t, err)
	require.NoError(t, b.Observe(ctx, "k", srl.Update{BlockFor: 10 * time.Second}))
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var dbNow time.Time
	require.NoError(t, conn.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&dbNow))
	st, err := b.Status(ctx, "k")
	require.NoError(t, err)
	assert.WithinDuration(t, dbNow, st.LastUsed, time.Second)
	assert.WithinDuration(t, dbNow.Add(10*time.Second), st.BlockedUntil, time.Second)
	r, err := b.Acquire(ctx, req("k", 0, srl.PerMinute(1)))
	require.NoError(t, err)
	assert.True(t, r.Blocked)
	assert.InDelta(t, 10, r.Wait.Seconds(), 1, "waits are relative, measured on the database clock")
}

// assertDegradedFallback checks a backend serving from its fallback: the
// fallback enforces a limit, Status says degraded, and "unreachable" was
// logged exactly once.
func assertDegradedFallback(t *testing.T, ctx context.Context, b *Backend, logs *syncBuffer) {
	t.Helper()
	lim := srl.Every(2, time.Hour)
	for i := range 3 {
		r, err := b.Acquire(ctx, req("k", 0, lim))
		require.NoError(t, err)
		assert.Equal(t, i < 2, r.OK, "the fallback enforces the limit")
	}
	st, err := b.Status(ctx, "k")
	require.NoError(t, err)
	assert.True(t, st.Degraded)
	assert.Equal(t, 1, strings.Count(logs.String(), "unreachable"), "logged once: %s", logs.String())
}
