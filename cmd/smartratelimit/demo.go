package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/backend"
	"github.com/smartratelimit/smartratelimit/internal/testapi"
	"github.com/smartratelimit/smartratelimit/middleware"
)

func init() {
	commands["demo"] = command{runDemo, "drive a local rate-limited API through a limited resty client and report what happened"}
}

// storageEnv carries the storage URL to worker processes.
const storageEnv = "SMARTRATELIMIT_DEMO_STORAGE"

// demoResult is the demo's JSON output. Keep its shape stable: tooling relies on it.
type demoResult struct {
	Requests          int64   `json:"requests"`
	OK                int64   `json:"ok"`
	Throttled         int64   `json:"throttled"`
	Errors            int64   `json:"errors"`
	ElapsedSeconds    float64 `json:"elapsed_seconds"`
	Limit             float64 `json:"limit"`
	WindowSeconds     float64 `json:"window_seconds"`
	AchievedPerSecond float64 `json:"achieved_per_second"`
	Utilization       float64 `json:"utilization"`
}

type demoFlags struct {
	requests    int
	concurrency int
	limit       srl.Limit
	style       testapi.Style
	storage     string
	json        bool
	procs       int
	target      string    // an API already running (worker processes use the parent's)
	startAt     time.Time // send nothing before this (worker processes start together)
}

// parseRate parses "20/1s", "100/1m", "5000/1h" or "20" (per second).
func parseRate(s string) (srl.Limit, error) {
	n, w, ok := strings.Cut(s, "/")
	if !ok {
		w = "1s"
	}
	if !strings.ContainsAny(w, "0123456789") {
		w = "1" + w
	}
	limit, err := strconv.ParseFloat(n, 64)
	if err != nil {
		return srl.Limit{}, fmt.Errorf("bad --limit %q: want N/window such as 20/1s", s)
	}
	window, err := time.ParseDuration(w)
	if err != nil {
		return srl.Limit{}, fmt.Errorf("bad --limit %q: want N/window such as 20/1s", s)
	}
	l := srl.Every(limit, window)
	if err := l.Validate(); err != nil || limit != float64(int(limit)) {
		return srl.Limit{}, fmt.Errorf("bad --limit %q: limit must be a positive whole number and window positive", s)
	}
	return l, nil
}

func parseDemoFlags(args []string, stderr io.Writer) (demoFlags, int) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f demoFlags
	var limit, style string
	fs.IntVar(&f.requests, "requests", 300, "number of requests to send")
	fs.IntVar(&f.concurrency, "concurrency", 32, "number of goroutines sending requests")
	fs.StringVar(&limit, "limit", "20/1s", "the test API's limit, N/window")
	fs.StringVar(&style, "headers", "github", "header style of the test API: "+styleNames())
	fs.StringVar(&f.storage, "storage", "memory", "where buckets live: memory or postgres://user@host:port/db")
	fs.BoolVar(&f.json, "json", false, "print one JSON object on stdout instead of a summary")
	fs.IntVar(&f.procs, "procs", 1, "client processes sharing one limit (needs shared --storage)")
	fs.StringVar(&f.target, "target", "", "drive this base URL instead of starting the local test API")
	var startAt string
	fs.StringVar(&startAt, "start-at", "", "send the first request at this RFC 3339 time, after setting up (for processes that start together)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: smartratelimit demo [flags]\n\nStarts a local rate-limited API and drives it through a limited resty client.\nWith --headers none or retry-after the client cannot learn the limit, so its\ndefault limits are set to --limit.\n\nflags:")
		fs.PrintDefaults()
	}
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return f, code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "smartratelimit demo: unexpected argument %q\n", fs.Arg(0))
		return f, 2
	}
	if name, ok := strings.CutPrefix(f.storage, "env:"); ok {
		f.storage = os.Getenv(name)
		if f.storage == "" {
			fmt.Fprintf(stderr, "smartratelimit demo: --storage env:%s but %s is empty\n", name, name)
			return f, 2
		}
	}
	var err error
	if startAt != "" {
		if f.startAt, err = time.Parse(time.RFC3339Nano, startAt); err != nil {
			fmt.Fprintf(stderr, "smartratelimit demo: bad --start-at %q: want an RFC 3339 time\n", startAt)
			return f, 2
		}
	}
	if f.limit, err = parseRate(limit); err != nil {
		fmt.Fprintln(stderr, "smartratelimit demo:", err)
		return f, 2
	}
	if f.style, err = testapi.ParseStyle(style); err != nil {
		fmt.Fprintln(stderr, "smartratelimit demo:", err)
		return f, 2
	}
	if f.requests < 1 || f.requests > 1_000_000 || f.concurrency < 1 || f.concurrency > 10_000 || f.procs < 1 || f.procs > 64 {
		fmt.Fprintln(stderr, "smartratelimit demo: --requests must be 1..1000000, --concurrency 1..10000 and --procs 1..64")
		return f, 2
	}
	if f.procs > 1 && (f.storage == "" || strings.EqualFold(f.storage, "memory")) {
		fmt.Fprintln(stderr, "smartratelimit demo: --procs needs storage shared between processes, such as --storage postgres://…")
		return f, 2
	}
	return f, -1
}

func styleNames() string {
	var s []string
	for _, st := range testapi.Styles() {
		s = append(s, string(st))
	}
	return strings.Join(s, ", ")
}

func runDemo(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	f, code := parseDemoFlags(args, stderr)
	if code >= 0 {
		return code
	}
	ctx, stop := signalContext()
	defer stop()
	target := f.target
	var srv *testapi.Server
	if target == "" {
		var err error
		srv, err = testapi.NewServer(testapi.Config{Limit: int(f.limit.Limit), Window: f.limit.Window, Style: f.style})
		if err != nil {
			fmt.Fprintln(stderr, "smartratelimit demo:", err)
			return 1
		}
		defer srv.Close()
		target = srv.URL
	}
	var res demoResult
	var err error
	if f.procs > 1 {
		res, err = driveProcs(ctx, f, target, srv, progressWriter(stderr, f.json))
	} else {
		res, err = drive(ctx, f, target, progressWriter(stderr, f.json))
	}
	if err != nil {
		fmt.Fprintln(stderr, "smartratelimit demo:", err)
		return 1
	}
	return printResult(res, f, stdout)
}

// driveProcs runs f.procs copies of this program (fewer when there are
// fewer requests) as worker processes, each sending its share of the
// requests, at least one, to target through the shared storage, and adds
// up their results.
func driveProcs(ctx context.Context, f demoFlags, target string, srv *testapi.Server, report progress) (demoResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return demoResult{}, err
	}
	type out struct {
		res demoResult
		err error
	}
	// A worker with no request to send would be refused its --requests 0:
	// with fewer requests than --procs, start one worker per request.
	procs := min(f.procs, f.requests)
	results := make(chan out, procs)
	// Every worker sets up (starts, connects, migrates) first and sends
	// its first request at the same instant.
	start := time.Now().Add(2 * time.Second)
	for i := range procs {
		share := f.requests / procs
		if i < f.requests%procs {
			share++
		}
		// The storage URL (it may hold a password) goes through the
		// environment, not the command line other users can read.
		args := []string{"demo", "--target", target, "--storage", "env:" + storageEnv, "--json",
			"--requests", strconv.Itoa(share), "--concurrency", strconv.Itoa(f.concurrency),
			"--limit", fmt.Sprintf("%g/%v", f.limit.Limit, f.limit.Window), "--headers", string(f.style),
			"--start-at", start.Format(time.RFC3339Nano)}
		go func() {
			cmd := exec.CommandContext(ctx, exe, args...)
			cmd.Env = append(os.Environ(), storageEnv+"="+f.storage)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var r demoResult
			if jerr := json.Unmarshal(stdout.Bytes(), &r); jerr != nil && err == nil {
				err = jerr
			}
			if err != nil && r.Requests == 0 {
				err = fmt.Errorf("worker process: %v: %s", err, strings.TrimSpace(stderr.String()))
			} else {
				err = nil
			}
			results <- out{r, err}
		}()
	}
	var total demoResult
	var firstErr error
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for got := 0; got < procs; {
		select {
		case o := <-results:
			got++
			if o.err != nil && firstErr == nil {
				firstErr = o.err
			}
			total.Requests += o.res.Requests
			total.OK += o.res.OK
			total.Throttled += o.res.Throttled
			total.Errors += o.res.Errors
		case <-tick.C:
			if report != nil && srv != nil {
				st := srv.Stats()
				report(st.Requests, st.OK, st.Throttled, 0, time.Since(start), false)
			}
		}
	}
	elapsed := time.Since(start)
	if report != nil && srv != nil {
		st := srv.Stats()
		report(st.Requests, st.OK, st.Throttled, 0, elapsed, true)
	}
	total.ElapsedSeconds = round3(elapsed.Seconds())
	total.Limit = f.limit.Limit
	total.WindowSeconds = f.limit.Window.Seconds()
	total.finish()
	return total, firstErr
}

func printResult(res demoResult, f demoFlags, stdout io.Writer) int {
	if f.json {
		b, _ := json.Marshal(res)
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprintf(stdout, "%d requests in %.1fs against a limit of %g per %v (%s headers, %s storage)\n",
			res.Requests, res.ElapsedSeconds, res.Limit, f.limit.Window, f.style, backend.Redact(f.storage))
		fmt.Fprintf(stdout, "  ok %d, throttled (429) %d, errors %d\n", res.OK, res.Throttled, res.Errors)
		fmt.Fprintf(stdout, "  achieved %.1f requests/s = %.0f%% of the allowed rate\n", res.AchievedPerSecond, res.Utilization*100)
	}
	if res.Errors > 0 {
		return 1
	}
	return 0
}

// limiterOptions are the limiter options of the demo for a header style.
func limiterOptions(f demoFlags) []middleware.Option {
	var opts []middleware.Option
	if f.style == testapi.StyleNone || f.style == testapi.StyleRetryAfter {
		opts = append(opts, middleware.WithDefaults(f.limit))
	}
	return opts
}

type progress func(done, ok, throttled, waits int64, elapsed time.Duration, final bool)

// drive sends f.requests requests to target from f.concurrency goroutines
// through one limited resty client.
func drive(ctx context.Context, f demoFlags, target string, report progress) (demoResult, error) {
	opts, closeStorage, err := storageOptions(ctx, f.storage)
	if err != nil {
		return demoResult{}, err
	}
	defer closeStorage()
	var waits atomic.Int64
	opts = append(opts, limiterOptions(f)...)
	opts = append(opts, middleware.WithHooks(middleware.Hooks{OnWait: func(string, time.Duration) { waits.Add(1) }}))
	client, lim, err := middleware.Client(opts...)
	if err != nil {
		return demoResult{}, err
	}
	defer lim.Close()
	client.SetBaseURL(target)

	if !f.startAt.IsZero() {
		t := time.NewTimer(time.Until(f.startAt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return demoResult{}, ctx.Err()
		}
	}
	var next, ok, throttled, failed atomic.Int64
	start := time.Now()
	done := make(chan struct{})
	var tick sync.WaitGroup
	if report != nil {
		tick.Add(1)
		go func() {
			defer tick.Done()
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					report(ok.Load()+throttled.Load()+failed.Load(), ok.Load(), throttled.Load(), waits.Load(), time.Since(start), false)
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for range f.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(f.requests) {
				resp, err := client.R().SetContext(ctx).Get("/demo")
				switch {
				case err != nil:
					failed.Add(1)
				case resp.StatusCode() == 429:
					throttled.Add(1)
				case resp.IsSuccess():
					ok.Add(1)
				default:
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(done)
	tick.Wait()
	if report != nil {
		report(ok.Load()+throttled.Load()+failed.Load(), ok.Load(), throttled.Load(), waits.Load(), elapsed, true)
	}
	res := demoResult{
		Requests:       ok.Load() + throttled.Load() + failed.Load(),
		OK:             ok.Load(),
		Throttled:      throttled.Load(),
		Errors:         failed.Load(),
		ElapsedSeconds: round3(elapsed.Seconds()),
		Limit:          f.limit.Limit,
		WindowSeconds:  f.limit.Window.Seconds(),
	}
	res.finish()
	return res, ctx.Err()
}

// finish computes the derived rates.
func (r *demoResult) finish() {
	if r.ElapsedSeconds > 0 {
		r.AchievedPerSecond = round3(float64(r.Requests) / r.ElapsedSeconds)
	}
	if allowed := r.Limit / r.WindowSeconds; allowed > 0 {
		r.Utilization = round3(r.AchievedPerSecond / allowed)
	}
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

// progressWriter shows live progress on a terminal; nil elsewhere.
func progressWriter(w io.Writer, quiet bool) progress {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return func(done, okN, throttled, waits int64, elapsed time.Duration, final bool) {
		rate := 0.0
		if elapsed > 0 {
			rate = float64(done) / elapsed.Seconds()
		}
		fmt.Fprintf(w, "\r%6d done  %6.1f req/s  ok %d  429s %d  waits %d  %5.1fs ", done, rate, okN, throttled, waits, elapsed.Seconds())
		if final {
			fmt.Fprintln(w)
		}
	}
}
