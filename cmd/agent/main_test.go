package main

import (
	"gomta/mta/mtatest"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind (the stdin reader,
// client connections, the in-test servers), and removes the mtad binary
// that the end-to-end tests run.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(mtatest.WithMtad(m))
}
