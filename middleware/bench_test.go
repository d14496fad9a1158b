package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/go-resty/resty/v2"
	"golang.org/x/time/rate"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/middleware"
)

// huge never makes a request wait, so the benchmarks measure the
// limiter's own cost.
var huge = middleware.WithDefaults(srl.Every(1e12, 3600e9))

func githubHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-RateLimit-Limit", "1000000000")
		h.Set("X-RateLimit-Remaining", "999999999")
		h.Set("X-RateLimit-Used", "1")
		h.Set("X-RateLimit-Reset", "4102444800")
		h.Set("X-RateLimit-Resource", "core")
		w.Write([]byte(`{"ok":true}`))
	})
}

func benchResty(b *testing.B, c *resty.Client, url string) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.R().Get(url)
			if err != nil || resp.StatusCode() != 200 {
				b.Fatal(err, resp)
			}
		}
	})
}

// BenchmarkRestyBare is the baseline: a resty request to an httptest
// server without a limiter.
func BenchmarkRestyBare(b *testing.B) {
	srv := httptest.NewServer(githubHandler())
	defer srv.Close()
	benchResty(b, resty.New(), srv.URL)
}

// BenchmarkRestyLimited is the same request with the limiter attached;
// the server sends GitHub headers, so every response is learned.
func BenchmarkRestyLimited(b *testing.B) {
	srv := httptest.NewServer(githubHandler())
	defer srv.Close()
	c, l, err := middleware.Client(huge)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	benchResty(b, c, srv.URL)
}

// BenchmarkLimiterWait is the limiter's wait path on one hot key, next to
// x/time/rate's Wait on one Limiter.
func BenchmarkLimiterWait(b *testing.B) {
	l, err := middleware.New(huge)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Wait(ctx, "https://api.example.com:443"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkXRateWait(b *testing.B) {
	lim := rate.NewLimiter(rate.Limit(1e12/3600), 1e9)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := lim.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRestyOverhead measures the limiter's share of a resty request
// in one run: each iteration sends one request through a bare client and
// one through a client with the limiter attached (alternating which goes
// first) to the same httptest server, so drift in the machine's load hits
// both alike. It reports the median of each and the overhead of the
// limited request over the bare one (target: at most 5%).
func BenchmarkRestyOverhead(b *testing.B) {
	srv := httptest.NewServer(githubHandler())
	defer srv.Close()
	bare := resty.New()
	limited, l, err := middleware.Client(huge)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	mb, ml := alternate(b, bare, limited, srv.URL)
	b.ReportMetric(float64(mb.Nanoseconds()), "bare-ns")
	b.ReportMetric(float64(ml.Nanoseconds()), "limited-ns")
	b.ReportMetric(100*(float64(ml)/float64(mb)-1), "overhead-%")
}

// BenchmarkHookCost is BenchmarkRestyOverhead without the network: both
// clients get their response from a transport that answers at once, so
// the difference of the medians is what the limiter's hooks cost in
// instructions, without the cache misses a real round trip brings.
func BenchmarkHookCost(b *testing.B) {
	bare := resty.New().SetTransport(githubTransport{})
	l, err := middleware.New(huge)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	limited := l.Attach(resty.New().SetTransport(githubTransport{}))
	mb, ml := alternate(b, bare, limited, "https://api.example.com/x")
	b.ReportMetric(float64(ml.Nanoseconds()-mb.Nanoseconds()), "hook-ns")
}

// alternate sends one GET to url through bare and one through limited per
// iteration, alternating which goes first, and returns the median time of
// each.
func alternate(b *testing.B, bare, limited *resty.Client, url string) (time.Duration, time.Duration) {
	send := func(c *resty.Client) time.Duration {
		start := time.Now()
		resp, err := c.R().Get(url)
		d := time.Since(start)
		if err != nil || resp.StatusCode() != 200 {
			b.Fatal(err, resp)
		}
		return d
	}
	send(bare) // connections and the key's first contact
	send(limited)
	var tb, tl []time.Duration
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			tb = append(tb, send(bare))
			tl = append(tl, send(limited))
		} else {
			tl = append(tl, send(limited))
			tb = append(tb, send(bare))
		}
		i++
	}
	return median(tb), median(tl)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
