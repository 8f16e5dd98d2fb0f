package mta

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"gomta/mta/config"
	"gomta/mta/mtatest"
	"gomta/queue"
)

// testHost builds exmail.qq.com of the default config on free ports with
// extra [gomta] settings, and serves SMTP only: its queue never runs, so
// messages stay in the spool.
func testHost(t *testing.T, gomta string) *Host {
	t.Helper()
	b, err := os.ReadFile("../configs/cs305-config.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("test", append(b, []byte("\n[gomta]\n"+gomta)...), "fdns", mustRead(t, "../configs/cs305-fdns.toml"))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Server("exmail.qq.com")
	s.SMTPPort, s.POPPort = 0, 0
	h, err := NewHost(cfg, s, t.TempDir(), nil, zaptest.NewLogger(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	go h.smtp.Serve(h.smtpLn)
	t.Cleanup(func() {
		h.smtp.Shutdown(context.Background())
		h.Close()
	})
	return h
}

func send(addr string, n int) error {
	body := fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", n)
	return smtp.SendMail(addr, nil, "usr1@mail.sustech.edu.cn", []string{"usr2@mail.sustech.edu.cn"}, []byte(body))
}

func TestQueueFullIs452(t *testing.T) {
	h := testHost(t, "max_queue = 2\n")
	for i := range 2 {
		if err := send(h.SMTPAddr.String(), i); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	err := send(h.SMTPAddr.String(), 3)
	var te *textproto.Error
	if !errors.As(err, &te) || te.Code != 452 || te.Msg[:5] != "4.3.1" {
		t.Fatalf("third message with max_queue = 2: %v, want 452 4.3.1", err)
	}
	if n := h.Queue.Len(); n != 2 {
		t.Errorf("queue holds %d, want 2", n)
	}
	// Drafts are written in spool/msg: the refused message left no body there.
	bodies, err := os.ReadDir(filepath.Join(h.dataDir, "spool", "msg"))
	if err != nil || len(bodies) != 2 {
		t.Errorf("spool/msg holds %d bodies (%v), want the 2 queued ones", len(bodies), err)
	}
}

// TestDeliveredMessageLeavesNothingQueued runs the host's queue: once a
// message is in the Maildir, its body leaves spool/msg, and a queue reopened
// on the spool (as after a restart) loads no live envelope from the journal.
func TestDeliveredMessageLeavesNothingQueued(t *testing.T) {
	h := testHost(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	core := make(chan error, 1)
	go func() { core <- h.runCore(ctx) }()
	if err := send(h.SMTPAddr.String(), 1); err != nil {
		t.Fatal(err)
	}
	inbox := filepath.Join(h.dataDir, "mail", "usr2@mail.sustech.edu.cn", "new")
	mtatest.Eventually(t, "the message in usr2's Maildir", func() bool {
		ents, err := os.ReadDir(inbox)
		return err == nil && len(ents) == 1
	})
	spool := filepath.Join(h.dataDir, "spool")
	mtatest.Eventually(t, "spool/msg empty after the delivery", func() bool {
		ents, err := os.ReadDir(filepath.Join(spool, "msg"))
		return err == nil && len(ents) == 0
	})
	cancel()
	if err := <-core; err != nil {
		t.Fatalf("queue: %v", err)
	}

	obs, logs := observer.New(zap.InfoLevel)
	q, err := queue.Open(queue.Options{Dir: spool, Host: h.Name, Logger: zap.New(obs)})
	if err != nil {
		t.Fatal(err)
	}
	qctx, qcancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- q.Run(qctx, noHandler{t}) }()
	mtatest.Eventually(t, "the reopened queue's spool loaded line", func() bool {
		return logs.FilterMessage("spool loaded").Len() > 0
	})
	qcancel()
	if err := <-ran; err != nil {
		t.Fatalf("reopened queue: %v", err)
	}
	// A live envelope shows as a loaded message, or as a line about it (its
	// body is gone: "envelope without a body dropped"), logged before "spool loaded".
	line := logs.FilterMessage("spool loaded").All()[0]
	if n := line.ContextMap()["count"]; n != int64(0) {
		t.Errorf("the journal still holds %v live envelope(s) after delivery", n)
	}
	for _, e := range logs.FilterFieldKey("msg_id").All() {
		t.Errorf("the journal still holds an envelope after delivery: %q %v", e.Message, e.ContextMap())
	}
}

// noHandler fails the test if the queue hands it a message.
type noHandler struct{ t *testing.T }

func (h noHandler) Deliver(_ context.Context, m *queue.Message) []queue.Result {
	h.t.Errorf("reopened queue delivers %s again", m.ID)
	res := make([]queue.Result, len(m.Rcpts))
	for i, r := range m.Rcpts {
		res[i].Rcpt = r
	}
	return res
}

func (h noHandler) WriteBounce(_ io.Writer, m *queue.Message, _ []queue.Failure) error {
	h.t.Errorf("reopened queue bounces %s", m.ID)
	return nil
}

func (h noHandler) WriteDelay(_ io.Writer, m *queue.Message, _ []queue.Failure) error {
	h.t.Errorf("reopened queue sends a delay notice for %s", m.ID)
	return nil
}

func (h noHandler) WriteSuccess(_ io.Writer, m *queue.Message, _ []queue.Failure) error {
	h.t.Errorf("reopened queue sends a success notice for %s", m.ID)
	return nil
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
