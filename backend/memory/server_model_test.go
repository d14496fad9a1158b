package memory_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
)

// simServer is a fixed-window rate-limited API: windows of w from phase,
// limit units each, counted when a request arrives. round says how it
// reports its reset: exact (0), in whole seconds rounded up (1) or down
// (-1), as most servers send it.
type simServer struct {
	limit  int
	w      int64
	phase  int64
	round  int
	counts map[int64]int
}

func (s *simServer) window(t int64) int64 {
	d := t - s.phase
	if d < 0 {
		return -1 - (-d-1)/s.w
	}
	return d / s.w
}

// receive counts a request arriving at t and returns what the server
// reports: the units left in its window and the time until it ends.
func (s *simServer) receive(t int64) (remaining int, resetIn int64) {
	k := s.window(t)
	s.counts[k]++
	resetIn = s.phase + (k+1)*s.w - t
	switch sec := int64(time.Second); s.round {
	case 1:
		resetIn = (resetIn + sec - 1) / sec * sec
	case -1:
		resetIn = resetIn / sec * sec
	}
	return s.limit - s.counts[k], resetIn
}

type simEvent struct {
	at   int64
	kind int // 0 arrival, 1 send, 2 response
	res  srl.Reservation
	sent int64
	rem  int
	rst  int64
	recv int64
}

// runServerModel drives one key against a simServer: callers arrive in
// bursts and pauses, each takes a slot (no bound on the wait) and is sent
// at it; the server counts it d1 later and its report reaches the client
// d2 after that (d2 drawn per response, so reports arrive out of order),
// where it is observed as the middleware does (SentSeq, SentAgo, the reset
// counted from the receipt). It returns the most requests any server
// window counted.
func runServerModel(t *testing.T, seed uint64, srv *simServer, d1 int64, d2max int64, arrivals int) (most int, detail string) {
	rng := rand.New(rand.NewPCG(seed, 99))
	b, fc := newFake(t)
	key := "https://server-model.example:443"
	lim := srl.Limit{Name: "q", Limit: float64(srv.limit), Window: time.Duration(srv.w)}
	defaults := []srl.Limit{lim}
	var events []simEvent
	push := func(e simEvent) {
		i, _ := slices.BinarySearchFunc(events, e.at, func(e simEvent, at int64) int {
			if e.at <= at {
				return -1
			}
			return 1
		})
		events = slices.Insert(events, i, e)
	}
	// Callers arrive from instant 0; the defaults are the server's limit
	// (on the limiter's own phase) until the first report arrives.
	at := int64(0)
	for range arrivals {
		push(simEvent{at: at, kind: 0})
		switch rng.IntN(4) {
		case 0, 1: // the same burst
		case 2:
			at += rng.Int64N(srv.w / 5)
		default:
			at += rng.Int64N(2 * srv.w)
		}
	}
	for len(events) > 0 {
		e := events[0]
		events = events[1:]
		fc.Set(t0.Add(time.Duration(e.at)))
		switch e.kind {
		case 0:
			r, err := b.Acquire(bg, srl.AcquireRequest{Key: key, Defaults: defaults, MaxWait: srl.Forever})
			require.NoError(t, err)
			require.True(t, r.OK)
			push(simEvent{at: e.at + int64(r.Wait), kind: 1, res: r})
		case 1:
			rem, rst := srv.receive(e.at + d1)
			d2 := int64(0)
			if d2max > 0 {
				d2 = rng.Int64N(d2max)
			}
			push(simEvent{at: e.at + d1 + d2, kind: 2, res: e.res, sent: e.at, rem: rem, rst: rst, recv: e.at + d1})
		case 2:
			u := srl.Update{
				Quotas: []srl.QuotaUpdate{{Limit: lim, Remaining: float64(max(e.rem, 0)), HasRemaining: true,
					ResetIn: time.Duration(e.rst), HasReset: true}},
				SentSeq: e.res.Seq,
				SentAgo: time.Duration(max(e.at-e.sent, 1)),
			}
			if e.rem < 0 {
				u.BlockFor = time.Duration(e.rst)
			}
			require.NoError(t, b.Observe(bg, key, u))
		}
	}
	for k, n := range srv.counts {
		if n > most {
			most = n
			detail = fmt.Sprintf("server window %d [%v, %v)", k, time.Duration(srv.phase+k*srv.w), time.Duration(srv.phase+(k+1)*srv.w))
		}
	}
	return most, detail
}

// TestModelServerWindowsNeverOverfilled: a client that is the server's
// only caller, learning its limit and reset from every response, never
// makes a server window count more than the limit: reports arriving late
// and out of order, about requests sent long before, with resets exact or
// rounded to whole seconds either way, cause no burst. 60 sequences of
// 200 callers per case. (A learned window ends at the latest end the
// server's reports allow, lasts the server's window, and counts the units
// of its last Uncertainty against the next; windows of a few seconds or
// less, which whole-second resets cannot place, stay unaligned: no window
// of their Span holds more than the limit.)
func TestModelServerWindowsNeverOverfilled(t *testing.T) {
	for _, c := range []struct {
		name   string
		limit  int
		w      time.Duration
		d1, d2 time.Duration
		round  int
	}{
		{"instant responses, 10/min", 10, time.Minute, 0, 0, 0},
		{"instant responses, 20/10s", 20, 10 * time.Second, 0, 0, 0},
		{"late responses, 10/min", 10, time.Minute, 0, 300 * time.Millisecond, 0},
		{"late responses, 20/10s", 20, 10 * time.Second, 0, 300 * time.Millisecond, 0},
		{"late responses, 100/h", 100, time.Hour, 5 * time.Millisecond, 300 * time.Millisecond, 0},
		{"request and response latency, 10/min", 10, time.Minute, 10 * time.Millisecond, 300 * time.Millisecond, 0},
		{"instant responses, 5/s", 5, time.Second, 0, 0, 0},
		{"instant responses, 5/5s", 5, 5 * time.Second, 0, 0, 0},
		{"instant responses, 5/min", 5, time.Minute, 0, 0, 0},
		{"resets rounded up, 5/min", 5, time.Minute, 0, 0, 1},
		{"resets rounded down, 5/min", 5, time.Minute, 0, 0, -1},
		{"resets rounded down, late responses, 20/10s", 20, 10 * time.Second, 0, 300 * time.Millisecond, -1},
		{"resets rounded up, latency, 5/5s", 5, 5 * time.Second, 10 * time.Millisecond, 200 * time.Millisecond, 1},
		{"resets rounded down, 5/s", 5, time.Second, 0, 50 * time.Millisecond, -1},
		{"slow responses, 10/min", 10, time.Minute, 500 * time.Millisecond, 4 * time.Second, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := 0
			for seed := range uint64(60) {
				rng := rand.New(rand.NewPCG(seed, 3))
				srv := &simServer{limit: c.limit, w: int64(c.w), phase: rng.Int64N(int64(c.w)), round: c.round, counts: map[int64]int{}}
				most, detail := runServerModel(t, seed, srv, int64(c.d1), int64(c.d2), 200)
				if most > c.limit {
					if bad < 3 {
						t.Errorf("seed %d: %d requests in %s (limit %d)", seed, most, detail, c.limit)
					}
					bad++
				}
			}
			if bad > 0 {
				t.Errorf("%d of 60 sequences overfilled a server window", bad)
			}
		})
	}
}
