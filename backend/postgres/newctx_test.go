package postgres

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smartratelimit/smartratelimit"
)

// hungServer accepts TCP connections and never answers (a server that
// hangs, or a firewall dropping packets after the handshake); it returns
// its host:port.
func hungServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// New's caller context ending before the server answers (a deadline
// shorter than the 5 s connect timeout) counts as an unreachable server,
// as documented: failing closed, New fails with ErrBackendUnavailable (and
// the context's error); failing open, it starts degraded.
func TestNewCallerDeadlineOnHungServer(t *testing.T) {
	addr := hungServer(t)
	dsn := "postgres://u:secretpw@" + addr + "/db?sslmode=disable"

	t.Run("fail closed", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		b, err := New(ctx, dsn, WithFailClosed())
		if err == nil {
			b.Close()
			t.Fatal("New succeeded on a server that never answers")
		}
		if !errors.Is(err, smartratelimit.ErrBackendUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v; want ErrBackendUnavailable and context.DeadlineExceeded", err)
		}
		if msg := err.Error(); !strings.Contains(msg, addr) || strings.Contains(msg, "secretpw") {
			t.Errorf("err = %q; want host:port %s named and no password", msg, addr)
		}
	})

	t.Run("fail open", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		b, err := New(ctx, dsn, WithLogger(nil))
		if err != nil {
			t.Fatalf("New failed instead of starting degraded: %v", err)
		}
		defer b.Close()
		if !b.Degraded() {
			t.Fatal("not degraded")
		}
		r, err := b.Acquire(context.Background(), req("k", 0, smartratelimit.PerSecond(1)))
		if err != nil || !r.OK {
			t.Errorf("Acquire on the fallback = %+v, %v; want granted", r, err)
		}
	})
}
