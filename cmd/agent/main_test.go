package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind (the stdin reader,
// client connections, the in-test servers).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
