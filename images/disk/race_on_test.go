//go:build race

package disk

// raceEnabled: the race detector multiplies memory use, so absolute memory bounds do not apply.
const raceEnabled = true
