package queue

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"gomta/session/metrics"
)

// Defaults for zero Options fields.
const (
	defaultWorkers     = 16
	defaultMaxMessages = 100000
	// minBounceRoom is the least room bounces have beyond MaxMessages
	// (otherwise a tenth of it).
	minBounceRoom = 100
)

// Options configure a Queue. Zero values mean the documented defaults.
//
// The retry schedule is either Retry, an explicit list of waits (the
// attempt after its last wait is Final), or, when Retry is empty, an
// exponential backoff: RetryBase after the first attempt, doubling after
// each further one, never more than RetryMax. With neither, the first
// attempt is Final. Either way MaxLifetime ends it: no wait reaches past
// Received+MaxLifetime, and the attempt made then is Final, so recipients
// still failing temporarily bounce with 5.4.7 (RFC 3463 X.4.7 delivery
// time expired). The defaults are the config's (mta/config).
type Options struct {
	Dir         string          // spool directory (created if missing)
	Host        string          // mail host name, for logs
	Workers     int             // concurrent delivery attempts; 0 = default 16
	MaxMessages int             // messages in the spool before ErrFull; 0 = default 100000; <0 = unlimited
	Retry       []time.Duration // explicit waits before attempts 2,3,...; after the last one the next attempt is Final
	RetryBase   time.Duration   // with no Retry: the first wait of the exponential backoff (0: no backoff)
	RetryMax    time.Duration   // with no Retry: the longest wait (0: RetryBase)
	MaxLifetime time.Duration   // how long a message is retried after acceptance; 0 = no limit
	// DelayWarning is the age after which a message with recipients still
	// pending gets one delay notice (RFC 3464 Action: delayed) to its
	// sender, never to the null sender; 0 = none.
	DelayWarning time.Duration
	Logger       *zap.Logger
	Metrics      *metrics.Queue // nil: not counted
}

// Queue is the spool of one mail host. NewMessage, Submit and Len are safe from
// any goroutine; Run is the scheduling loop and runs at most once at a time.
type Queue struct {
	msgDir     string // bodies
	corruptDir string // bodies and journals set aside for the operator
	j          *journal
	xattr      atomic.Bool     // the spool's file system keeps the envelope copy on bodies
	doneIDs    map[string]bool // from the journal replay: bodies that may go (load only)
	corrupt    atomic.Int64    // files in corrupt/ (Corrupt)

	workers int
	max     int64 // < 0: unlimited
	sched   schedule
	log     *zap.Logger
	metrics *metrics.Queue // nil: not counted

	count atomic.Int64  // drafts + inbox + messages owned by Run (see Len)
	seq   atomic.Uint32 // id counter
	inRun atomic.Bool

	committer *groupCommitter

	// mu guards the hand-off between committing sessions and Run. It never
	// guards the schedule, which only Run's goroutine touches.
	mu     sync.Mutex
	drafts map[string]struct{} // ids of drafts not yet committed or aborted
	inbox  []*envelope         // committed, not yet taken by Run
	kick   chan struct{}       // buffered 1: inbox is not empty

	ctl chan ctlRequest // control requests (control.go), answered by Run
}

// Open prepares the spool directories under opt.Dir and opens the journal
// (replaying it, cutting off a torn tail).
// The messages are scheduled by Run.
func Open(opt Options) (*Queue, error) {
	if opt.Dir == "" {
		return nil, errors.New("queue: no spool directory")
	}
	q := &Queue{
		msgDir:     filepath.Join(opt.Dir, "msg"),
		corruptDir: filepath.Join(opt.Dir, "corrupt"),
		workers:    opt.Workers,
		max:        int64(opt.MaxMessages),
		sched:      newSchedule(opt),
		log:        opt.Logger,
		metrics:    opt.Metrics,
		drafts:     make(map[string]struct{}),
		kick:       make(chan struct{}, 1),
		ctl:        make(chan ctlRequest),
	}
	if q.workers <= 0 {
		q.workers = defaultWorkers
	}
	if q.max == 0 {
		q.max = defaultMaxMessages
	}
	if q.log == nil {
		q.log = zap.NewNop()
	}
	q.log = q.log.With(zap.String("host", opt.Host))
	for _, d := range []string{opt.Dir, q.msgDir, q.corruptDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("queue: open %s: %w", d, err)
		}
	}
	j, st, err := openJournal(opt.Dir)
	if err != nil {
		return nil, fmt.Errorf("queue: open journal: %w", err)
	}
	q.j, q.doneIDs = j, st.done
	q.committer = newGroupCommitter(q.commitBatch)
	if st.torn > 0 {
		q.log.Warn("journal torn tail cut off", zap.Int64("bytes", st.torn))
	}
	if st.skipped > 0 {
		q.log.Warn("journal records skipped", zap.Int("count", st.skipped))
	}
	if len(st.damaged) > 0 {
		if err := q.setJournalAside(st.damaged); err != nil {
			j.close()
			return nil, fmt.Errorf("queue: damaged journal: %w", err)
		}
	}
	q.probeXattr()
	// The new directory entries themselves must survive a crash before the
	// first message can be called durable.
	for _, d := range []string{filepath.Dir(opt.Dir), opt.Dir} {
		if err := syncDir(d); err != nil {
			return nil, fmt.Errorf("queue: open %s: %w", d, err)
		}
	}
	var s [4]byte
	_, _ = rand.Read(s[:])
	q.seq.Store(binary.BigEndian.Uint32(s[:]))
	return q, nil
}

// Len reports the messages this Queue holds: drafts in progress, committed
// messages, and (while Run is running) everything loaded from the spool. It is
// the number compared with MaxMessages.
func (q *Queue) Len() int { return int(q.count.Load()) }

// reserve takes one place for a new draft, or reports that the queue is
// full. Bounces have room of their own beyond MaxMessages (bounceRoom), so
// that a full queue never blocks the bounce that lets a message go.
func (q *Queue) reserve(bounce bool) bool {
	limit := q.max
	if bounce && limit >= 0 {
		limit += max(q.max/10, minBounceRoom)
	}
	for {
		n := q.count.Load()
		if limit >= 0 && n >= limit {
			return false
		}
		if q.count.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (q *Queue) release() { q.count.Add(-1) }

// idEncoding is base32hex in lower case: its alphabet is in ASCII order, so
// ids sort as their bytes do (time first), and it is safe in any file name.
var idEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// idLen is the length of an id: 12 bytes in base32 (96 bits / 5, rounded up).
const idLen = 20

// newID returns a new message id: 48 bits of Unix milliseconds (so ids sort
// roughly by acceptance time), a 16-bit per-queue counter (order within a
// millisecond), and 32 random bits (unique across processes sharing nothing).
func (q *Queue) newID() string { return NewID(uint16(q.seq.Add(1))) }

// NewID returns a message id with counter as its order within a
// millisecond: the one id scheme of every spool (queue/jsq uses it too).
func NewID(counter uint16) string {
	var b [12]byte
	ms := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint64(b[0:8], ms<<16|uint64(counter))
	_, _ = rand.Read(b[8:12]) // crypto/rand.Read never fails (Go 1.24+)
	return idEncoding.EncodeToString(b[:])
}

// ReportID is the id of message orig's report named key ("bounce/3",
// "delay", …): orig's time, so that it sorts near it, then 48 bits of a
// hash of both (an id of its own, the same for the same report).
func ReportID(orig, key string) string {
	var b [12]byte
	if raw, err := idEncoding.DecodeString(orig); err == nil && len(raw) == len(b) {
		copy(b[:6], raw[:6])
	}
	sum := sha256.Sum256([]byte(orig + "/" + key))
	copy(b[6:], sum[:6])
	return idEncoding.EncodeToString(b[:])
}

// ValidID reports whether name has the shape of an id: spool file names
// that are not ids are left alone, and no control request can name a
// subject wildcard or another token.
func ValidID(name string) bool { return validID(name) }

func validID(name string) bool {
	if len(name) != idLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'v') {
			return false
		}
	}
	return true
}
