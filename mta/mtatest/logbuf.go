package mtatest

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// LogBuffer is an io.Writer that a process (or an in-process agent) writes
// while a test reads it; the zero value is ready to use.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// WaitFor waits (Eventually) until s has been written n times; on failure
// the test's log shows the buffer.
func (l *LogBuffer) WaitFor(t testing.TB, s string, n int) {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("output:\n%s", l.String())
		}
	}()
	Eventually(t, fmt.Sprintf("%q %d time(s) in the output", s, n), func() bool {
		return strings.Count(l.String(), s) >= n
	})
}
