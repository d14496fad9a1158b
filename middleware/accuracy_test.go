package middleware_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/testapi"
	"github.com/smartratelimit/smartratelimit/middleware"
)

// TestAccuracy drives the test API in every header style from 32
// goroutines: no 429 where the server announces its limit (or the
// defaults match it), and at least 90% of the allowed rate used.
func TestAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 30 seconds")
	}
	const (
		limit    = 20
		window   = time.Second
		requests = 600
		workers  = 32
	)
	for _, style := range testapi.Styles() {
		t.Run(string(style), func(t *testing.T) {
			t.Parallel()
			cfg := testapi.Config{Limit: limit, Window: window, Style: style}
			if style == testapi.StyleOpenAI {
				// OpenAI's limits are per minute by definition (its headers
				// carry no window), so the client enforces minutes; the
				// server must mean the same. 600 requests fit in one minute:
				// this checks that the burst draws no 429, not the pacing.
				cfg.Limit, cfg.Window = 1200, time.Minute
			}
			srv := newServer(t, cfg)
			var opts []middleware.Option
			if style == testapi.StyleNone || style == testapi.StyleRetryAfter {
				opts = append(opts, middleware.WithDefaults(srl.Every(limit, window)))
			}
			c, _ := newClient(t, opts...)
			c.SetBaseURL(srv.URL)
			var next, failed atomic.Int64
			start := time.Now()
			var wg sync.WaitGroup
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= requests {
						resp, err := c.R().Get("/accuracy")
						if err != nil || resp.StatusCode() != 200 && resp.StatusCode() != 429 {
							failed.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			st := srv.Stats()
			rate := float64(st.Requests) / elapsed.Seconds()
			util := rate / (float64(cfg.Limit) / cfg.Window.Seconds())
			t.Logf("%s: %d requests in %v: %.1f/s = %.0f%% of the allowed rate, %d throttled, max %d per server window",
				style, st.Requests, elapsed.Round(time.Millisecond), rate, util*100, st.Throttled, st.MaxPerWindow)
			require.Zero(t, failed.Load())
			assert.Zero(t, st.Throttled, "429s")
			assert.LessOrEqual(t, st.MaxPerWindow, int64(cfg.Limit), "requests in one server window")
			assert.GreaterOrEqual(t, util, 0.9, "utilization")
		})
	}
}
