package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// The envelope journal (Dir/journal) is a sequence of records:
//
//	uint32 LE  n: length of what follows the checksum (>= 1+idLen)
//	uint32 LE  CRC-32C (Castagnoli) of those n octets
//	byte       kind: 'A' add, 'U' update, 'D' done
//	[idLen]    message id
//	...        add, update: the envelope as JSON; done: nothing
//
// An add or update record holds the whole envelope: replay keeps the last
// one per id, and a done record forgets the id.
//
// Every record checks itself (length, checksum, kind, id). A record that is
// short or fails its checks is damage: replay resynchronises at the next
// offset where a whole valid record starts, so one damaged record costs that
// record and nothing after it. Damage with no valid record after it is the
// torn tail of a write a crash interrupted (only ever the last record), cut
// off when the journal is opened, before anything is appended after it.
// Damage in the middle is reported; the damaged journal is kept in
// corrupt/ for the operator and rewritten from what was read (queue.Open).
// The messages whose records were lost are found again from their bodies
// (load: the envelope copy on the body file, else moved to corrupt/).
const (
	recAdd    byte = 'A'
	recUpdate byte = 'U'
	recDone   byte = 'D'

	recHeader = 8        // length + checksum
	maxRecord = 64 << 20 // larger lengths are garbage

	// defaultCompactMin is the journal size below which it is never rewritten.
	defaultCompactMin = 4 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// rec is one journal record to append.
type rec struct {
	kind byte
	id   string
	env  []byte // JSON envelope for add and update; never modified once given
}

// size is the record's framed size.
func (r rec) size() int64 { return int64(recHeader + 1 + idLen + len(r.env)) }

// appendRecord frames r onto b.
func appendRecord(b []byte, r rec) []byte {
	start := len(b)
	b = append(b, make([]byte, recHeader)...)
	b = append(b, r.kind)
	b = append(b, r.id...)
	b = append(b, r.env...)
	p := b[start+recHeader:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(p)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(p, crcTable))
	return b
}

// nextRecord parses the record at the start of b. ok is false when b does
// not start with a whole record whose checksum matches (damage, or a torn
// tail).
func nextRecord(b []byte) (r rec, n int, ok bool) {
	if len(b) < recHeader {
		return rec{}, 0, false
	}
	l := binary.LittleEndian.Uint32(b)
	if l < 1+idLen || l > maxRecord || int64(l) > int64(len(b)-recHeader) {
		return rec{}, 0, false
	}
	p := b[recHeader : recHeader+int(l)]
	if crc32.Checksum(p, crcTable) != binary.LittleEndian.Uint32(b[4:]) {
		return rec{}, 0, false
	}
	return rec{kind: p[0], id: string(p[1 : 1+idLen]), env: p[1+idLen:]}, recHeader + int(l), true
}

// resync returns the offset in b of the first whole valid record after the
// damaged one at b[0], or -1 when there is none (the damage is a torn tail).
// A position is tried only when its kind and id make sense, so the checksum
// is computed at few positions even in a large damaged region.
func resync(b []byte) int {
	for i := 1; i+recHeader+1+idLen <= len(b); i++ {
		k := b[i+recHeader]
		if k != recAdd && k != recUpdate && k != recDone {
			continue
		}
		if !validID(string(b[i+recHeader+1 : i+recHeader+1+idLen])) {
			continue
		}
		if _, _, ok := nextRecord(b[i:]); ok {
			return i
		}
	}
	return -1
}

// journal is the append-only envelope log. Any goroutine may append (the
// group committer, delivery attempts, Run's load); mu serializes appends,
// the in-memory picture of the live envelopes and the compaction's swap of
// the file. Durability is a separate group sync (smu): syncTo(off) returns
// once an fdatasync covering every append up to logical offset off is done,
// sharing one fdatasync among every caller waiting meanwhile. Lock order:
// smu before mu; only a compaction's last step holds mu across a sync (of
// the new file, a few records long).
type journal struct {
	path, dir  string
	compactMin int64

	mu         sync.Mutex
	f          *os.File // O_APPEND
	size       int64    // octets in f
	written    int64    // octets appended since open, across compactions (logical offset)
	live       map[string][]byte
	liveBytes  int64 // framed size of one add record per live id (what a compaction writes)
	compacting bool
	tail       []byte // records appended since the running compaction's snapshot
	broken     error  // a failed write could not be undone: appending is unsafe

	smu     sync.Mutex
	scond   *sync.Cond // on smu
	syncing bool
	swap    bool  // a compaction waits to swap files: start no sync
	synced  int64 // logical offset known durable
}

// loadStats is what opening the journal found.
type loadStats struct {
	records int
	skipped int             // whole records that made no sense (bad id or kind)
	torn    int64           // octets of torn tail cut off
	damaged []span          // damaged regions followed by valid records (skipped)
	done    map[string]bool // ids a done record removed: their bodies may go
}

// span is a damaged region of the journal.
type span struct{ off, n int64 }

// openJournal replays Dir/journal (creating it if missing), cuts off a torn
// tail, and opens it for appending. A leftover journal.tmp of an interrupted
// compaction is removed: the journal itself is still whole.
func openJournal(dir string) (*journal, loadStats, error) {
	var st loadStats
	j := &journal{
		path:       filepath.Join(dir, "journal"),
		dir:        dir,
		compactMin: defaultCompactMin,
		live:       make(map[string][]byte),
	}
	j.scond = sync.NewCond(&j.smu)
	if err := os.Remove(j.path + ".tmp"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, st, err
	}
	data, err := os.ReadFile(j.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, st, err
	}
	st.done = make(map[string]bool)
	off := 0
	for off < len(data) {
		r, n, ok := nextRecord(data[off:])
		if !ok {
			next := resync(data[off:])
			if next < 0 {
				break // torn tail
			}
			st.damaged = append(st.damaged, span{int64(off), int64(next)})
			off += next
			continue
		}
		off += n
		st.records++
		if _, ok := j.live[r.id]; r.kind == recUpdate && !ok && !st.done[r.id] {
			// Its add record was damaged: an update holds the whole
			// envelope, more recent than the copy on the body.
			r.kind = recAdd
		}
		if !j.apply(r, true) {
			st.skipped++
		}
		if r.kind == recDone {
			st.done[r.id] = true
		} else {
			delete(st.done, r.id)
		}
	}
	st.torn = int64(len(data) - off)
	f, err := os.OpenFile(j.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, st, err
	}
	if st.torn > 0 {
		err = f.Truncate(int64(off))
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			f.Close()
			return nil, st, fmt.Errorf("cut torn tail: %w", err)
		}
	}
	j.f, j.size = f, int64(off)
	return j, st, nil
}

// apply takes record r into the live picture (under mu, or before the
// journal is shared). copyEnv is set when r.env points into a buffer that
// is not r's own. It reports whether r made sense.
func (j *journal) apply(r rec, copyEnv bool) bool {
	if !validID(r.id) {
		return false
	}
	switch r.kind {
	case recAdd, recUpdate:
		old, ok := j.live[r.id]
		if r.kind == recUpdate && !ok {
			return true // the message is gone already
		}
		env := r.env
		if copyEnv {
			env = slices.Clone(env)
		}
		if ok {
			j.liveBytes -= rec{id: r.id, env: old}.size()
		}
		j.live[r.id] = env
		j.liveBytes += r.size()
	case recDone:
		if old, ok := j.live[r.id]; ok {
			j.liveBytes -= rec{id: r.id, env: old}.size()
			delete(j.live, r.id)
		}
	default:
		return false
	}
	return true
}

// append writes recs with one write(2) and returns the logical offset to
// pass to syncTo. On error nothing of recs is in the journal.
func (j *journal) append(recs ...rec) (int64, error) {
	n := 0
	for _, r := range recs {
		n += int(r.size())
	}
	buf := make([]byte, 0, n)
	for _, r := range recs {
		buf = appendRecord(buf, r)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.broken != nil {
		return 0, j.broken
	}
	w, err := j.f.Write(buf)
	if err != nil {
		if w > 0 {
			// A partial record followed by later ones would end the replay
			// early: cut it off, or refuse every later append.
			if terr := j.f.Truncate(j.size); terr != nil {
				j.broken = fmt.Errorf("journal: partial record not cut off: %w", terr)
			}
		}
		return 0, fmt.Errorf("journal: %w", err)
	}
	j.size += int64(w)
	j.written += int64(w)
	for _, r := range recs {
		j.apply(r, false)
	}
	if j.compacting {
		j.tail = append(j.tail, buf...)
	}
	return j.written, nil
}

// syncTo returns once every append up to logical offset off is on stable
// storage, making at most one fdatasync for every caller waiting meanwhile.
func (j *journal) syncTo(off int64) error {
	j.smu.Lock()
	defer j.smu.Unlock()
	for j.synced < off {
		if j.syncing || j.swap {
			j.scond.Wait()
			continue
		}
		j.syncing = true
		j.mu.Lock()
		f, target := j.f, j.written
		j.mu.Unlock()
		j.smu.Unlock()
		err := fdatasync(f)
		j.smu.Lock()
		j.syncing = false
		if err == nil && target > j.synced {
			j.synced = target
		}
		j.scond.Broadcast()
		if err != nil {
			return fmt.Errorf("journal: sync: %w", err)
		}
	}
	return nil
}

// get returns the JSON envelope of a live message.
func (j *journal) get(id string) ([]byte, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	env, ok := j.live[id]
	return env, ok
}

// snapshot returns the live envelopes (the values are never modified).
func (j *journal) snapshot() map[string][]byte {
	j.mu.Lock()
	defer j.mu.Unlock()
	m := make(map[string][]byte, len(j.live))
	for id, env := range j.live {
		m[id] = env
	}
	return m
}

// appendSync appends recs and returns once they are durable.
func (j *journal) appendSync(recs ...rec) error {
	off, err := j.append(recs...)
	if err == nil {
		err = j.syncTo(off)
	}
	return err
}

// linkTo gives the journal file a second name (a copy set aside for the
// operator costs no copying).
func (j *journal) linkTo(path string) error { return os.Link(j.path, path) }

// close closes the journal file; nothing may be appended after it.
func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.f.Close()
}
