package middleware

import (
	"time"

	"bytes"
	srl "github.com/smartratelimit/smartratelimit"
	"testing"
)

// Without WithPartitionSecret the built-in key hashes partitions (not an
// empty key), and a given secret replaces it.
func TestPartitionSecretDefault(t *testing.T) {
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !bytes.Equal(l.cfg.partitionSecret, defaultPartitionSecret) {
		t.Fatalf("default partition secret = %q, want the built-in key", l.cfg.partitionSecret)
	}
	if hashPartition(defaultPartitionSecret, "tok") == hashPartition(nil, "tok") {
		t.Fatal("the built-in key must change the hash")
	}
}

func TestAuthorityAt(t *testing.T) {
	for _, c := range []struct {
		raw, prefix string
		ok, abs     bool
	}{
		{"https://api.github.com/repos?q=1", "https://api.github.com", true, true},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", true, true},
		{"http://h:1?x", "http://h:1", true, true},
		{"http://h#f", "http://h", true, true},
		{"https://user:pw@h/x", "", false, true}, // user info: never a cache key
		{"http://{host}/x", "", false, true},     // a path parameter resty fills later
		{"http:///x", "", false, true},
		{"/login?next=https://x", "", false, false},
		{"repos/x", "", false, false},
		{"://x", "", false, false},
		{"a:b://x/y", "a:b://x", true, true}, // the first "://" before any '/'
		{"", "", false, false},
	} {
		prefix, ok := authorityAt(c.raw, schemeEnd(c.raw))
		if prefix != c.prefix || ok != c.ok || isAbs(c.raw) != c.abs {
			t.Errorf("%q: authorityAt %q %v, isAbs %v; want %q %v %v", c.raw, prefix, ok, isAbs(c.raw), c.prefix, c.ok, c.abs)
		}
	}
}

func TestInferWindow(t *testing.T) {
	for _, c := range []struct{ reset, want time.Duration }{
		{0, time.Second}, {time.Second, time.Second}, {time.Second + 1, time.Minute},
		{40 * time.Second, time.Minute}, {14 * time.Minute, 15 * time.Minute}, {15 * time.Minute, 15 * time.Minute},
		{40 * time.Minute, time.Hour}, {23 * time.Hour, 24 * time.Hour}, {24*time.Hour + 1, 24*time.Hour + 1},
		{100 * 24 * time.Hour, 100 * 24 * time.Hour}, {80 * 365 * 24 * time.Hour, srl.MaxWindow},
	} {
		if got := InferWindow(c.reset); got != c.want {
			t.Errorf("InferWindow(%v) = %v, want %v", c.reset, got, c.want)
		}
	}
}
