// Package jsbox owns the mailboxes of one mail host kept on NATS JetStream,
// so that every node of a cluster delivers into and serves POP3 from the
// same replicated mailboxes. It implements mailbox.Backend.
//
// Layout, per mail host (token: hostToken, collision-free from the folded
// host name):
//
//   - stream GOMTA_MB_<token>, Limits retention, one subject per mailbox,
//     gomta.mb.<token>.<user token> (userToken: base64url of the folded
//     account, so any account name, UTF-8 included, is one safe token);
//   - object store GOMTA_MBOBJ_<token> for messages over Options.InlineMax
//     (256 KiB) or the server's max payload: streamed in and out, the
//     stream message names the object;
//   - KV bucket GOMTA_POPLOCK_<token>, TTL = LeaseTTL: the POP3 lease, one
//     key per mailbox (the user token).
//
// Invariants and decisions:
//
//   - Deliver returns nil only when JetStream acknowledged the publish (the
//     message is stored on a quorum of replicas). A message is the trace
//     lines mailbox.TraceHeaders writes, then the spool file, byte for byte
//     (less the trace fields it starts with when Delivery.TraceLen says
//     so): POP3 sends the same octets as from a Maildir.
//   - A delivery carries Nats-Msg-Id "<msg_id>/<user token>": a retried or
//     redelivered attempt within the stream's Duplicates window (Dedup)
//     makes no second copy. An object staged for an attempt that turns out
//     to be a duplicate is deleted again; each attempt's object has its own
//     name, so a duplicate never overwrites an object a reader is streaming.
//   - A publish that fails has an unknown outcome (a lost ack may hide a
//     stored message naming its object): its object is kept, never
//     deleted then. Run sweeps every SweepEvery the objects older than the
//     Dedup window that no message names (sweep.go); only those are
//     orphans, so a listed message always has its body.
//   - One POP3 session per mailbox across the cluster: Open creates the
//     lease key (takeLease; held: mailbox.ErrInUse) and at once starts a
//     goroutine that refreshes it with Update(rev) every third of the TTL,
//     before listing (a listing may outlast the TTL); Commit and Close
//     delete it at its revision. The TTL is the bucket's, read at New and
//     every LeaseTTL/3 (watchTTL): the bucket is shared and the last node
//     to provision it sets it, so a node configured with a longer
//     lease_ttl still renews in time. A Box reads nothing once its lease
//     has run out, even before the refresher notices. A node that dies
//     leaves a lease that expires by itself after the TTL. A refresh that
//     finds another revision, or refreshes failing until the lease has run
//     out, mean the lease was lost: the Box ends (mailbox.ErrDone) and deletes nothing;
//     a refresh failing for a moment (a leader election) is retried. Commit
//     refreshes the lease once more before deleting, so a Box whose lease
//     expired unnoticed deletes nothing either.
//   - The listing is fixed at Open: the subject's messages counted at that
//     moment, read oldest first through a headers-only ordered consumer (a
//     50 MiB message is not read to list it). Only the lease holder deletes,
//     and new deliveries get higher sequences, so the first N messages the
//     consumer yields are exactly those counted.
//   - A message's UID is its stream sequence, stable across sessions and
//     nodes (a stream never reuses a sequence).
package jsbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"gomta/delivery/mailbox"
	"gomta/session/address"
	"gomta/session/logvocab"
)

// Headers of a stored message, besides Nats-Msg-Id.
const (
	hdrSize   = "Gomta-Size"   // exact octets POP3 sends (trace lines + body)
	hdrMsgID  = "Gomta-Msg-Id" // the queue's msg_id
	hdrObject = "Gomta-Object" // the object holding the body; absent: the body is the data
)

// headerRoom is what a stream message keeps free of its max payload for the
// headers (ours and JetStream's) and what an object chunk keeps free for the
// object store's own.
const headerRoom = 4096

// maxChunk caps an object chunk: a delivery or a RETR streaming an object
// holds about one chunk (plus the library's copy) at a time, so this bounds
// the memory of a large message, whatever the server's max payload.
const maxChunk = 256 << 10

// dropWait bounds the removal of an object no message names (best effort:
// sweep removes what is left).
const dropWait = 10 * time.Second

// Defaults of Options.
const (
	// defaultInline keeps a delivery, and a RETR, from holding a whole
	// large message in memory: with an 8 MiB max payload an inline
	// message is read whole into one buffer at Deliver and at RETR, while
	// an object moves a chunk at a time.
	defaultInline   = 256 << 10
	defaultLeaseTTL = 30 * time.Second
	defaultDedup    = 2 * time.Hour
)

var _ mailbox.Backend = (*Store)(nil)

// Options configure a Store.
type Options struct {
	JS       jetstream.JetStream
	Host     string        // mail host name (stream/bucket names derive from it)
	Node     string        // this node's name (logs, lease holder)
	Replicas int           // replicas of the stream and buckets; 0: 1
	Users    []string      // accounts (folded names as the local Store gets them)
	LeaseTTL time.Duration // POP3 lock lease; 0: 30 s; refreshed at TTL/3 while the session lives
	Dedup    time.Duration // de-duplication window for deliveries; 0: 2 h
	// InlineMax is the largest message kept in the stream message itself;
	// larger ones go to the object store, streamed. 0: 256 KiB. Never
	// more than the server's max payload allows.
	InlineMax int64
	// SweepEvery is how often Run removes objects no message names (left
	// by a publish whose outcome was unknown); 0: Dedup/2, at least a
	// minute.
	SweepEvery time.Duration
	Logger     *zap.Logger // nil: no logging
}

// Store is the set of mailboxes of one mail host on JetStream.
type Store struct {
	js     jetstream.JetStream
	log    *zap.Logger
	node   string
	token  string // the host's token
	name   string // the stream's name
	stream jetstream.Stream
	objs   jetstream.ObjectStore
	locks  jetstream.KeyValue
	// lockBucket is the lease bucket's name (takeLease reads its stream).
	lockBucket string
	leaseTTL   time.Duration // as configured: the bucket's TTL this node sets
	// bucketTTL is the lease bucket's TTL as last read (nanoseconds): the
	// bucket is shared and the last node to provision it sets it, so
	// leases run out and are renewed by it, not by leaseTTL (watchTTL).
	bucketTTL  atomic.Int64
	dedup      time.Duration // the stream's Duplicates window
	sweepEvery time.Duration
	inline     int64  // largest message kept in the stream itself
	chunk      uint32 // object chunk size

	mu      sync.RWMutex
	users   map[string]bool // folded accounts; under mu (Add extends it)
	stopped bool            // under mu: Run's ctx ended; no refresher starts

	stop chan struct{}  // closed when Run's ctx ends: refreshers stop
	wg   sync.WaitGroup // running refreshers; Add only under mu while !stopped
}

// New creates or updates the host's stream, object store and lease bucket
// (idempotent: every node calls it with the same options) and returns a
// Store for its users.
func New(ctx context.Context, opt Options) (*Store, error) {
	if opt.JS == nil {
		return nil, errors.New("jsbox: no JetStream")
	}
	if opt.Host == "" {
		return nil, errors.New("jsbox: empty Host")
	}
	log := opt.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if opt.Replicas <= 0 {
		opt.Replicas = 1
	}
	if opt.LeaseTTL <= 0 {
		opt.LeaseTTL = defaultLeaseTTL
	}
	if opt.Dedup <= 0 {
		opt.Dedup = defaultDedup
	}
	if opt.InlineMax <= 0 {
		opt.InlineMax = defaultInline
	}
	if opt.SweepEvery <= 0 {
		opt.SweepEvery = max(opt.Dedup/2, time.Minute)
	}
	maxPayload := opt.JS.Conn().MaxPayload()
	if maxPayload <= 2*headerRoom {
		return nil, fmt.Errorf("jsbox: server max payload %d too small", maxPayload)
	}
	tok := hostToken(opt.Host)
	s := &Store{
		js:         opt.JS,
		log:        log,
		node:       opt.Node,
		token:      tok,
		name:       "GOMTA_MB_" + tok,
		leaseTTL:   opt.LeaseTTL,
		dedup:      opt.Dedup,
		sweepEvery: opt.SweepEvery,
		inline:     min(maxPayload-headerRoom, opt.InlineMax),
		chunk:      uint32(min(maxPayload-headerRoom, maxChunk)),
		users:      map[string]bool{},
		stop:       make(chan struct{}),
	}
	if err := s.Add(opt.Users); err != nil {
		return nil, err
	}
	if err := s.provision(ctx, opt); err != nil {
		return nil, err
	}
	return s, nil
}

// provision creates or updates the stream and the two buckets.
func (s *Store) provision(ctx context.Context, opt Options) error {
	var err error
	s.stream, err = s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        s.name,
		Description: "gomta mailboxes of " + opt.Host,
		Subjects:    []string{"gomta.mb." + s.token + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    opt.Replicas,
		Duplicates:  opt.Dedup,
		// No direct get: a direct get may be answered by a replica that
		// is not yet caught up, and RETR must find every listed message.
		AllowDirect: false,
	})
	if err != nil {
		return fmt.Errorf("jsbox: stream %s: %w", s.name, err)
	}
	s.objs, err = s.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      "GOMTA_MBOBJ_" + s.token,
		Description: "gomta large mailbox messages of " + opt.Host,
		Storage:     jetstream.FileStorage,
		Replicas:    opt.Replicas,
	})
	if err != nil {
		return fmt.Errorf("jsbox: object store of %s: %w", opt.Host, err)
	}
	s.locks, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      "GOMTA_POPLOCK_" + s.token,
		Description: "gomta POP3 leases of " + opt.Host,
		TTL:         opt.LeaseTTL,
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    opt.Replicas,
	})
	if err != nil {
		return fmt.Errorf("jsbox: lease bucket of %s: %w", opt.Host, err)
	}
	// takeLease reads the bucket's stream leader itself; the handle's
	// direct gets (any replica) are never trusted to say "in use".
	s.lockBucket = "GOMTA_POPLOCK_" + s.token
	return s.readTTL(ctx)
}

// Add extends the set of accounts (a reload). Mailboxes need no creation: a
// subject exists once mail is delivered to it. An account is never removed.
func (s *Store) Add(users []string) error {
	var errs []error
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range users {
		key := address.Account(u)
		if key == "" {
			errs = append(errs, fmt.Errorf("jsbox: empty user %q", u))
			continue
		}
		s.users[key] = true
	}
	return errors.Join(errs...)
}

// user folds name and checks it is an account here.
func (s *Store) user(name string) (string, error) {
	key := address.Account(name)
	s.mu.RLock()
	ok := s.users[key]
	s.mu.RUnlock()
	if !ok {
		return "", fmt.Errorf("%w: %s", mailbox.ErrNoUser, name)
	}
	return key, nil
}

// Run sweeps objects no message names every SweepEvery and follows the
// lease bucket's TTL (watchTTL) until ctx ends, then stops the lease refreshers and returns nil once they have stopped.
// Leases of Boxes still open then expire by themselves after LeaseTTL.
func (s *Store) Run(ctx context.Context) error {
	var loops sync.WaitGroup
	loops.Go(func() { s.watchTTL(ctx) })
	s.sweeper(ctx, s.sweepEvery)
	loops.Wait()
	s.mu.Lock()
	if !s.stopped {
		s.stopped = true
		close(s.stop)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Deliver stores the spool file at d.BodyPath, after the trace lines, as a
// new message of d.User's mailbox. It returns nil only once JetStream
// acknowledged it, and logs "message delivered" with its stream sequence.
// When ctx ends first the message may still be stored (at-least-once; a
// retry within the Dedup window is then recognised as a duplicate).
func (s *Store) Deliver(ctx context.Context, d mailbox.Delivery) error {
	start := time.Now()
	user, err := s.user(d.User)
	if err != nil {
		return err
	}
	seq, size, dup, err := s.store(ctx, user, d)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("delivery failed", zap.String("msg_id", d.MsgID), zap.String(logvocab.User, user), zap.Error(err))
		}
		return err
	}
	s.log.Info("message delivered",
		zap.String("msg_id", d.MsgID),
		zap.String(logvocab.User, user),
		zap.String(logvocab.Rcpt, d.Rcpt),
		zap.Uint64("seq", seq),
		zap.Bool("duplicate", dup),
		zap.Int64("bytes", size),
		zap.Int64("duration_ms", time.Since(start).Milliseconds()))
	return nil
}

// store publishes one delivery and returns its stream sequence, its size in
// octets and whether JetStream found it a duplicate of an earlier attempt.
func (s *Store) store(ctx context.Context, user string, d mailbox.Delivery) (uint64, int64, bool, error) {
	f, err := os.Open(d.BodyPath)
	if err != nil {
		return 0, 0, false, fmt.Errorf("jsbox: open body: %w", err)
	}
	defer f.Close()
	size := d.Size
	if size <= 0 {
		fi, err := f.Stat()
		if err != nil {
			return 0, 0, false, fmt.Errorf("jsbox: body: %w", err)
		}
		size = fi.Size()
	}
	if d.TraceLen > 0 {
		// The spool file starts with trace fields written for one local
		// account (the queue's hard-link case): skip them and write this
		// mailbox's own, or the message would carry two sets.
		if d.TraceLen > size {
			return 0, 0, false, fmt.Errorf("jsbox: trace fields of %d octets in a body of %d", d.TraceLen, size)
		}
		if _, err := f.Seek(d.TraceLen, io.SeekStart); err != nil {
			return 0, 0, false, fmt.Errorf("jsbox: body: %w", err)
		}
		size -= d.TraceLen
	}
	trace := mailbox.TraceHeaders(d.From, user)
	total := int64(len(trace)) + size
	utok := userToken(user)
	msg := nats.NewMsg(s.subject(utok))
	msg.Header.Set(hdrSize, strconv.FormatInt(total, 10))
	msg.Header.Set(hdrMsgID, headerValue(d.MsgID))
	var obj string
	if total > s.inline {
		obj, err = s.putObject(ctx, d.MsgID, utok, total, io.MultiReader(bytes.NewReader(trace), f))
		if err != nil {
			return 0, 0, false, err
		}
		msg.Header.Set(hdrObject, obj)
	} else {
		msg.Data = make([]byte, total)
		copy(msg.Data, trace)
		if _, err := io.ReadFull(f, msg.Data[len(trace):]); err != nil {
			return 0, 0, false, fmt.Errorf("jsbox: read body: %w", err)
		}
	}
	opts := []jetstream.PublishOpt{jetstream.WithExpectStream(s.name)}
	if d.MsgID != "" {
		opts = append(opts, jetstream.WithMsgID(headerValue(d.MsgID)+"/"+utok))
	}
	ack, err := s.js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		if obj != "" {
			// The outcome is unknown: a timeout or a leader election may
			// lose only the ack, and the stored message then names obj.
			// Deleting it would leave a listed message without a body;
			// sweep removes it once the Dedup window shows no message
			// names it.
			s.log.Warn("object kept: publish outcome unknown", zap.String("msg_id", d.MsgID),
				zap.String(logvocab.User, user), zap.String("object", obj), zap.Error(err))
		}
		return 0, 0, false, fmt.Errorf("jsbox: publish: %w", err)
	}
	if ack.Duplicate && obj != "" {
		s.dropDuplicate(ack.Sequence, obj)
	}
	return ack.Sequence, total, ack.Duplicate, nil
}

// dropDuplicate deletes the object staged for an attempt JetStream found a
// duplicate of the message at seq, unless that message names it (it never
// should: each attempt stages its own object). When the stored message
// cannot be read, the object is kept for sweep.
func (s *Store) dropDuplicate(seq uint64, obj string) {
	ctx, cancel := context.WithTimeout(context.Background(), dropWait)
	defer cancel()
	m, err := s.stream.GetMsg(ctx, seq)
	if err != nil {
		s.log.Warn("object kept: duplicate not read", zap.Uint64("seq", seq), zap.String("object", obj), zap.Error(err))
		return
	}
	if m.Header.Get(hdrObject) != obj {
		s.dropObject(obj)
	}
}

// putObject streams r (want octets) into a new object and returns its name.
func (s *Store) putObject(ctx context.Context, msgID, utok string, want int64, r io.Reader) (string, error) {
	name := msgID + "/" + utok + "/" + nonce()
	info, err := s.objs.Put(ctx, jetstream.ObjectMeta{
		Name: name,
		Opts: &jetstream.ObjectMetaOptions{ChunkSize: s.chunk},
	}, io.LimitReader(r, want))
	if err != nil {
		return "", fmt.Errorf("jsbox: put object: %w", err)
	}
	if int64(info.Size) != want {
		// The spool file is shorter than the queue said: the size POP3
		// announces would be wrong.
		s.dropObject(name)
		return "", fmt.Errorf("jsbox: body has %d octets, want %d", info.Size, want)
	}
	return name, nil
}

// dropObject deletes an object no message names (best effort: an object
// left behind costs space, never a wrong message).
func (s *Store) dropObject(name string) {
	if name == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), dropWait)
	defer cancel()
	if err := s.objs.Delete(ctx, name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		s.log.Warn("object not removed", zap.String("object", name), zap.Error(err))
	}
}

func (s *Store) subject(utok string) string { return "gomta.mb." + s.token + "." + utok }

// hostToken names a mail host in stream, subject and bucket names: the
// folded host name (a domain is case-insensitive) in base32hex without
// padding ("E" + …), whose alphabet (0-9, A-V) is safe in all of them and
// keeps distinct names distinct; a name whose encoding would be over 64
// characters is "Z" + its SHA-256 in hex, so that names stay under the
// server's limits.
func hostToken(host string) string {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	enc := base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte(h))
	if len(enc) <= 64 {
		return "E" + enc
	}
	sum := sha256.Sum256([]byte(h))
	return "Z" + strings.ToUpper(hex.EncodeToString(sum[:]))
}

// userToken names a mailbox in a subject and a KV key: base64url without
// padding of the folded account, whose alphabet (A-Z a-z 0-9 - _) is valid
// in both, whatever the name (UTF-8, dots, spaces).
func userToken(user string) string { return base64.RawURLEncoding.EncodeToString([]byte(user)) }

// headerValue drops what would end a header line.
func headerValue(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// nonce is 16 random hex digits.
func nonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
