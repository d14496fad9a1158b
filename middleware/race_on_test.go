//go:build race

package middleware_test

// raceEnabled: the race detector's sync.Pool drops items at random, so
// allocation counts are not checked under it.
const raceEnabled = true
