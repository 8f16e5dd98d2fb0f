package queue

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
)

// needCompact reports whether the journal is large and mostly dead.
func (j *journal) needCompact() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return !j.compacting && j.broken == nil && j.size >= j.compactMin && j.size > 2*j.liveBytes
}

// compact rewrites the journal as one add record per live message. The
// snapshot is written to journal.tmp while appends go on (and are also kept
// in tail); then, holding mu and smu (appends and syncs wait, briefly), the
// tail is added, journal.tmp fsync'd and renamed over the journal, and the
// directory fsync'd. It returns the live messages written and the new size.
func (j *journal) compact() (int, int64, error) {
	j.mu.Lock()
	if j.compacting || j.broken != nil {
		j.mu.Unlock()
		return 0, 0, nil
	}
	j.compacting, j.tail = true, nil
	snap := make([]rec, 0, len(j.live))
	for id, env := range j.live {
		snap = append(snap, rec{kind: recAdd, id: id, env: env})
	}
	j.mu.Unlock()

	tmp := j.path + ".tmp"
	tf, size, err := writeSnapshot(tmp, snap)
	swapped := false
	if err == nil {
		size, swapped, err = j.swapIn(tf, tmp, size)
	}
	if !swapped {
		// The journal goes on as it was.
		if tf != nil {
			tf.Close()
		}
		j.mu.Lock()
		j.compacting, j.tail = false, nil
		j.mu.Unlock()
		_ = os.Remove(tmp)
		return len(snap), 0, err
	}
	return len(snap), size, err
}

// writeSnapshot writes snap, sorted by id, to a new file at path, fsync'd,
// and returns it open for appending with its size.
func writeSnapshot(path string, snap []rec) (*os.File, int64, error) {
	slices.SortFunc(snap, func(a, b rec) int { return strings.Compare(a.id, b.id) })
	tf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o640)
	if err != nil {
		return nil, 0, err
	}
	bw := bufio.NewWriterSize(tf, 256<<10)
	var scratch []byte
	var size int64
	for _, r := range snap {
		scratch = appendRecord(scratch[:0], r)
		size += int64(len(scratch))
		if _, err := bw.Write(scratch); err != nil {
			return tf, 0, err
		}
	}
	if err := bw.Flush(); err != nil {
		return tf, 0, err
	}
	if err := tf.Sync(); err != nil {
		return tf, 0, err
	}
	return tf, size, nil
}

// swapIn adds the records appended since the snapshot to tf (the snapshot
// of size octets at tmp), syncs it and renames it over the journal, with
// appends and syncs held off meanwhile. It returns the new size and whether
// tf replaced the journal (then an error is the directory's fsync).
func (j *journal) swapIn(tf *os.File, tmp string, size int64) (int64, bool, error) {
	j.smu.Lock()
	defer func() {
		j.swap = false
		j.scond.Broadcast()
		j.smu.Unlock()
	}()
	j.swap = true
	for j.syncing { // an fdatasync of the old file would prove nothing of the new one
		j.scond.Wait()
	}
	j.mu.Lock()
	if _, err := tf.Write(j.tail); err != nil {
		j.mu.Unlock()
		return 0, false, err
	}
	size += int64(len(j.tail))
	if err := fdatasync(tf); err != nil {
		j.mu.Unlock()
		return 0, false, err
	}
	if err := os.Rename(tmp, j.path); err != nil {
		j.mu.Unlock()
		return 0, false, err
	}
	old := j.f
	j.f, j.size, j.compacting, j.tail = tf, size, false, nil
	written := j.written
	j.mu.Unlock()
	_ = old.Close()
	// Until the rename is durable, a crash could bring back the old file,
	// whose last records may not be synced: only then is everything synced.
	if err := syncDir(j.dir); err != nil {
		return size, true, err
	}
	if written > j.synced {
		j.synced = written
	}
	return size, true, nil
}

// compaction is Run's view of journal compaction: at most one runs at a
// time, in its own goroutine (commits, attempts and Run go on meanwhile),
// and after a failure the next waits a minute.
type compaction struct {
	running bool
	after   time.Time  // no new compaction before
	done    chan error // buffered 1: the running compaction is over
}

func newCompaction() *compaction { return &compaction{done: make(chan error, 1)} }

// maybeStart starts a compaction when none runs and the journal needs one.
func (c *compaction) maybeStart(q *Queue) {
	if c.running || !time.Now().After(c.after) || !q.j.needCompact() {
		return
	}
	c.running = true
	go q.compact(c.done)
}

// finished takes the result of the compaction that ran.
func (c *compaction) finished(err error) {
	c.running = false
	if err != nil {
		c.after = time.Now().Add(time.Minute)
	}
}

// wait waits for the running compaction, if any.
func (c *compaction) wait() {
	if c.running {
		c.finished(<-c.done)
	}
}

// compact runs one journal compaction and sends its error to done.
func (q *Queue) compact(done chan<- error) {
	var err error
	defer func() {
		if p := recover(); p != nil {
			q.log.Error("panic in journal compaction", zap.Any("error", p), zap.Stack("stack"))
			err = fmt.Errorf("queue: panic in journal compaction: %v", p)
		}
		done <- err
	}()
	start := time.Now()
	var live int
	var after int64
	live, after, err = q.j.compact()
	if err != nil {
		q.log.Error("journal compaction failed", zap.Error(err))
		return
	}
	q.log.Info("journal compacted", zap.Int64("bytes", after), zap.Int("count", live),
		zap.Int64("duration_ms", time.Since(start).Milliseconds()))
}
