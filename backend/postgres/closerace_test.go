package postgres

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/smartratelimit/smartratelimit"
)

// An acquire that passed call's closed check just before Close reaches the
// batcher after its workers have drained and exited. With every connection
// token taken (other acquires in flight) it must not queue where nobody
// reads: it returns ErrClosed at once, never waiting for its own context
// (forever with context.Background()).
func TestBatcherAcquireAfterCloseReturnsErrClosed(t *testing.T) {
	b, _, _ := newTest(t, WithPoolSize(2))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// Connections busy: the tokens are held by acquires still in flight.
	for range cap(b.batch.sem) {
		b.batch.sem <- struct{}{}
	}
	a := &acquireArgs{names: []string{"per_second"}, dims: []string{"requests"}, lims: []float64{10}, wins: []int64{int64(time.Second)}}
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := b.batch.acquire(ctx, []byte("https://close.example:443"), a, 0)
		cancel()
		if !errors.Is(err, smartratelimit.ErrClosed) {
			t.Fatalf("attempt %d: err = %v; want ErrClosed (DeadlineExceeded means it queued after Close and waited for its caller's deadline)", i, err)
		}
	}
}

// Acquires racing Close through the public API, on contexts without
// deadline, all return promptly: granted before Close, ErrClosed after it.
// (The window of the race above is too narrow for this to hit it reliably;
// TestBatcherAcquireAfterCloseReturnsErrClosed sets it up exactly.)
func TestAcquireRacingCloseReturns(t *testing.T) {
	for round := range 5 {
		b, _, _ := newTest(t, WithPoolSize(2))
		lim := smartratelimit.PerSecond(1e6)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for g := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					_, err := b.Acquire(context.Background(), req("https://race.example:443/"+string(rune('a'+g%8)), 0, lim))
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(20+round*5) * time.Millisecond)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		finished := make(chan struct{})
		go func() { wg.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: acquires still blocked 10 s after Close", round)
		}
		close(errs)
		for err := range errs {
			if !errors.Is(err, smartratelimit.ErrClosed) {
				t.Fatalf("round %d: err = %v; want ErrClosed", round, err)
			}
		}
	}
}
