package testapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkServeHTTP measures the handler alone (no network), in parallel.
// Baseline (2 vCPU AMD EPYC, go1.26, no -race): github 1545 ns/op 17 allocs,
// ietf 1100 ns/op 12 allocs, openai 1337 ns/op 16 allocs.
func BenchmarkServeHTTP(b *testing.B) {
	for _, st := range []Style{StyleGitHub, StyleIETF, StyleOpenAI} {
		b.Run(string(st), func(b *testing.B) {
			h, err := NewHandler(Config{Limit: 1_000_000, Window: time.Second, Style: st})
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := discardWriter{h: http.Header{}}
				for pb.Next() {
					clear(w.h)
					h.ServeHTTP(w, req)
				}
			})
		})
	}
}

type discardWriter struct{ h http.Header }

func (w discardWriter) Header() http.Header         { return w.h }
func (w discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w discardWriter) WriteHeader(int)             {}
