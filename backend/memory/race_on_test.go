//go:build race

package memory_test

// raceEnabled: the race detector slows the model tests tenfold; they run
// fewer sequences under it.
const raceEnabled = true
