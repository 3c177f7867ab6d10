//go:build race

package engine

// raceEnabled: the race detector slows the store's goroutines unevenly, and
// compaction falls behind writers as it never does without it.
const raceEnabled = true
