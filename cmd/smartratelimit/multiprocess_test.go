package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/smartratelimit/smartratelimit/backend"
	"github.com/smartratelimit/smartratelimit/internal/pgtest"
	"github.com/smartratelimit/smartratelimit/internal/testapi"
	"github.com/smartratelimit/smartratelimit/middleware"
)

// buildBinary builds this command once per test binary run.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "smartratelimit-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "smartratelimit")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v: %s", err, out)
	}
	return bin, nil
})

func binary(t *testing.T) string {
	t.Helper()
	bin, err := buildBinary()
	require.NoError(t, err)
	return bin
}

// pgStorage returns a storage URL on a fresh schema of the test database.
func pgStorage(t *testing.T) string {
	dsn := pgtest.DSN(t)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "smartratelimit_schema=" + pgtest.Schema(t, dsn)
}

// TestMultiProcessSharesOneLimit runs 4 OS processes × 8 goroutines
// against one test API served by this process, sharing the limit through
// PostgreSQL: no 429, never more than the limit in a server window, and at
// least 90% of the allowed rate.
func TestMultiProcessSharesOneLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 40 seconds")
	}
	bin := binary(t)
	const limit, procs, perProc = 20, 4, 150
	for _, style := range []testapi.Style{testapi.StyleGitHub, testapi.StyleNone} {
		t.Run(string(style), func(t *testing.T) {
			t.Parallel()
			storage := pgStorage(t)
			srv, err := testapi.NewServer(testapi.Config{Limit: limit, Window: time.Second, Style: style})
			require.NoError(t, err)
			t.Cleanup(srv.Close)
			// The workers set up (start, connect, migrate) and then send
			// their first requests together, as services already running do.
			start := time.Now().Add(3 * time.Second)
			var wg sync.WaitGroup
			results := make([]demoResult, procs)
			for i := range procs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cmd := exec.Command(bin, "demo", "--target", srv.URL, "--storage", storage, "--json",
						"--requests", fmt.Sprint(perProc), "--concurrency", "8", "--limit", "20/1s", "--headers", string(style),
						"--start-at", start.Format(time.RFC3339Nano))
					var stdout, stderr bytes.Buffer
					cmd.Stdout, cmd.Stderr = &stdout, &stderr
					assert.NoError(t, cmd.Run(), "worker %d: %s", i, stderr.String())
					assert.NoError(t, json.Unmarshal(stdout.Bytes(), &results[i]), "worker %d printed %q", i, stdout.String())
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			var ok int64
			for _, r := range results {
				ok += r.OK
			}
			st := srv.Stats()
			util := float64(st.Requests) / elapsed.Seconds() / limit
			t.Logf("%s: %d processes × 8 goroutines: %d requests in %v = %.0f%% of the allowed rate, %d throttled, max %d per server window",
				style, procs, st.Requests, elapsed.Round(time.Millisecond), util*100, st.Throttled, st.MaxPerWindow)
			if st.MaxPerWindow > limit || st.Throttled > 0 {
				for i, w := range st.Windows {
					t.Logf("window %d at %s: %d requests, %d throttled", i, w.Start.Format("15:04:05.000"), w.Requests, w.Throttled)
				}
			}
			assert.Equal(t, int64(procs*perProc), ok)
			assert.Zero(t, st.Throttled, "429s")
			assert.LessOrEqual(t, st.MaxPerWindow, int64(limit))
			assert.GreaterOrEqual(t, util, 0.9, "utilization (process start-up included)")
		})
	}
}

// TestKilledWaitingProcessLeavesNoStuckState kills a process while it
// sleeps on a reserved slot: nothing is locked or blocked by it, and the
// next process gets the slot after the one the killed process reserved.
func TestKilledWaitingProcessLeavesNoStuckState(t *testing.T) {
	bin := binary(t)
	storage := pgStorage(t)
	srv, err := testapi.NewServer(testapi.Config{Limit: 1000, Window: time.Second, Style: testapi.StyleNone})
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	// The first worker takes the only slot of a 3-second window, the second
	// reserves the next window's slot and sleeps: kill it there.
	run := func(n int) *exec.Cmd {
		return exec.Command(bin, "demo", "--target", srv.URL, "--storage", storage, "--json",
			"--requests", fmt.Sprint(n), "--concurrency", "1", "--limit", "1/3s", "--headers", "none")
	}
	require.NoError(t, run(1).Run())
	sleeper := run(1)
	require.NoError(t, sleeper.Start())
	key, err := middleware.KeyOf(srv.URL)
	require.NoError(t, err)
	b, err := backend.Open(context.Background(), storage)
	require.NoError(t, err)
	defer b.Close()
	require.Eventually(t, func() bool {
		st, err := b.Status(context.Background(), key)
		return err == nil && st.Seq == 2
	}, 10*time.Second, 20*time.Millisecond, "the second process reserved its slot")
	require.NoError(t, sleeper.Process.Signal(syscall.SIGKILL))
	_ = sleeper.Wait()
	// The killed process's slot stays spent (it may have been sent); the
	// next process waits for the slot after it, not forever, and no lock or
	// block remains.
	start := time.Now()
	third := run(1)
	var out bytes.Buffer
	third.Stdout = &out
	require.NoError(t, third.Run())
	var r demoResult
	require.NoError(t, json.Unmarshal(out.Bytes(), &r))
	assert.Equal(t, int64(1), r.OK)
	assert.Less(t, time.Since(start), 12*time.Second)
	st, err := b.Status(context.Background(), key)
	require.NoError(t, err)
	assert.True(t, st.BlockedUntil.IsZero() || st.BlockedUntil.Before(time.Now()))
	assert.Equal(t, uint64(3), st.Seq)
}

func TestProcsNeedsSharedStorage(t *testing.T) {
	var stderr bytes.Buffer
	code := run([]string{"demo", "--procs", "4"}, nil, &bytes.Buffer{}, &stderr)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr.String(), "--procs needs storage shared")
}
