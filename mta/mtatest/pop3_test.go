package mtatest_test

import (
	"testing"

	"gomta/mta/mtatest"
	"gomta/session/pop3"
	"gomta/session/pop3/pop3test"
)

func TestMailboxCountAgainstARealServer(t *testing.T) {
	t.Parallel()
	be := pop3test.New()
	be.AddUser("alice", "secret")
	addr := pop3test.Start(t, pop3.Config{}, be)
	if n, err := mtatest.MailboxCount(addr, "alice", "secret"); err != nil || n != 0 {
		t.Fatalf("empty maildrop: %d, %v", n, err)
	}
	go func() {
		be.Add("alice", []byte("Subject: one\r\n\r\n1\r\n"))
		be.Add("alice", []byte("Subject: two\r\n\r\n2\r\n"))
	}()
	mtatest.WaitMailbox(t, addr, "alice", "secret", 2)
	if _, err := mtatest.MailboxCount(addr, "alice", "wrong"); err == nil {
		t.Error("a wrong password counted a maildrop")
	}
}
