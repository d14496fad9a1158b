package main

import (
	"context"
	"fmt"

	"github.com/smartratelimit/smartratelimit/middleware"
)

// storageOptions returns the limiter options for a --storage value and a
// function that releases what they opened.
func storageOptions(_ context.Context, storage string) ([]middleware.Option, func(), error) {
	switch storage {
	case "", "memory":
		return nil, func() {}, nil
	}
	return nil, nil, fmt.Errorf("unknown --storage %q: want memory", storage)
}
