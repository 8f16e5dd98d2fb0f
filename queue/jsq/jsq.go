package jsq

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"gomta/queue"
	"gomta/session/logvocab"
	"gomta/session/metrics"
)

// Defaults for zero Options fields (the local queue's where it has them).
const (
	defaultWorkers     = 16
	defaultMaxMessages = 100000
	defaultAckWait     = 60 * time.Second
	// dupWindow is how long JetStream remembers a Nats-Msg-Id: a publish
	// retried within it (a lost ack, a reconnect) makes no second message.
	dupWindow = 10 * time.Minute
	// opTimeout bounds one JetStream request made outside a caller's ctx
	// (settling an attempt after Run's ctx ended, Len).
	opTimeout = 10 * time.Second
	// countTTL is how long the stream's message count is trusted for
	// ErrFull and Len: one stream info request per commit would double
	// the cost of a commit for an approximate limit.
	countTTL = 500 * time.Millisecond
	// countTimeout bounds one stream info request for the count: without
	// quorum it would wait JetStream's own timeout, and every session
	// asking meanwhile would wait with it.
	countTimeout = 2 * time.Second
	// consumerName is the durable consumer every node pulls from.
	consumerName = "deliver"
)

// Options configure a Queue. Zero values mean the documented defaults.
type Options struct {
	JS           jetstream.JetStream
	Host         string          // mail host name (stream/bucket names derive from it)
	Node         string          // this node's name, unique in the cluster: logs, which node holds an attempt; "": host name and pid
	Replicas     int             // JetStream replicas for streams/buckets (1..5); 0: 1
	Workers      int             // concurrent attempts on this node; 0: 16
	MaxMessages  int             // ErrFull beyond (-1 unlimited, 0: 100000); bounces get room beyond
	Retry        []time.Duration // explicit waits, or nil for RetryBase..RetryMax exponential
	RetryBase    time.Duration
	RetryMax     time.Duration
	MaxLifetime  time.Duration
	DelayWarning time.Duration
	AckWait      time.Duration // 0: 60 s; progress is signalled at AckWait/3
	TmpDir       string        // local directory where drafts and attempt bodies are staged; "": os.TempDir()
	Logger       *zap.Logger
	Metrics      *metrics.Queue // may be nil
}

// Queue is one mail host's queue on JetStream, as seen from one node. All
// its methods are safe from any goroutine; Run runs at most once at a time.
type Queue struct {
	js      jetstream.JetStream
	stream  jetstream.Stream
	cons    jetstream.Consumer
	kv      jetstream.KeyValue
	obj     jetstream.ObjectStore
	subject string // gomta.q.<token>: messages are <subject>.m.<id>
	node    string
	workers int
	max     int64 // < 0: unlimited
	ackWait time.Duration
	tmpDir  string
	sched   queue.Schedule
	// stageBase is the time an attempt's body read gets beyond its size's
	// share (stageRate): opTimeout; shorter in tests.
	stageBase time.Duration
	log       *zap.Logger
	metrics   *metrics.Queue

	handler atomic.Pointer[queue.Handler] // set by Run: Drop with bounce needs it
	drafts  atomic.Int64                  // writers not yet committed or aborted
	seq     atomic.Uint32                 // id counter

	countMu sync.Mutex // guards the fields below, never held across a request
	count   int64      // the last count known
	counted bool       // a count was had once (count is not a mere zero)
	// fetchWarn keeps the workers' fetch failures to one line a while.
	fetchWarn rateGate
	countErr  error         // the last request's error, cached like the count
	countAt   time.Time     // when the last request ended
	countReq  chan struct{} // closed when the request in flight ends; nil when none
}

var _ queue.Spool = (*Queue)(nil)

// Token is the part of stream, bucket and subject names that names host:
// its lower-case name in hex, so that two hosts never share one and any
// host name is valid there.
func Token(host string) string { return hex.EncodeToString([]byte(strings.ToLower(host))) }

// Open creates or updates the host's stream, buckets and consumer (every
// node calls it with the same options; it is idempotent) and returns the
// queue as this node sees it. Messages are delivered by Run.
func Open(ctx context.Context, opt Options) (*Queue, error) {
	if opt.JS == nil || opt.Host == "" {
		return nil, errors.New("jsq: JetStream and a host name are required")
	}
	rep := opt.Replicas
	if rep == 0 {
		rep = 1
	}
	if rep < 1 || rep > 5 {
		return nil, fmt.Errorf("jsq: replicas %d not in 1..5", rep)
	}
	if opt.Node == "" {
		// Attempts are told apart by node name: one is needed.
		h, _ := os.Hostname()
		opt.Node = fmt.Sprintf("%s-%d", h, os.Getpid())
	}
	tok := Token(opt.Host)
	q := &Queue{
		js: opt.JS, subject: "gomta.q." + tok, node: opt.Node,
		workers: opt.Workers, max: int64(opt.MaxMessages), ackWait: opt.AckWait,
		tmpDir: opt.TmpDir, sched: queue.NewSchedule(queue.Options{Retry: opt.Retry,
			RetryBase: opt.RetryBase, RetryMax: opt.RetryMax, MaxLifetime: opt.MaxLifetime,
			DelayWarning: opt.DelayWarning}),
		log: opt.Logger, metrics: opt.Metrics, stageBase: opTimeout,
	}
	if q.workers <= 0 {
		q.workers = defaultWorkers
	}
	if q.max == 0 {
		q.max = defaultMaxMessages
	}
	if q.ackWait <= 0 {
		q.ackWait = defaultAckWait
	}
	if q.tmpDir == "" {
		q.tmpDir = os.TempDir()
	}
	if err := os.MkdirAll(q.tmpDir, 0o750); err != nil {
		return nil, fmt.Errorf("jsq: tmp dir: %w", err)
	}
	if q.log == nil {
		q.log = zap.NewNop()
	}
	q.log = q.log.With(zap.String(logvocab.Host, opt.Host), zap.String(logvocab.Proto, logvocab.Queue),
		zap.String("node", opt.Node))
	var err error
	q.stream, err = q.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: "GOMTA_Q_" + tok, Subjects: []string{q.subject + ".>"},
		Retention: jetstream.WorkQueuePolicy, Duplicates: dupWindow, Replicas: rep,
		Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("jsq: stream: %w", err)
	}
	q.kv, err = q.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: "GOMTA_QS_" + tok, Replicas: rep, History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		return nil, fmt.Errorf("jsq: state bucket: %w", err)
	}
	q.obj, err = q.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: "GOMTA_QB_" + tok, Replicas: rep, Storage: jetstream.FileStorage})
	if err != nil {
		return nil, fmt.Errorf("jsq: body bucket: %w", err)
	}
	// MaxAckPending is unlimited: a message waiting for its next attempt
	// (nak'd with a delay) stays pending, so any limit would cap the queue;
	// Workers bounds the attempts in flight on each node instead.
	q.cons, err = q.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: consumerName, AckPolicy: jetstream.AckExplicitPolicy, AckWait: q.ackWait,
		MaxAckPending: -1, MaxDeliver: -1,
	})
	if err != nil {
		return nil, fmt.Errorf("jsq: consumer: %w", err)
	}
	return q, nil
}

// msgSubject is the subject of message id's stream message.
func (q *Queue) msgSubject(id string) string { return q.subject + ".m." + id }

// Len is the number of messages queued (drafts included), from the stream's
// count cached for countTTL; on a JetStream error the last count known.
func (q *Queue) Len() int {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	n, _ := q.streamCount(ctx)
	return int(n + q.drafts.Load())
}

// streamCount is the stream's message count, asked again when the cached
// one is older than countTTL. One request at a time is made, bounded by
// countTimeout and by no caller's ctx; the others wait for its answer (or
// their ctx), and an error is cached for countTTL like a count, so that
// without quorum every session gets its 451 within countTimeout instead
// of queueing one request after another.
func (q *Queue) streamCount(ctx context.Context) (int64, error) {
	q.countMu.Lock()
	if time.Since(q.countAt) < countTTL {
		n, err := q.countResult()
		q.countMu.Unlock()
		return n, err
	}
	req := q.countReq
	if req == nil {
		req = make(chan struct{})
		q.countReq = req
		go q.askCount(req)
	}
	q.countMu.Unlock()
	select {
	case <-req:
	case <-ctx.Done():
		q.countMu.Lock()
		defer q.countMu.Unlock()
		return q.count, ctx.Err()
	}
	q.countMu.Lock()
	defer q.countMu.Unlock()
	return q.countResult()
}

// countResult is the count to use, under countMu. When the last request
// failed but a count was had before, that count: the limit bounds the
// queue's size, it is no promise, and the publish at Commit decides whether
// the message can be stored (451 without quorum). Refusing on the error
// turned every leader election (a node killed) into seconds of 451s on the
// nodes still serving.
func (q *Queue) countResult() (int64, error) {
	if q.countErr != nil && q.counted {
		return q.count, nil
	}
	return q.count, q.countErr
}

// askCount makes the one stream info request of streamCount and closes req.
func (q *Queue) askCount(req chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), countTimeout)
	defer cancel()
	info, err := q.stream.Info(ctx)
	q.countMu.Lock()
	defer q.countMu.Unlock()
	if err != nil {
		q.countErr = fmt.Errorf("jsq: stream info: %w", err)
	} else {
		q.count, q.countErr, q.counted = int64(info.State.Msgs), nil, true
	}
	q.countAt, q.countReq = time.Now(), nil
	close(req)
}

// opCtx is a context for the JetStream requests that settle an attempt:
// they must be made even when Run's ctx has ended.
func opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

// objBucket is the name of the host's body object store (read through
// queue/jsobj, whose memory stays bounded whatever the body's size).
func (q *Queue) objBucket() string { return "GOMTA_QB_" + strings.TrimPrefix(q.subject, "gomta.q.") }
