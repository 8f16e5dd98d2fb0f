package smtp

import (
	"net"
	"os/exec"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"gomta/mta/mtatest"
	"gomta/session/reply"
)

const (
	replySync     = "554 5.5.0 protocol synchronization error: input sent before the reply (RFC 2920 section 3.1)"
	replyUnknown  = "550 5.1.1 no such user"
	unknownRcpt   = "unknown@example.org"
	replyNoRcpt   = "503 5.5.1 need RCPT before DATA"
	replyStart354 = "354 end data with <CR><LF>.<CR><LF>"
)

// syncServer runs a server whose backend refuses unknownRcpt and records
// every MAIL, with an observed logger.
func syncServer(t *testing.T) (*fakeBackend, string, *observer.ObservedLogs) {
	core, logs := observer.New(zap.InfoLevel)
	be := &fakeBackend{rcptHook: func(rcpt string) error {
		if rcpt == unknownRcpt {
			return &Reply{Code: reply.CodeRejected, Enhanced: "5.1.1", Text: "no such user"}
		}
		return nil
	}}
	_, addr := startServer(t, Config{Logger: zap.New(core)}, be)
	return be, addr, logs
}

// waitSessionEnd waits for the one session of the server to log its end.
func waitSessionEnd(t *testing.T, logs *observer.ObservedLogs) {
	t.Helper()
	mtatest.Eventually(t, "the session's end", func() bool {
		return logs.FilterMessage("session end").Len() == 1
	})
}

// TestRefusedDataPipelined is issue 9's case: in one write, a transaction
// whose only recipient is refused, its DATA, and a second transaction with a
// message text, which the client meant as the body of the first. DATA ends a
// group (RFC 2920 §3.1); refused, with input waiting, it is followed by 554
// 5.5.0 and the close: nothing the client meant as a body runs as a command.
func TestRefusedDataPipelined(t *testing.T) {
	t.Parallel()
	be, addr, logs := syncServer(t)
	cl := dialReady(t, addr)
	cl.send("MAIL FROM:<a@example.org>", "RCPT TO:<"+unknownRcpt+">", "DATA",
		"MAIL FROM:<evil@example.org>", "RCPT TO:<victim@example.org>", "DATA",
		"Subject: smuggled", "", "body", ".", "QUIT")
	cl.expectMulti("250 2.1.0 sender OK", replyUnknown, replyNoRcpt, replySync)
	cl.expectClosed()
	waitSessionEnd(t, logs)
	be.mu.Lock()
	mails := len(be.conns) // one per MAIL that reached the backend
	be.mu.Unlock()
	if c, a := be.counts(); mails != 1 || c != 0 || a != 0 {
		t.Errorf("%d MAIL reached the backend, %d messages committed, %d aborted; want 1, 0, 0", mails, c, a)
	}
	v := logs.FilterMessage("pipelining violation").All()
	if len(v) != 1 || v[0].ContextMap()["command"] != "DATA" {
		t.Errorf("violation log lines %v", v)
	}
}

// TestGroupEnders sends, in one write, a command that ends a group (RFC 2920
// §3.1) followed by more: the command is answered, then 554 5.5.0 and the
// close. Commands that may be pipelined, a DATA that is the last of its
// group and the text after a 354 are not affected.
func TestGroupEnders(t *testing.T) {
	t.Parallel()
	const mail = "MAIL FROM:<a@example.org>"
	tests := []struct {
		name string
		send []string
		want []string // replies; replySync is followed by the close
	}{
		{"NOOP", []string{"NOOP", mail}, []string{"250 2.0.0 OK", replySync}},
		{"VRFY", []string{"VRFY a", mail}, []string{"252 2.1.5 cannot VRFY user, but will accept message and attempt delivery", replySync}},
		{"EXPN", []string{"EXPN a", mail}, []string{"502 5.5.1 command not implemented", replySync}},
		{"HELO", []string{"HELO b.example", mail}, []string{"250 " + testHost + " greets b.example", replySync}},
		{"DATA with no transaction", []string{"DATA", "Subject: x", "", "."}, []string{replyNoRcpt, replySync}},
		{"DATA refused, last of its group", []string{mail, "RCPT TO:<" + unknownRcpt + ">", "DATA"},
			[]string{"250 2.1.0 sender OK", replyUnknown, replyNoRcpt}},
		{"MAIL RCPT RSET pipelined", []string{mail, "RCPT TO:<b@example.org>", "RSET", mail, "RSET"},
			[]string{"250 2.1.0 sender OK", "250 2.1.5 recipient OK", "250 2.0.0 OK", "250 2.1.0 sender OK", "250 2.0.0 OK"}},
		{"text after 354, commands after the end of data", []string{mail, "RCPT TO:<b@example.org>", "DATA"},
			[]string{"250 2.1.0 sender OK", "250 2.1.5 recipient OK", replyStart354}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			be, addr, logs := syncServer(t)
			cl := dialReady(t, addr)
			cl.send(tc.send...)
			cl.expectMulti(tc.want...)
			if tc.want[len(tc.want)-1] == replySync {
				cl.expectClosed()
				waitSessionEnd(t, logs)
				if n := logs.FilterMessage("pipelining violation").Len(); n != 1 {
					t.Errorf("%d violation lines logged", n)
				}
				return
			}
			if tc.want[len(tc.want)-1] == replyStart354 {
				cl.send("body", ".", "RSET", "NOOP")
				cl.expectMulti("250 2.0.0 OK queued as MSG0001", "250 2.0.0 OK", "250 2.0.0 OK")
				if c, _ := be.counts(); c != 1 {
					t.Errorf("%d messages committed", c)
				}
			}
			cl.send("QUIT")
			cl.expect("221 2.0.0 " + testHost + " closing connection")
			cl.expectClosed()
		})
	}
}

// TestRefusedDataSmtplib drives a refused DATA with Python's smtplib, which
// waits for every reply: the session goes on after it.
func TestRefusedDataSmtplib(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	be, addr, _ := syncServer(t)
	host, port, _ := net.SplitHostPort(addr)
	const script = `
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), local_hostname="py.example")
s.ehlo()
assert s.mail("a@example.org")[0] == 250
assert s.rcpt(sys.argv[3])[0] == 550
assert s.docmd("DATA")[0] == 503
assert s.noop()[0] == 250
assert s.rset()[0] == 250
s.sendmail("a@example.org", ["b@example.org"], "Subject: py\r\n\r\nafter a refused DATA\r\n")
s.quit()
`
	if out, err := exec.Command(py, "-c", script, host, port, unknownRcpt).CombinedOutput(); err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	if c, _ := be.counts(); c != 1 {
		t.Errorf("%d messages committed, want 1", c)
	}
}

// TestRefusedDataAtReaderBoundary: the pipelined group ends with its refused
// DATA exactly at the end of the session reader's first fill (4096 octets),
// so the reader holds nothing more while the rest of the same write waits in
// the kernel. The check must see that input too.
func TestRefusedDataAtReaderBoundary(t *testing.T) {
	t.Parallel()
	be, addr, logs := syncServer(t)
	cl := dialReady(t, addr)
	group := []string{}
	for range 672 { // 672 × len("RSET\r\n") = 4032
		group = append(group, "RSET")
	}
	group = append(group, "MAIL FROM:<a@example.org>", "RCPT TO:<"+unknownRcpt+">", "DATA") // 27 + 31 + 6
	n := 0
	for _, l := range group {
		n += len(l) + 2
	}
	if n != 4096 {
		t.Fatalf("group is %d octets, want 4096", n)
	}
	cl.send(append(group, "MAIL FROM:<evil@example.org>", "RCPT TO:<victim@example.org>", "DATA",
		"Subject: smuggled", "", "body", ".", "QUIT")...)
	for range 672 {
		if line, err := cl.readLine(); err != nil || !strings.HasPrefix(line, "250 ") {
			t.Fatalf("RSET reply %q %v", line, err)
		}
	}
	cl.expectMulti("250 2.1.0 sender OK", replyUnknown, replyNoRcpt, replySync)
	cl.expectClosed()
	waitSessionEnd(t, logs)
	if c, _ := be.counts(); c != 0 {
		t.Errorf("%d messages committed from input sent after a refused DATA", c)
	}
	if logs.FilterMessage("pipelining violation").Len() != 1 {
		t.Errorf("no violation logged: %v", logs.All())
	}
}
