package main

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"gomta/mta/mtatest"
)

// syncCounter is a log destination that counts Sync calls, as an *os.File
// would turn each into an fsync.
type syncCounter struct {
	mu    sync.Mutex
	b     strings.Builder
	syncs atomic.Int32
}

func (s *syncCounter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncCounter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncCounter) Sync() error { s.syncs.Add(1); return nil }

// TestLogFlushDoesNotSync: the periodic flush of buffered log lines writes
// them but never syncs the destination (an fsync of the log file five
// times a second). Two flushes are waited for: the flusher would sync
// right after writing the first line, before it writes the second.
func TestLogFlushDoesNotSync(t *testing.T) {
	dst := &syncCounter{}
	log, _, stop, err := newLogger("json", "info", dst)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	log.Info("first line")
	mtatest.Eventually(t, "the first line flushed", func() bool { return strings.Contains(dst.String(), "first line") })
	log.Info("second line")
	mtatest.Eventually(t, "the second line flushed", func() bool { return strings.Contains(dst.String(), "second line") })
	if n := dst.syncs.Load(); n != 0 {
		t.Fatalf("the log destination was synced %d times", n)
	}
}
