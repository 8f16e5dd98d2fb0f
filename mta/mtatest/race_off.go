//go:build !race

package mtatest

const raceEnabled = false
