package middleware

import (
	"bytes"
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
