package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/smartratelimit/smartratelimit/internal/clock"
	"github.com/smartratelimit/smartratelimit/middleware"
)

// heldProbeServer holds the answer to its first request until a second
// request has arrived (or 10 s have passed), and records whether the
// second arrived while the first was still held.
type heldProbeServer struct {
	*httptest.Server
	second      chan struct{}
	probeIn     atomic.Bool // the first request arrived
	secondFirst atomic.Bool // the second request came before the first was answered
}

func newHeldProbeServer(t *testing.T) *heldProbeServer {
	s := &heldProbeServer{second: make(chan struct{})}
	var n atomic.Int64
	var answered atomic.Bool
	var once sync.Once
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			s.probeIn.Store(true)
			select {
			case <-s.second:
			case <-time.After(10 * time.Second):
			}
			answered.Store(true)
			return
		}
		if !answered.Load() {
			s.secondFirst.Store(true)
		}
		once.Do(func() { close(s.second) })
	}))
	t.Cleanup(s.Close)
	return s
}

// awaitProbe returns once the first request has arrived (its answer is
// then held, and the key's first-contact gate closed).
func (s *heldProbeServer) awaitProbe() {
	for !s.probeIn.Load() {
		time.Sleep(time.Millisecond)
	}
}

// The wait for a key's first response is bounded by the caller's max
// wait: a caller whose max wait is shorter than the probe's round trip
// goes on under the default limits once it is over, instead of waiting
// out the 2 s bound for everyone. On the fake clock, only the max wait
// (150ms of it) passes; the probe is held until the second request comes.
func TestFirstContactWaitStopsAtTheMaxWait(t *testing.T) {
	srv := newHeldProbeServer(t)
	fake := clock.NewFake(time.Now())
	c, _ := newClient(t, middleware.WithClock(fake), middleware.WithMaxWait(150*time.Millisecond))
	probe := make(chan error, 1)
	go func() { _, err := c.R().Get(srv.URL); probe <- err }()
	second := make(chan error, 1)
	go func() {
		// Sent once the probe is out: its gate is then closed.
		srv.awaitProbe()
		_, err := c.R().Get(srv.URL)
		second <- err
	}()
	// The memory backend's janitor sleeps on the fake clock too.
	require.True(t, fake.WaitForTimers(2, 5*time.Second), "the second caller waits for the probe")
	fake.Advance(150 * time.Millisecond)
	require.NoError(t, <-second)
	require.NoError(t, <-probe)
	assert.True(t, srv.secondFirst.Load(), "the second request was sent while the first was unanswered")
}

// With a context deadline and no max wait, the wait for the probe takes
// at most half the time left: the caller is sent with time to spare
// rather than waiting until its deadline ends it.
func TestFirstContactWaitLeavesTimeBeforeTheDeadline(t *testing.T) {
	srv := newHeldProbeServer(t)
	c, _ := newClient(t)
	probe := make(chan error, 1)
	go func() { _, err := c.R().Get(srv.URL); probe <- err }()
	srv.awaitProbe()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	resp, err := c.R().SetContext(ctx).Get(srv.URL)
	require.NoError(t, err, "sent after at most 0.75 s of its 1.5 s")
	assert.Equal(t, 200, resp.StatusCode())
	require.NoError(t, <-probe)
	assert.True(t, srv.secondFirst.Load(), "the second request was sent while the first was unanswered")
}
