package main

import (
	"encoding/json"
	"gomta/mta/mtatest"
	"io"
	"os"
	"strings"
	"testing"
)

// TestInteractiveFlow drives the course's flow through stdin: send to two
// recipients (one refused), then read the message back, dele, rset, quit.
func TestInteractiveFlow(t *testing.T) {
	t.Parallel()
	f := startFakeMTA(t)
	stdin := strings.Join([]string{
		"hello", // unknown command
		"smtp",  //
		bob,     // To:
		"nobody@example.test",
		"not an address",
		"",                  // end of To:
		"Grüße from ☃",      // Subject:
		"Hello Bob, ça va?", // Content:
		"pop",
		"stat",
		"list",
		"list 9",
		"uidl",
		"retr 1",
		"retr 1 raw",
		"top 1 0",
		"dele 1",
		"stat",
		"rset",
		"stat",
		"fly",
		"noop",
		"quit",
		"exit",
	}, "\n") + "\n"
	out, errOut, code := runAgent(t, stdin, f.args(alice, alicePass)...)
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q; stdout:\n%s", code, errOut, out)
	}
	// Alice was not logged in as Bob: the pop part reads Alice's (empty) box.
	// So log in as Bob in a second run to read it back.
	for _, want := range []string{
		`Unknown command "hello". Commands: smtp, pop, exit.`,
		"[smtp|pop|exit]>>> To: To: To: \"not an address\" is not an email address; not added.\nTo: Subject: Content: ",
		bob + ": accepted\n",
		"nobody@example.test: refused: 550 5.1.1 <nobody@example.test>: no such user here\n",
		"Message sent to 1 of 2 recipients.\n",
		"+OK ", // greeting
		"Connected to the SMTP server " + f.smtp.Addr() + " (no TLS), not logged in: the server offers neither STARTTLS nor AUTH.\n",
		"Logged in as " + alice + " (no TLS, AUTH PLAIN): 0 messages (0 bytes).",
		"No messages.",
		"-ERR ", // list 9
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q; stdout:\n%s", want, out)
		}
	}
	if n := len(f.be.Messages(bob)); n != 1 {
		t.Fatalf("bob has %d messages", n)
	}
	raw := string(f.be.Messages(bob)[0])
	for _, want := range []string{"From: " + alice + "\r\n", "To: " + bob + ", nobody@example.test\r\n", "\r\nDate: ", "\r\nMessage-ID: <",
		"Subject: =?utf-8?q?", "Content-Type: text/plain; charset=utf-8\r\n"} {
		if !strings.Contains(raw, want) {
			t.Errorf("sent message lacks %q:\n%s", want, raw)
		}
	}

	stdin = strings.Join([]string{"pop", "stat", "list", "retr 1", "retr 1 raw", "top 1 0", "dele 1", "stat", "rset", "stat",
		"retr 7", "fly", "noop", "dele 1", "quit", "exit"}, "\n") + "\n"
	out, errOut, code = runAgent(t, stdin, f.args(bob, bobPass)...)
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q; stdout:\n%s", code, errOut, out)
	}
	size := len(raw)
	for _, want := range []string{
		"Logged in as " + bob + " (no TLS, AUTH PLAIN): 1 messages (",
		"[pop]>>> 1 messages (" + itoa(size) + " bytes)\n",
		"[pop]>>> 1 " + itoa(size) + "\n",
		"From:    " + alice + "\nTo:      " + bob + ", nobody@example.test\n",
		"Subject: Grüße from ☃\n\nHello Bob, ça va?\n",
		"Subject: =?utf-8?q?",                                      // raw
		"Content-Transfer-Encoding: quoted-printable\n\n[pop]>>> ", // top 1 0: headers only
		"Message 1 marked for deletion",
		"[pop]>>> 0 messages (0 bytes)\n",
		"No message is marked for deletion any more.\n[pop]>>> 1 messages",
		"[pop]>>> -ERR ", // retr 7
		"Unknown command \"fly\".\nCommands:\n  stat",
		"[pop]>>> +OK\n",
		"Logged out; deletions are done.\n[smtp|pop|exit]>>> ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q; stdout:\n%s", want, out)
		}
	}
	if n := len(f.be.Messages(bob)); n != 0 {
		t.Errorf("bob has %d messages after dele 1 + quit", n)
	}
}

func TestInteractiveMultiline(t *testing.T) {
	t.Parallel()
	f := startFakeMTA(t)
	stdin := "smtp\n" + bob + "\n\nsubject\nline 1\n..dots stay\n\nline 3\n.\nexit\n"
	out, errOut, code := runAgent(t, stdin, f.args(alice, alicePass, "-multiline")...)
	if code != exitOK || errOut != "" || !strings.Contains(out, "Message sent to 1 recipient.") {
		t.Fatalf("exit %d, stderr %q; stdout:\n%s", code, errOut, out)
	}
	s := decodeMessage(f.be.Messages(bob)[0])
	if s.Body != "line 1\n..dots stay\n\nline 3" {
		t.Errorf("body = %q", s.Body)
	}
}

func TestInteractiveEOF(t *testing.T) {
	t.Parallel()
	f := startFakeMTA(t)
	f.be.Add(bob, []byte("Subject: x\r\n\r\nbody\r\n"))
	// EOF in the middle of composing leaves without sending.
	out, errOut, code := runAgent(t, "smtp\n"+alice+"\n", f.args(bob, bobPass)...)
	if code != exitOK || errOut != "" || strings.Contains(out, "accepted") {
		t.Errorf("EOF in smtp: exit %d, stderr %q, stdout %q", code, errOut, out)
	}
	// EOF at [pop]>>> quits (deletions done) and leaves.
	out, errOut, code = runAgent(t, "pop\ndele 1\n", f.args(bob, bobPass)...)
	if code != exitOK || errOut != "" || !strings.Contains(out, "Logged out") {
		t.Errorf("EOF in pop: exit %d, stderr %q, stdout %q", code, errOut, out)
	}
	if n := len(f.be.Messages(bob)); n != 0 {
		t.Errorf("bob has %d messages", n)
	}
}

// TestInteractiveInterrupt: Ctrl-C at [pop]>>> sends RSET then QUIT, so a
// message marked for deletion stays.
func TestInteractiveInterrupt(t *testing.T) {
	t.Parallel()
	f := startFakeMTA(t)
	f.be.Add(bob, []byte("Subject: keep me\r\n\r\nbody\r\n"))
	pr, pw := io.Pipe()
	defer pw.Close()
	var out, errOut mtatest.LogBuffer
	e := newEnv(pr, &out, &errOut)
	sig := make(chan os.Signal, 1)
	e.interrupt = sig
	done := make(chan int, 1)
	go func() { done <- e.run(f.args(bob, bobPass)) }()
	io.WriteString(pw, "pop\n")
	out.WaitFor(t, popPrompt, 1)
	io.WriteString(pw, "dele 1\n")
	out.WaitFor(t, popPrompt, 2)
	sig <- os.Interrupt
	if code := <-done; code != exitSignal {
		t.Errorf("exit %d, want %d", code, exitSignal)
	}
	<-f.be.Released(bob)
	if n := len(f.be.Messages(bob)); n != 1 {
		t.Errorf("bob has %d messages after Ctrl-C, want 1 (RSET before QUIT)", n)
	}
	if errOut.String() != "" {
		t.Errorf("stderr %q", errOut.String())
	}
}

func TestInteractiveServerDown(t *testing.T) {
	t.Parallel()
	down := closedAddr(t)
	stdin := "smtp\n" + bob + "\n\ns\nc\npop\nexit\n"
	out, errOut, code := runAgent(t, stdin, "-e", alice, "-p", "x", "-s", down, "-P", down)
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		"Content: Message not sent: cannot reach the SMTP server " + down + " (" + down + "): connection refused (is mtad running?).\n",
		"Cannot reach the POP3 server " + down + " (" + down + "): connection refused (is mtad running?).\n[smtp|pop|exit]>>> ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q; stdout:\n%s", want, out)
		}
	}
}

func TestScriptSend(t *testing.T) {
	t.Parallel()
	f := startFakeMTA(t)
	att := writeFile(t, "report.pdf", "%PDF-1.4 fake")
	out, errOut, code := runAgent(t, "from stdin\n", f.args(alice, alicePass, "send", "-to", bob, "-subject", "report",
		"-body-file", "-", "-attach", att)...)
	if code != exitOK || errOut != "" || out != bob+": accepted\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	s := decodeMessage(f.be.Messages(bob)[0])
	if s.Body != "from stdin" || len(s.Attachments) != 1 || s.Attachments[0].Name != "report.pdf" || s.Attachments[0].Type != "application/pdf" {
		t.Errorf("received %+v", s)
	}

	// One recipient refused: exit 1, the refusal on stderr in one line.
	out, errOut, code = runAgent(t, "", f.args(alice, alicePass, "send", "-to", "nobody@example.test", "-to", bob, "-subject", "s", "-body", "b")...)
	if code != exitRefused || out != bob+": accepted\n" ||
		errOut != "agent: nobody@example.test: refused: 550 5.1.1 <nobody@example.test>: no such user here\n" {
		t.Errorf("partial: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// Every recipient refused.
	out, errOut, code = runAgent(t, "", f.args(alice, alicePass, "send", "-to", "nobody@example.test", "-subject", "s", "-body", "b")...)
	if code != exitRefused || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "refused: 550 5.1.1") {
		t.Errorf("all refused: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// Server not running.
	down := closedAddr(t)
	out, errOut, code = runAgent(t, "", "-e", alice, "-s", down, "send", "-to", bob, "-subject", "s", "-body", "b")
	if code != exitUsage || out != "" ||
		errOut != "agent: cannot reach the SMTP server "+down+" ("+down+"): connection refused (is mtad running?)\n" {
		t.Errorf("down: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestScriptPop(t *testing.T) {
	t.Parallel()
	f := startFakeMTA(t)
	m1 := "From: " + alice + "\r\nSubject: =?utf-8?b?w6l0w6k=?=\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8gQm9i\r\n"
	uid := f.be.Add(bob, []byte(m1))
	f.be.Add(bob, []byte("Subject: two\r\n\r\nsecond\r\n"))
	pop := func(args ...string) (string, string, int) {
		return runAgent(t, "", f.args(bob, bobPass, append([]string{"pop"}, args...)...)...)
	}
	check := func(name string, gotOut, gotErr string, gotCode int, wantOut string, wantCode int) {
		t.Helper()
		if gotOut != wantOut || gotCode != wantCode || (wantCode == 0) != (gotErr == "") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d, stdout %q", name, gotCode, gotOut, gotErr, wantCode, wantOut)
		}
	}
	o, e, c := pop("stat")
	check("stat", o, e, c, "2 messages ("+itoa(len(m1)+24)+" bytes)\n", 0)
	o, e, c = pop("stat", "-json")
	check("stat -json", o, e, c, `{"count":2,"size":`+itoa(len(m1)+24)+"}\n", 0)
	o, e, c = pop("-json", "list")
	check("list -json", o, e, c, `[{"num":1,"size":`+itoa(len(m1))+`},{"num":2,"size":24}]`+"\n", 0)
	o, e, c = pop("list", "2")
	check("list 2", o, e, c, "2 24\n", 0)
	o, e, c = pop("uidl", "1")
	check("uidl 1", o, e, c, "1 "+uid+"\n", 0)
	o, e, c = pop("retr", "1")
	check("retr 1", o, e, c, "From:    "+alice+"\nSubject: été\n\nHello Bob\n", 0)
	o, e, c = pop("retr", "1", "-raw")
	check("retr 1 -raw", o, e, c, strings.ReplaceAll(m1, "\r\n", "\n"), 0)
	o, _, c = pop("retr", "1", "-json")
	var jm popJSONMessage
	if err := json.Unmarshal([]byte(o), &jm); err != nil || c != 0 || jm.Subject != "été" || jm.Body != "Hello Bob" || jm.Raw != m1 {
		t.Errorf("retr -json: exit %d, %q (%v)", c, o, err)
	}
	o, e, c = pop("retr", "5")
	if c != exitRefused || o != "" || !strings.HasPrefix(e, "agent: retr failed: the server said: ") || strings.Count(e, "\n") != 1 {
		t.Errorf("retr 5: exit %d, stdout %q, stderr %q", c, o, e)
	}
	o, e, c = pop("dele", "1")
	check("dele 1", o, e, c, "Message 1 deleted.\n", 0)
	o, e, c = pop("stat")
	check("stat after dele", o, e, c, "1 messages (24 bytes)\n", 0)

	// Wrong password: refused, one line.
	o, e, c = runAgent(t, "", f.args(bob, "wrong", "pop", "stat")...)
	if c != exitRefused || o != "" || !strings.HasPrefix(e, "agent: login as "+bob+" failed: the server said: ") || strings.Count(e, "\n") != 1 {
		t.Errorf("wrong password: exit %d, stdout %q, stderr %q", c, o, e)
	}
	// Server not running.
	down := closedAddr(t)
	o, e, c = runAgent(t, "", "-e", bob, "-p", bobPass, "-P", down, "pop", "list")
	if c != exitUsage || o != "" || e != "agent: cannot reach the POP3 server "+down+" ("+down+"): connection refused (is mtad running?)\n" {
		t.Errorf("down: exit %d, stdout %q, stderr %q", c, o, e)
	}
}
