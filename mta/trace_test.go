package mta

import (
	"context"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gomta/mta/mtatest"
)

// TestTraceWrittenForOneLocalRecipient: a message whose only recipient is
// a local account (however spelled, or given twice) is spooled after the
// Return-Path and Delivered-To its mailbox will have; one with two
// recipients or a remote one is not.
func TestTraceWrittenForOneLocalRecipient(t *testing.T) {
	h := testHost(t, "")
	const from = "usr1@mail.sustech.edu.cn"
	trace := "Return-Path: <" + from + ">\r\nDelivered-To: usr2@mail.sustech.edu.cn\r\nReceived: "
	for _, c := range []struct {
		rcpts []string
		want  string // the spool file's start
	}{
		{[]string{"usr2@mail.sustech.edu.cn"}, trace},
		{[]string{"USR2@mail.sustech.edu.cn", "usr2@MAIL.sustech.edu.cn"}, trace},
		{[]string{"usr2@mail.sustech.edu.cn", "usr1@mail.sustech.edu.cn"}, "Received: "},
		{[]string{"someone@gmail.com"}, "Received: "},
	} {
		msgDir := filepath.Join(h.dataDir, "spool", "msg")
		before, _ := os.ReadDir(msgDir)
		if err := smtp.SendMail(h.SMTPAddr.String(), nil, from, c.rcpts, []byte("Subject: t\r\n\r\nbody\r\n")); err != nil {
			t.Fatalf("%v: %v", c.rcpts, err)
		}
		after, err := os.ReadDir(msgDir)
		if err != nil || len(after) != len(before)+1 {
			t.Fatalf("%v: spool/msg holds %d bodies (%v), want %d", c.rcpts, len(after), err, len(before)+1)
		}
		seen := map[string]bool{}
		for _, e := range before {
			seen[e.Name()] = true
		}
		for _, e := range after {
			if seen[e.Name()] {
				continue
			}
			b, _ := os.ReadFile(filepath.Join(msgDir, e.Name()))
			if !strings.HasPrefix(string(b), c.want) || strings.Count(string(b), "Delivered-To:") > 1 {
				t.Errorf("%v: spool file starts %q, want %q", c.rcpts, b[:min(len(b), 120)], c.want)
			}
		}
	}
}

// TestTracedMessageLinkedIntoMaildir: delivered, such a message is the
// spool file linked into new/ (mode 0440, the queue's), its trace fields
// once.
func TestTracedMessageLinkedIntoMaildir(t *testing.T) {
	h := testHost(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	core := make(chan error, 1)
	go func() { core <- h.runCore(ctx) }()
	defer func() {
		cancel()
		if err := <-core; err != nil {
			t.Errorf("queue: %v", err)
		}
	}()
	if err := send(h.SMTPAddr.String(), 1); err != nil {
		t.Fatal(err)
	}
	inbox := filepath.Join(h.dataDir, "mail", "usr2@mail.sustech.edu.cn", "new")
	var ents []os.DirEntry
	mtatest.Eventually(t, "the message in usr2's Maildir", func() bool {
		var err error
		ents, err = os.ReadDir(inbox)
		return err == nil && len(ents) == 1
	})
	p := filepath.Join(inbox, ents[0].Name())
	b, _ := os.ReadFile(p)
	want := "Return-Path: <usr1@mail.sustech.edu.cn>\r\nDelivered-To: usr2@mail.sustech.edu.cn\r\nReceived: "
	if !strings.HasPrefix(string(b), want) || strings.Count(string(b), "Return-Path:") != 1 || !strings.HasSuffix(string(b), "Subject: 1\r\n\r\nbody\r\n") {
		t.Errorf("Maildir file:\n%s", b)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o440 {
		t.Errorf("Maildir file mode %v (%v), want 0440: the spool file linked", fi.Mode().Perm(), err)
	}
}
