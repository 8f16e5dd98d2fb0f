//go:build race

package mtatest

// raceEnabled: this test binary runs with the race detector, so the daemon
// it starts is built with it too.
const raceEnabled = true
