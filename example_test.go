package smartratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/headerparse"
	"github.com/smartratelimit/smartratelimit/internal/testapi"
	"github.com/smartratelimit/smartratelimit/middleware"
)

// Attach a limiter to a new resty client in one call. The limiter learns
// the server's limit from its X-RateLimit-* headers.
func Example() {
	api, _ := testapi.NewServer(testapi.Config{Limit: 5, Window: time.Hour, Style: testapi.StyleGitHub})
	defer api.Close()

	client, limiter, err := middleware.Client()
	if err != nil {
		panic(err)
	}
	defer limiter.Close()

	for range 3 {
		resp, err := client.R().Get(api.URL + "/repos")
		if err != nil {
			panic(err)
		}
		fmt.Println(resp.StatusCode())
	}
	key, _ := middleware.KeyOf(api.URL)
	st, _ := limiter.Status(context.Background(), key)
	b, _ := st.Binding()
	fmt.Printf("%s: %g of %g left (from %s)\n", b.Name, b.Remaining, b.Limit.Limit, b.Source)
	// Output:
	// 200
	// 200
	// 200
	// core: 2 of 5 left (from headers)
}

// With WithFailFast a request that would have to wait is refused at once
// with a *LimitError that says how long to wait.
func Example_failFast() {
	var sent atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// IETF draft-10 fields: 2 requests per hour, the window ends in 30 minutes.
		w.Header().Set("RateLimit-Policy", `"hourly";q=2;w=3600`)
		w.Header().Set("RateLimit", fmt.Sprintf(`"hourly";r=%d;t=1800`, 2-sent.Add(1)))
	}))
	defer api.Close()
	client, limiter, _ := middleware.Client(middleware.WithFailFast())
	defer limiter.Close()

	for range 3 {
		_, err := client.R().Get(api.URL)
		var le *srl.LimitError
		switch {
		case errors.As(err, &le):
			fmt.Printf("refused: rate limited=%v, wait about %v\n", errors.Is(err, srl.ErrRateLimited), le.Wait.Round(time.Minute))
		case err != nil:
			panic(err)
		default:
			fmt.Println("sent")
		}
	}
	// Output:
	// sent
	// sent
	// refused: rate limited=true, wait about 30m0s
}

// Servers that send no rate-limit headers are limited by the default
// limits: per second, minute and hour, enforced together.
func Example_defaultLimits() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer api.Close()
	client, limiter, _ := middleware.Client(
		middleware.WithDefaultLimits(2, 3, 100), // 2/s, 3/min, 100/h
		middleware.WithFailFast(),
	)
	defer limiter.Close()

	for i := range 4 {
		_, err := client.R().Get(api.URL)
		var le *srl.LimitError
		if errors.As(err, &le) {
			fmt.Printf("request %d refused by %v\n", i+1, le.Limit)
			continue
		}
		fmt.Printf("request %d sent\n", i+1)
	}
	// Output:
	// request 1 sent
	// request 2 sent
	// request 3 refused by 2 requests/1s
	// request 4 refused by 2 requests/1s
}

// A server with its own header names is understood through a mapping,
// like the Python library's headers_map.
func Example_customHeaderMap() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Quota-Max", "100")
		w.Header().Set("X-Quota-Left", "0")
		w.Header().Set("X-Quota-Reset-Ms", "30000")
	}))
	defer api.Close()
	m, err := headerparse.ParseMapping("limit=X-Quota-Max,remaining=X-Quota-Left,reset=X-Quota-Reset-Ms,reset_format=delta_ms,window=1m")
	if err != nil {
		panic(err)
	}
	client, limiter, _ := middleware.Client(middleware.WithHeaderMapping(m), middleware.WithFailFast())
	defer limiter.Close()

	_, err = client.R().Get(api.URL)
	fmt.Println("first:", err)
	_, err = client.R().Get(api.URL)
	var le *srl.LimitError
	if errors.As(err, &le) {
		fmt.Printf("second: refused for about %v by %v\n", le.Wait.Round(10*time.Second), le.Limit)
	}
	// Output:
	// first: <nil>
	// second: refused for about 30s by 100 requests/1m0s
}

// Status reports a key's limits, what is left, where the limits come from
// and whether a 429 blocked the host.
func Example_status() {
	api, _ := testapi.NewServer(testapi.Config{Limit: 1, Window: time.Hour, Style: testapi.StyleRetryAfter})
	defer api.Close()
	client, limiter, _ := middleware.Client(middleware.WithDefaultLimits(10, 0, 0))
	defer limiter.Close()

	for range 2 { // the second gets a 429 with Retry-After
		resp, _ := client.R().Get(api.URL)
		fmt.Println(resp.StatusCode())
	}
	key, _ := middleware.KeyOf(api.URL)
	st, _ := limiter.Status(context.Background(), key)
	fmt.Println("blocked:", st.BlockedUntil.After(time.Now()))
	for _, l := range st.Limits {
		fmt.Printf("%v from %s\n", l.Limit, l.Source)
	}
	// Output:
	// 200
	// 429
	// blocked: true
	// 10 requests/1s from defaults
}
