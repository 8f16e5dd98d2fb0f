package mta

import (
	"context"
	"errors"
	"fmt"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap/zaptest"
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
	cfg, err := Parse("test", append(b, []byte("\n[gomta]\n"+gomta)...), "fdns", mustRead(t, "../configs/cs305-fdns.toml"))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Server("exmail.qq.com")
	s.SMTPPort, s.POPPort = 0, 0
	h, err := NewHost(cfg, s, t.TempDir(), nil, zaptest.NewLogger(t))
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
	tmp, _ := os.ReadDir(filepath.Join(h.dataDir, "spool", "tmp"))
	if len(tmp) != 0 {
		t.Errorf("refused message left %d file(s) in the spool's tmp", len(tmp))
	}
}
