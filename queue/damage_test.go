package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"gomta/mta/mtatest"
)

// observed opens dir with a logger whose lines the test can read.
func observed(t *testing.T, dir string, mod func(*Options)) (*Queue, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	q := open(t, dir, func(o *Options) {
		o.Logger = zap.New(core)
		if mod != nil {
			mod(o)
		}
	})
	return q, logs
}

// commitEight queues eight messages in a fresh spool and returns their ids
// and bodies, in acceptance order.
func commitEight(t *testing.T, dir string) (ids []string, bodies map[string]string) {
	t.Helper()
	q := open(t, dir, nil)
	bodies = map[string]string{}
	for i := range 8 {
		body := fmt.Sprintf("Subject: message %d\r\n\r\nbody %d\r\n", i, i)
		id := commit(t, q, "s@x.test", []string{"a@x.test", fmt.Sprintf("r%d@x.test", i)}, body)
		ids = append(ids, id)
		bodies[id] = body
	}
	return ids, bodies
}

// flipFirstRecord damages one byte inside the journal's first record.
func flipFirstRecord(t *testing.T, dir string) {
	t.Helper()
	p := filepath.Join(dir, "journal")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[recHeader+1+idLen+5] ^= 0x20 // inside the first envelope's JSON
	if err := os.WriteFile(p, data, 0o640); err != nil {
		t.Fatal(err)
	}
}

// deliverAll runs q until every message was attempted once and returns what
// the handler saw, by id.
func deliverAll(t *testing.T, q *Queue, n int) map[string]seen {
	t.Helper()
	h, ch := recorder(t, nil)
	stop := run(t, q, h)
	retryAll(t, q) // a restart keeps each message's next attempt
	got := map[string]seen{}
	for range n {
		s := next(t, ch)
		got[s.ID] = s
	}
	mtatest.Eventually(t, "spool empty", func() bool { return q.Len() == 0 })
	stop()
	return got
}

// TestDamagedJournalRecordCostsNothing: with one flipped byte in the first
// journal record, the replay resynchronises after the damaged record rather
// than ending there (which would leave every later body without an
// envelope), the message whose record it was is rebuilt from the envelope
// copy on its body, and the damaged journal is kept in corrupt/.
func TestDamagedJournalRecordCostsNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ids, bodies := commitEight(t, dir)
	flipFirstRecord(t, dir)

	q, logs := observed(t, dir, nil)
	if logs.FilterMessage("journal damaged record skipped").Len() != 1 {
		t.Fatalf("no error line for the damaged record: %v", logs.All())
	}
	if q.Corrupt() != 1 || len(files(t, dir, "corrupt")) != 1 || !strings.HasPrefix(files(t, dir, "corrupt")[0], "journal-") {
		t.Fatalf("damaged journal not kept in corrupt/: %v (Corrupt %d)", files(t, dir, "corrupt"), q.Corrupt())
	}
	got := deliverAll(t, q, 8)
	for i, id := range ids {
		s, ok := got[id]
		if !ok || s.Body != bodies[id] || !slices.Equal(s.Rcpts, []string{"a@x.test", fmt.Sprintf("r%d@x.test", i)}) || s.From != "s@x.test" {
			t.Errorf("message %d (%s): %+v", i, id, s)
		}
	}
	rec := logs.FilterMessage("message recovered from its spool file").All()
	if len(rec) != 1 || rec[0].ContextMap()["msg_id"] != ids[0] {
		t.Errorf("recovered lines: %v", rec)
	}
	if l := logs.FilterMessage("spool loaded").All(); len(l) != 1 || l[0].ContextMap()["recovered"] != int64(1) || l[0].ContextMap()["count"] != int64(8) {
		t.Errorf("spool loaded: %v", l)
	}
	if err := os.Remove(filepath.Join(dir, "corrupt", files(t, dir, "corrupt")[0])); err != nil {
		t.Fatal(err)
	}
	assertEmptySpool(t, dir)

	// The journal was rewritten: the next start meets no damage.
	_, logs2 := observed(t, dir, nil)
	if logs2.FilterMessage("journal damaged record skipped").Len() != 0 || logs2.FilterMessage("journal torn tail cut off").Len() != 0 {
		t.Errorf("damage met again: %v", logs2.All())
	}
}

// TestLostEnvelopeWithoutCopyIsSetAside: where no envelope copy can be read
// from the body, the body is moved to corrupt/, named in an error line and
// counted; it is never deleted, and the other messages are delivered.
func TestLostEnvelopeWithoutCopyIsSetAside(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ids, bodies := commitEight(t, dir)
	if err := unix.Removexattr(filepath.Join(dir, "msg", ids[0]), envXattr); err != nil {
		t.Skipf("no extended attributes here: %v", err) // the copy was never written: same case
	}
	flipFirstRecord(t, dir)

	q, logs := observed(t, dir, nil)
	got := deliverAll(t, q, 7)
	for _, id := range ids[1:] {
		if got[id].Body != bodies[id] {
			t.Errorf("%s: %+v", id, got[id])
		}
	}
	aside := filepath.Join(dir, "corrupt", ids[0])
	data, err := os.ReadFile(aside)
	if err != nil || string(data) != bodies[ids[0]] {
		t.Fatalf("body not kept whole in corrupt/: %q %v", data, err)
	}
	l := logs.FilterMessage("spool file moved to corrupt/").All()
	if len(l) != 1 || l[0].ContextMap()["msg_id"] != ids[0] || l[0].Level != zap.ErrorLevel {
		t.Errorf("error line naming the body: %v", l)
	}
	if q.Corrupt() != 2 { // the journal and the body
		t.Errorf("Corrupt() = %d, want 2", q.Corrupt())
	}
	// A later start still reports what waits in corrupt/.
	q2, logs2 := observed(t, dir, nil)
	if q2.Corrupt() != 2 || logs2.FilterMessage("spool corrupt/ holds files set aside for the operator").Len() != 1 {
		t.Errorf("corrupt/ not reported at the next start: %d %v", q2.Corrupt(), logs2.All())
	}
}

// TestShortBodyIsSetAside: a body shorter than its envelope says is damaged:
// set aside, never deleted.
func TestShortBodyIsSetAside(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q1 := open(t, dir, nil)
	bad := commit(t, q1, "s@x.test", []string{"a@x.test"}, "a body of some length\r\n")
	good := commit(t, q1, "s@x.test", []string{"a@x.test"}, "fine\r\n")
	p := filepath.Join(dir, "msg", bad)
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 5); err != nil {
		t.Fatal(err)
	}
	q2, logs := observed(t, dir, nil)
	got := deliverAll(t, q2, 1)
	if _, ok := got[good]; !ok {
		t.Fatalf("the good message was not delivered: %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "corrupt", bad)); err != nil || logs.FilterMessage("spool file moved to corrupt/").Len() != 1 {
		t.Fatalf("short body not set aside: %v %v", err, logs.All())
	}
}

// bounceHandler delivers everything but the recipients in fail, which fail
// permanently; WriteBounce fails while failBounce is set. Bounces (from <>)
// (from <>, written by WriteBounce) are recorded on bounces.
type bounceHandler struct {
	fail       map[string]bool
	failBounce atomic.Bool
	bounces    chan string // bodies of delivered bounces
	attempts   chan string // ids of every attempt
}

func (b *bounceHandler) Deliver(_ context.Context, m *Message) []Result {
	b.attempts <- m.ID
	body, _ := os.ReadFile(m.BodyPath)
	if m.From == "" && strings.HasPrefix(string(body), "Subject: bounce of ") {
		b.bounces <- string(body)
	}
	res := make([]Result, len(m.Rcpts))
	for i, r := range m.Rcpts {
		res[i] = Result{Rcpt: r}
		if b.fail[r] {
			res[i] = Result{Rcpt: r, Err: errors.New("550 no such user"), Permanent: true,
				Failure: Failure{Code: 550, Enhanced: "5.1.1", Text: "no such user", Remote: "mx.far.test"}}
		}
	}
	return res
}

func (b *bounceHandler) WriteBounce(w io.Writer, m *Message, failed []Failure) error {
	if b.failBounce.Load() {
		return errors.New("no space left on device")
	}
	return handlerFunc(nil).WriteBounce(w, m, failed)
}

func (b *bounceHandler) WriteDelay(w io.Writer, m *Message, pending []Failure) error {
	return handlerFunc(nil).WriteDelay(w, m, pending)
}

func (b *bounceHandler) WriteSuccess(w io.Writer, m *Message, done []Failure) error {
	return handlerFunc(nil).WriteSuccess(w, m, done)
}

func newBounceHandler(fail ...string) *bounceHandler {
	b := &bounceHandler{fail: map[string]bool{}, bounces: make(chan string, 100), attempts: make(chan string, 100)}
	for _, f := range fail {
		b.fail[f] = true
	}
	return b
}

func waitChan(t *testing.T, ch <-chan string, what string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return ""
	}
}

// TestBounceKeptUntilDurable: when the bounce of a failed recipient cannot
// be queued (disk full here), the message is not removed on its final
// attempt but stays queued, across a restart, with only the bounce left to
// do, until the bounce is durable; the failed recipient is not attempted
// again.
func TestBounceKeptUntilDurable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q1, logs := observed(t, dir, func(o *Options) { o.Retry = []time.Duration{} }) // first attempt is final
	h := newBounceHandler("gone@far.test")
	h.failBounce.Store(true)
	id := commit(t, q1, "s@x.test", []string{"a@x.test", "gone@far.test"}, "Subject: hi\r\n\r\nhi\r\n")
	stop := run(t, q1, h)
	waitChan(t, h.attempts, "the first attempt")
	mtatest.Eventually(t, "the failed bounce", func() bool {
		return logs.FilterMessage("bounce not queued, message kept until it is").Len() > 0
	})
	stop()
	env, err := q1.readEnvelope(id)
	if err != nil || len(env.Rcpts) != 0 || len(env.Failed) != 1 || env.Failed[0].Rcpt != "gone@far.test" {
		t.Fatalf("envelope after the failed bounce: %+v %v", env, err)
	}

	// After a restart, with room again, the bounce is queued and delivered;
	// the original is not attempted again.
	h.failBounce.Store(false)
	q2 := open(t, dir, nil)
	stop2 := run(t, q2, h)
	retryAll(t, q2) // the bounce's retry is a minute away
	b := waitChan(t, h.bounces, "the bounce")
	if !strings.Contains(b, "bounce of "+id) || !strings.Contains(b, "gone@far.test 550 5.1.1") {
		t.Fatalf("bounce body: %q", b)
	}
	mtatest.Eventually(t, "spool empty", func() bool { return q2.Len() == 0 })
	stop2()
	close(h.attempts)
	for a := range h.attempts {
		if a == id {
			t.Errorf("the original was attempted again after its recipients were settled")
		}
	}
	assertEmptySpool(t, dir)
}

// TestBounceHasRoomInAFullQueue: max_queue never blocks a bounce.
func TestBounceHasRoomInAFullQueue(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := open(t, dir, func(o *Options) { o.MaxMessages = 1 })
	h := newBounceHandler("gone@far.test")
	commit(t, q, "s@x.test", []string{"gone@far.test"}, "Subject: hi\r\n\r\nhi\r\n")
	if _, err := q.NewMessage(context.Background()); !errors.Is(err, ErrFull) {
		t.Fatalf("queue of 1 not full: %v", err)
	}
	run(t, q, h)
	waitChan(t, h.bounces, "the bounce")
	mtatest.Eventually(t, "spool empty", func() bool { return q.Len() == 0 })
}

// TestNullSenderNotBounced: a failed message from <> gets no bounce; it is
// removed, and the next message is delivered as usual.
func TestNullSenderNotBounced(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q, logs := observed(t, dir, nil)
	h := newBounceHandler("gone@far.test")
	commit(t, q, "", []string{"gone@far.test"}, "Subject: a bounce\r\n\r\nx\r\n")
	run(t, q, h)
	mtatest.Eventually(t, "the null sender's failure logged", func() bool {
		return logs.FilterMessage("bounce not sent for a message from the null sender").Len() == 1
	})
	mtatest.Eventually(t, "spool empty", func() bool { return q.Len() == 0 })
	marker := commit(t, q, "s@x.test", []string{"a@x.test"}, "marker\r\n")
	mtatest.Eventually(t, "the marker attempted", func() bool {
		for {
			select {
			case id := <-h.attempts:
				if id == marker {
					return true
				}
			default:
				return false
			}
		}
	})
	if len(h.bounces) != 0 {
		t.Fatal("a message from the null sender was bounced")
	}
}
