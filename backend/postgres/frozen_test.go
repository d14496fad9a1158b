package postgres

import (
	"context"
	"errors"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/pgtest"
)

// freezableProxy forwards TCP to target until frozen; then it stops moving
// bytes but keeps the connections open (a network partition, a hung server).
type freezableProxy struct {
	ln     net.Listener
	frozen atomic.Bool
	// afterStartup freezes the client-to-server direction of each
	// connection after its first chunk (the startup message): the
	// connection is made, and the first statement never reaches the
	// server.
	afterStartup atomic.Bool
	mu           sync.Mutex
	conns        []net.Conn
}

func newFreezableProxy(t *testing.T, target string) *freezableProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezableProxy{ln: ln}
	pipe := func(dst, src net.Conn, up bool) {
		buf := make([]byte, 32<<10)
		for chunk := 0; ; chunk++ {
			n, err := src.Read(buf)
			for p.frozen.Load() || up && chunk > 0 && p.afterStartup.Load() {
				time.Sleep(10 * time.Millisecond)
			}
			if n > 0 {
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go pipe(s, c, true)
			go pipe(c, s, false)
		}
	}()
	t.Cleanup(func() {
		p.frozen.Store(false)
		ln.Close()
		p.afterStartup.Store(false)
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

// newFrozenTest returns a Backend whose connections go through a
// freezableProxy to the test database.
func newFrozenTest(t *testing.T, opts ...Option) (*Backend, *freezableProxy) {
	t.Helper()
	dsn := pgtest.DSN(t)
	schema := pgtest.Schema(t, dsn)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := newFreezableProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	b, err := New(context.Background(), u.String(), append([]Option{WithSchema(schema), WithLogger(nil)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	// Closed in the background: Close waits for the connections stuck on
	// the frozen network until their bound.
	t.Cleanup(func() { go b.Close() })
	return b, p
}

// frozenAcquires runs n Acquires at once on contexts without deadline and
// returns their errors, failing t unless all return within limit.
func frozenAcquires(t *testing.T, b *Backend, n int, limit time.Duration) []error {
	t.Helper()
	lim := smartratelimit.PerSecond(1000)
	errs := make(chan error, n)
	start := time.Now()
	for i := range n {
		go func() {
			_, err := b.Acquire(context.Background(), req("https://frozen.example:443/"+string(rune('a'+i)), time.Hour, lim))
			errs <- err
		}()
	}
	var out []error
	deadline := time.After(limit)
	for range n {
		select {
		case err := <-errs:
			out = append(out, err)
		case <-deadline:
			t.Fatalf("%d of %d Acquires still blocked %v after the network froze", n-len(out), n, limit)
		}
	}
	t.Logf("%d Acquires returned within %v", n, time.Since(start).Round(time.Millisecond))
	return out
}

// With the network to the database frozen (connections open, no packet
// moving: the server never sees the statement, so its statement_timeout
// cannot fire), Acquires on contexts without deadline are bounded on the
// client side (statement timeout + 1 s): failing open (the default), the
// fallback serves them, and the database is used again once the network
// thaws.
func TestFrozenNetworkFailsOpen(t *testing.T) {
	b, p := newFrozenTest(t, WithPoolSize(4))
	lim := smartratelimit.PerSecond(1000)
	if _, err := b.Acquire(context.Background(), req("k", time.Hour, lim)); err != nil {
		t.Fatal(err)
	}
	p.frozen.Store(true)
	for _, err := range frozenAcquires(t, b, 8, 8*time.Second) {
		if err != nil {
			t.Errorf("Acquire: %v; want the fallback's grant", err)
		}
	}
	if !b.Degraded() {
		t.Error("not degraded with the network frozen")
	}
	p.frozen.Store(false)
	for deadline := time.Now().Add(10 * time.Second); b.Degraded(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("still degraded 10 s after the network thawed")
		}
	}
	if _, err := b.Acquire(context.Background(), req("k", time.Hour, lim)); err != nil {
		t.Fatalf("Acquire after the thaw: %v", err)
	}
}

// Failing closed, the same Acquires fail with ErrBackendUnavailable within
// their bound instead of waiting for the kernel to give up (many minutes).
func TestFrozenNetworkFailsClosed(t *testing.T) {
	b, p := newFrozenTest(t, WithFailClosed(), WithStatementTimeout(500*time.Millisecond))
	if _, err := b.Acquire(context.Background(), req("k", time.Hour, smartratelimit.PerSecond(1000))); err != nil {
		t.Fatal(err)
	}
	p.frozen.Store(true)
	for _, err := range frozenAcquires(t, b, 8, 15*time.Second) {
		if !errors.Is(err, smartratelimit.ErrBackendUnavailable) {
			t.Errorf("Acquire: %v; want ErrBackendUnavailable", err)
		}
	}
	// Status and Observe are bounded too.
	for name, f := range map[string]func() error{
		"Status":  func() error { _, err := b.Status(context.Background(), "k"); return err },
		"Observe": func() error { return b.Observe(context.Background(), "k", smartratelimit.Update{}) },
	} {
		done := make(chan error, 1)
		go func() { done <- f() }()
		select {
		case err := <-done:
			if !errors.Is(err, smartratelimit.ErrBackendUnavailable) {
				t.Errorf("%s: %v; want ErrBackendUnavailable", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s still blocked 10 s after the network froze", name)
		}
	}
}

// A network that freezes right after the connection is made (the first
// statement never reaches the server) does not hang New on a context
// without deadline: its schema check is bounded like any round trip
// (statement timeout + 1 s). Failing open, New starts degraded; failing
// closed, it fails with ErrBackendUnavailable.
func TestNewOnNetworkFrozenAfterConnect(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema := pgtest.Schema(t, dsn)
	for _, closed := range []bool{false, true} {
		name := map[bool]string{false: "fail open", true: "fail closed"}[closed]
		t.Run(name, func(t *testing.T) {
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			p := newFreezableProxy(t, u.Host)
			p.afterStartup.Store(true)
			u.Host = p.ln.Addr().String()
			opts := []Option{WithSchema(schema), WithLogger(nil), WithStatementTimeout(500 * time.Millisecond)}
			if closed {
				opts = append(opts, WithFailClosed())
			}
			type result struct {
				b   *Backend
				err error
			}
			done := make(chan result, 1)
			start := time.Now()
			go func() {
				b, err := New(context.Background(), u.String(), opts...)
				done <- result{b, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(15 * time.Second):
				t.Fatal("New still blocked 15 s after the network froze")
			}
			t.Logf("New returned after %v", time.Since(start).Round(time.Millisecond))
			if r.b != nil {
				t.Cleanup(func() { go r.b.Close() })
			}
			if closed {
				if !errors.Is(r.err, smartratelimit.ErrBackendUnavailable) {
					t.Fatalf("New: %v; want ErrBackendUnavailable", r.err)
				}
				return
			}
			if r.err != nil {
				t.Fatalf("New: %v; want a degraded backend", r.err)
			}
			if !r.b.Degraded() {
				t.Error("not degraded with the network frozen")
			}
		})
	}
}
