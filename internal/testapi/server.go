package testapi

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server is a [Handler] listening on an ephemeral port of 127.0.0.1, like
// [net/http/httptest.Server] but never on another address.
type Server struct {
	*Handler
	// URL is the base URL, "http://127.0.0.1:<port>", without a trailing slash.
	URL string

	srv       *http.Server
	serveDone chan struct{}
	conns     sync.WaitGroup // one per connection, from StateNew to StateClosed
	closeOnce sync.Once
	transport *http.Transport
}

// NewServer starts a server enforcing cfg. A bad cfg is an error wrapping
// [ErrInvalidConfig]. Call [Server.Close] when done.
func NewServer(cfg Config) (*Server, error) {
	h, err := NewHandler(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testapi: listen: %w", err)
	}
	s := &Server{
		Handler:   h,
		URL:       "http://" + ln.Addr().String(),
		serveDone: make(chan struct{}),
		transport: &http.Transport{MaxIdleConnsPerHost: 256},
	}
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ConnState:         s.connState,
	}
	go func() {
		defer close(s.serveDone)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// connState counts live connections. StateNew is reported by the Serve
// goroutine before the connection's own goroutine starts, so every Add
// happens before Serve returns.
func (s *Server) connState(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		s.conns.Add(1)
	case http.StateClosed, http.StateHijacked:
		s.conns.Done()
	}
}

// Client returns an HTTP client for this server whose idle connections
// Close releases. Plain [http.DefaultClient] works too.
func (s *Server) Client() *http.Client { return &http.Client{Transport: s.transport} }

// Close stops the server: it ends Latency sleeps, closes the listener and
// every connection, and returns once every goroutine the server started has
// finished. Calling it again does nothing.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.Handler.stop()
		_ = s.srv.Close()
		<-s.serveDone
		s.conns.Wait()
		s.transport.CloseIdleConnections()
	})
}
