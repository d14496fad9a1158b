package middleware

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/go-resty/resty/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/backend/memory"
)

func (l *Limiter) ticketCount() int { return l.tickets.count() }

// Every request's ticket ends with its Execute: success, an error status,
// a refusal, a transport error, retries and SetDoNotParseResponse.
func TestTicketsEndWithTheirRequests(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/limited" {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Header().Set("X-RateLimit-Limit", "1000")
		w.Header().Set("X-RateLimit-Remaining", "999")
		w.Header().Set("X-RateLimit-Reset", "60")
	}))
	defer srv.Close()
	l, err := New(WithFailFast())
	require.NoError(t, err)
	defer l.Close()
	c := l.Attach(resty.New())
	_, err = c.R().Get(srv.URL + "/ok")
	require.NoError(t, err)
	resp, err := c.R().SetDoNotParseResponse(true).Get(srv.URL + "/ok")
	require.NoError(t, err)
	resp.RawBody().Close()
	_, err = c.R().Get("http://127.0.0.1:1/refused") // transport error
	require.Error(t, err)
	_, err = c.R().Get(srv.URL + "/limited")
	require.NoError(t, err)
	_, err = c.R().Get(srv.URL + "/ok") // the key is blocked: refused at once
	require.True(t, errors.Is(err, srl.ErrRateLimited), "%v", err)
	l.EnableRetries(c, 2)
	_, err = c.R().Get(srv.URL + "/limited")
	require.Error(t, err)
	assert.Equal(t, 0, l.ticketCount())
}

// Requests beyond a shard's inline slots spill to its map: every request
// keeps its own ticket, found again until it is closed, from many
// goroutines at once.
func TestTicketTableSpills(t *testing.T) {
	var tt ticketTable
	const n = 2000
	reqs := make([]*resty.Request, n)
	c := resty.New()
	for i := range reqs {
		reqs[i] = c.R()
	}
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := g; i < n; i += 4 {
				tk := tt.open(reqs[i])
				tk.seq = uint64(i)
				if tt.open(reqs[i]) != tk {
					t.Errorf("request %d: a second open gave another ticket", i)
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
	require.Equal(t, n, tt.count())
	for i, r := range reqs {
		tk := tt.get(r)
		require.NotNil(t, tk, "request %d", i)
		require.Equal(t, uint64(i), tk.seq)
	}
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := g; i < n; i += 4 {
				tt.close(reqs[i], tt.get(reqs[i]))
			}
		}()
	}
	for range 4 {
		<-done
	}
	require.Equal(t, 0, tt.count())
	for _, r := range reqs {
		require.Nil(t, tt.get(r))
	}
}

// A probe whose learning panics (here in the user's OnLearn hook) still
// opens its key's first-contact gate when its ticket ends.
func TestPanickingProbeOpensItsGate(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-RateLimit-Limit", "1000")
		w.Header().Set("X-RateLimit-Remaining", "999")
		w.Header().Set("X-RateLimit-Reset", "60")
	}))
	defer srv.Close()
	l, err := New(WithHooks(Hooks{OnLearn: func(string, []srl.QuotaUpdate) { panic("hook") }}))
	require.NoError(t, err)
	defer l.Close()
	c := l.Attach(resty.New())
	func() {
		defer func() { assert.Equal(t, "hook", recover()) }()
		_, _ = c.R().Get(srv.URL)
	}()
	key, err := KeyOf(srv.URL)
	require.NoError(t, err)
	_, known := l.known.Load(key)
	assert.True(t, known, "the key is known after its probe ended")
	l.mu.Lock()
	assert.Empty(t, l.gates, "no gate left closed")
	l.mu.Unlock()
	assert.Zero(t, l.ticketCount())
}

// reset zeroes every field of a ticket but its buffers, which it keeps:
// a field added to ticket and not to reset fails here.
func TestTicketResetZeroesAllButBuffers(t *testing.T) {
	var tk ticket
	v := reflect.ValueOf(&tk).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		f = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem() // settable
		switch f.Kind() {
		case reflect.String:
			f.SetString("x")
		case reflect.Int64:
			f.SetInt(7)
		case reflect.Uint64:
			f.SetUint(7)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Struct: // buf
			tk.buf.quotas = make([]srl.QuotaUpdate, 0, 3)
			tk.buf.obs.Quotas = make([]srl.Quota, 0, 2)
		default:
			t.Fatalf("ticket.%s: kind %s not covered by this test", v.Type().Field(i).Name, f.Kind())
		}
	}
	tk.reset()
	for i := range v.NumField() {
		if name := v.Type().Field(i).Name; name != "buf" {
			assert.True(t, v.Field(i).IsZero(), "reset left ticket.%s", name)
		}
	}
	assert.Equal(t, 3, cap(tk.buf.quotas), "the buffers stay")
	assert.Equal(t, 2, cap(tk.buf.obs.Quotas), "the buffers stay")
}

// close hands the ticket back zeroed but for its buffers, from a slot or
// from the spill map alike: the next request to get it from the pool
// starts clean (a stale probe flag would open another probe's gate).
func TestClosedTicketsAreZero(t *testing.T) {
	var tt ticketTable
	c := resty.New()
	const n = ticketShards*ticketSlots + 100 // some spill
	reqs := make([]*resty.Request, n)
	tks := make([]*ticket, n)
	for i := range reqs {
		reqs[i] = c.R()
		tks[i] = tt.open(reqs[i])
		*tks[i] = ticket{key: "k", host: "h", seq: 1, sent: 2, probe: true, known: true, observed: true, buf: tks[i].buf}
	}
	spilled := 0
	for i := range tt {
		spilled += len(tt[i].spill)
	}
	require.Positive(t, spilled)
	for i, r := range reqs {
		tt.close(r, tks[i])
		buf := tks[i].buf
		assert.Equal(t, ticket{buf: buf}, *tks[i], "ticket %d after close", i)
	}
	assert.Zero(t, tt.count())
}

// A response without resty's receive stamp (a hand-made Response) counts
// as received now: its Retry-After blocks for all it says, with any
// backend and clock.
func TestUnstampedResponseCountsFromNow(t *testing.T) {
	for _, own := range []bool{true, false} {
		var opts []Option
		if !own {
			mem, err := memory.New()
			require.NoError(t, err)
			t.Cleanup(func() { mem.Close() })
			opts = append(opts, WithBackend(mem))
		}
		var blockFor time.Duration
		opts = append(opts, WithHooks(Hooks{OnThrottled: func(_ string, _ int, d time.Duration) { blockFor = d }}))
		l, err := New(opts...)
		require.NoError(t, err)
		t.Cleanup(func() { l.Close() })
		r := resty.New().R()
		tk := l.tickets.open(r)
		tk.key = "https://api.example.com:443"
		raw := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"30"}}}
		l.learnTicket(tk, &resty.Response{Request: r, RawResponse: raw})
		assert.InDelta(t, float64(30*time.Second), float64(blockFor), float64(time.Second), "own backend: %v", own)
		st, err := l.Status(t.Context(), tk.key)
		require.NoError(t, err)
		assert.WithinDuration(t, time.Now().Add(30*time.Second), st.BlockedUntil, time.Second, "own backend: %v", own)
		l.tickets.close(r, tk)
	}
}
