package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gomta/mta/mtatest"
	"gomta/session/pop3"
	"gomta/session/pop3/pop3test"
)

// msgWithID is a small message carrying a Message-ID.
func msgWithID(id string) []byte {
	return []byte("Received: from x\r\n\tby y\r\nMessage-ID: " + id + "\r\nSubject: t\r\n\r\nhello\r\n.dotted line\r\n")
}

func TestPOP3Mode(t *testing.T) {
	t.Parallel()
	be := pop3test.New()
	var size int64
	for u := 1; u <= 3; u++ {
		be.AddUser(fmt.Sprintf("user%d@example.test", u), "secret")
		for i := range u { // user1: 1 message, user2: 2, user3: 3
			m := msgWithID(fmt.Sprintf("<x.%d.%d@test>", u, i))
			be.Add(fmt.Sprintf("user%d@example.test", u), m)
			size += int64(len(m))
		}
	}
	addr := pop3test.Start(t, pop3.Config{}, be)
	var rep report
	// Six sessions, one at a time: each account twice, 12 messages retrieved.
	code, stderr := runJSON(t, &rep, "pop3", "-addr", addr, "-c", "1", "-n", "6",
		"-user", "user%d@example.test", "-pass", "secret", "-users", "3")
	if code != exitOK || rep.OK != 6 || rep.Sessions != 6 || rep.Retrieved != 12 || rep.Bytes != 2*size {
		t.Errorf("exit %d, report %+v (want 6 sessions, 12 retrieved, %d bytes); %s", code, rep, 2*size, stderr)
	}
	if !containsAll(stepNames(rep.Latency), "dial", "greeting", "USER", "PASS", "STAT", "LIST", "RETR", "QUIT", "session") {
		t.Errorf("steps %v", stepNames(rep.Latency))
	}

	// -dele from an accounts file: every mailbox ends empty.
	accts := filepath.Join(t.TempDir(), "accounts")
	os.WriteFile(accts, []byte("# test\nuser1@example.test secret\nuser2@example.test secret\nuser3@example.test secret\n"), 0o600)
	code, _ = runJSON(t, &rep, "pop3", "-addr", addr, "-c", "3", "-n", "3", "-accounts", accts, "-dele")
	if code != exitOK || rep.Retrieved != 6 {
		t.Errorf("dele run: exit %d, retrieved %d", code, rep.Retrieved)
	}
	for u := 1; u <= 3; u++ {
		if n := len(be.Messages(fmt.Sprintf("user%d@example.test", u))); n != 0 {
			t.Errorf("user%d still has %d messages after -dele", u, n)
		}
	}

	// A wrong password: every session fails with -ERR [AUTH].
	code, _ = runJSON(t, &rep, "pop3", "-addr", addr, "-c", "2", "-n", "4", "-user", "user1@example.test", "-pass", "wrong")
	if code != exitErrors || rep.OK != 0 || rep.Failed != 4 || errCount(rep.Errors, "-ERR [AUTH]") != 4 {
		t.Errorf("bad password: exit %d report %+v", code, rep)
	}
}

func TestVerifyCounts(t *testing.T) {
	t.Parallel()
	be := pop3test.New()
	be.AddUser("user1@example.test", "pw")
	be.AddUser("user2@example.test", "pw")
	be.AddUser("user3@example.test", "pw")
	// user1 got 0, 1 twice (duplicate), 9 (never acked), and a foreign message.
	for _, id := range []string{"<R.0@mtaload>", "<R.1@mtaload>", "<R.1@mtaload>", "<R.9@mtaload>", "<other@x>"} {
		be.Add("user1@example.test", msgWithID(id))
	}
	be.Add("user1@example.test", []byte("Subject: no id\r\n\r\nx\r\n"))
	// user2 got 3 but not 4 (lost); 2 is acked for user1 and lost there too.
	be.Add("user2@example.test", msgWithID("<R.3@mtaload>"))
	// user3 got everything, from another run as well.
	be.Add("user3@example.test", msgWithID("<R.5@mtaload>"))
	be.Add("user3@example.test", msgWithID("<S.5@mtaload>"))
	addr := pop3test.Start(t, pop3.Config{}, be)

	acked := filepath.Join(t.TempDir(), "acked.txt")
	os.WriteFile(acked, []byte("# mtaload run_id=R\n"+
		"user1@example.test <R.0@mtaload>\nuser1@example.test <R.1@mtaload>\nuser1@example.test <R.2@mtaload>\n"+
		"user2@example.test <R.3@mtaload>\nuser2@example.test <R.4@mtaload>\n"+
		"user3@example.test <R.5@mtaload>\n"), 0o600)
	var rep verifyReport
	code, stderr := runJSON(t, &rep, "verify", "-acked", acked, "-pop", addr, "-pass", "pw", "-c", "2")
	if code != exitErrors || rep.Acked != 6 || rep.Delivered != 4 || rep.Lost != 2 || rep.Duplicated != 1 ||
		rep.Unexpected != 1 || rep.Unverified != 0 || rep.Mailboxes != 3 || len(rep.Errors) != 0 {
		t.Errorf("exit %d, report %+v; %s", code, rep, stderr)
	}
	for _, m := range rep.PerMailbox {
		want := map[string]string{"user1@example.test": "<R.2@mtaload>", "user2@example.test": "<R.4@mtaload>", "user3@example.test": ""}[m.Rcpt]
		if strings.Join(m.LostIDs, ",") != want {
			t.Errorf("%s: lost %v, want %q", m.Rcpt, m.LostIDs, want)
		}
	}

	// Only user3's mailbox, complete, with -dele and -login local via an accounts file.
	be.AddUser("user3", "pw3")
	be.Add("user3", msgWithID("<R.5@mtaload>"))
	be.Add("user3", msgWithID("<S.1@mtaload>"))
	accts := filepath.Join(t.TempDir(), "accounts")
	os.WriteFile(accts, []byte("user3 pw3\n"), 0o600)
	one := filepath.Join(t.TempDir(), "acked.json")
	os.WriteFile(one, []byte(`{"run_id":"R","acked":{"user3@example.test":["<R.5@mtaload>"]}}`), 0o600)
	code, stderr = runJSON(t, &rep, "verify", "-acked", one, "-pop", addr, "-accounts", accts, "-login", "local", "-dele")
	if code != exitOK || rep.Delivered != 1 || rep.Lost != 0 || rep.Deleted != 1 {
		t.Errorf("exit %d report %+v; %s", code, rep, stderr)
	}
	if left := be.Messages("user3"); len(left) != 1 || headerMessageID(left[0]) != "<S.1@mtaload>" {
		t.Errorf("after -dele user3 holds %d messages", len(left))
	}

	// A mailbox that cannot be read leaves its acked messages unverified.
	code, _ = runJSON(t, &rep, "verify", "-acked", one, "-pop", addr, "-pass", "wrong")
	if code != exitErrors || rep.Unverified != 1 || rep.Lost != 0 || errCount(rep.Errors, "-ERR [AUTH]") != 1 {
		t.Errorf("bad password: exit %d report %+v", code, rep)
	}
}

// TestSMTPThenVerify sends through a real SMTP server, moves what it
// committed into POP3 mailboxes, drops one message and duplicates another,
// and checks that verify finds exactly that.
func TestSMTPThenVerify(t *testing.T) {
	t.Parallel()
	sink := &sinkBackend{keep: true, refuse: "user4@"}
	saddr, _ := startSMTP(t, sink)
	acked := filepath.Join(t.TempDir(), "acked.json")
	var srep report
	if code, stderr := runJSON(t, &srep, "smtp", "-addr", saddr, "-c", "3", "-n", "25", "-rcpts", "2",
		"-to", "user%d@example.test", "-to-n", "4", "-acked", acked, "-pipelining"); code != exitErrors || srep.RcptOK != 38 {
		t.Fatalf("smtp: exit %d, rcpts ok %d; %s", code, srep.RcptOK, stderr)
	}
	be := pop3test.New()
	for u := 1; u <= 4; u++ {
		be.AddUser(fmt.Sprintf("user%d@example.test", u), "pw")
	}
	sink.mu.Lock()
	for rcpt, bodies := range sink.bodies {
		for i, b := range bodies {
			switch {
			case rcpt == "user1@example.test" && i == 0: // lost
			case rcpt == "user2@example.test" && i == 0: // duplicated
				be.Add(rcpt, b)
				be.Add(rcpt, b)
			default:
				be.Add(rcpt, b)
			}
		}
	}
	sink.mu.Unlock()
	paddr := pop3test.Start(t, pop3.Config{}, be)
	var rep verifyReport
	code, stderr := runJSON(t, &rep, "verify", "-acked", acked, "-pop", paddr, "-pass", "pw")
	if code != exitErrors || rep.Acked != 38 || rep.Lost != 1 || rep.Duplicated != 1 || rep.Delivered != 37 || rep.Unexpected != 0 {
		t.Errorf("exit %d report %+v; %s", code, rep, stderr)
	}
	code, _ = runJSON(t, &rep, "verify", "-acked", acked, "-pop", paddr, "-pass", "pw", "-allow-dup")
	if code != exitErrors { // still one lost
		t.Errorf("-allow-dup with a loss: exit %d", code)
	}
}

// TestPOP3Bind checks -bind: worker w always logs into account w mod N, so
// with N >= -c no two sessions meet on one maildrop (the test backend locks
// it exclusively and answers -ERR [IN-USE] to a second session), and
// accounts beyond -c are never used.
func TestPOP3Bind(t *testing.T) {
	t.Parallel()
	be := pop3test.New()
	for u := 1; u <= 3; u++ {
		user := fmt.Sprintf("user%d@example.test", u)
		be.AddUser(user, "pw")
		be.Add(user, msgWithID(fmt.Sprintf("<b.%d@test>", u)))
	}
	var mu sync.Mutex
	retr := map[string]int{}
	// A barrier makes the overlap certain: the first RETR of each of two
	// accounts waits, its maildrop locked, until the other account's first
	// RETR has come too. Two workers on one account would meet
	// -ERR [IN-USE] here, every time.
	first := map[string]bool{}
	met := make(chan struct{})
	be.OpenHook = func(ctx context.Context, user string, _ int) error {
		mu.Lock()
		retr[user]++
		wait := !first[user] && len(first) < 2
		if wait {
			first[user] = true
			if len(first) == 2 {
				close(met)
			}
		}
		mu.Unlock()
		if !wait {
			return nil
		}
		select {
		case <-met:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(mtatest.Deadline):
			return errors.New("no other account was open at the same time")
		}
	}
	addr := pop3test.Start(t, pop3.Config{}, be)
	var rep report
	code, stderr := runJSON(t, &rep, "pop3", "-addr", addr, "-c", "2", "-n", "60", "-bind",
		"-user", "user%d@example.test", "-pass", "pw", "-users", "3")
	if code != exitOK || rep.OK != 60 || rep.Failed != 0 || errCount(rep.Errors, "-ERR [IN-USE]") != 0 {
		t.Errorf("exit %d, report %+v; %s", code, rep, stderr)
	}
	select {
	case <-met:
	default:
		t.Error("the two workers never held their maildrops at the same time")
	}
	mu.Lock()
	defer mu.Unlock()
	// Two workers: user1 and user2 only, 60 sessions between them.
	if retr["user3@example.test"] != 0 || retr["user1@example.test"]+retr["user2@example.test"] != 60 ||
		retr["user1@example.test"] == 0 || retr["user2@example.test"] == 0 {
		t.Errorf("RETR per account %v: want user1 and user2 only, 60 in all", retr)
	}
}
