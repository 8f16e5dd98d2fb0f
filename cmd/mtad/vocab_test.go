package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/smtp"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gomta/mta/mtatest"
	"gomta/session/logvocab"
	"gomta/session/pop3client"
)

// processLines are the messages of lines about the mtad process, not about
// one mail host; they alone may lack host and proto.
var processLines = map[string]string{
	"config loaded":   "the effective configuration of the whole process, every host in it",
	"mail host ready": "main's summary of a host's wiring: it names the host, but no protocol wrote it",
	"mtad started":    "the process has started every host",
	"mtad stopped":    "the process is exiting",
	"open-file limit": "a process limit, shared by every host",
	"TLS uses a self-signed certificate made at start (tls_self_signed): for local use only": "one certificate for the whole process",
	"SIGHUP: reloading the config":                           "a reload covers every host of the process",
	"config reloaded":                                        "a reload covers every host of the process",
	"config changed":                                         "a key of the process's config; per-host keys name the host in the key",
	"config change needs a restart: not applied":             "as config changed",
	"reload rejected: the old config keeps serving":          "the whole new config is refused",
	"metrics listening":                                      "one /metrics listener for the process",
	"metrics served beyond loopback, without authentication": "as metrics listening",
	"panic in control request":                               "the control socket serves every host (proto control)",
	"cluster started":                                        "one node of the cluster per process, shared by every host (mta/cluster)",
	"cluster waiting for jetstream":                          "as cluster started",
	"cluster ready":                                          "as cluster started",
	"cluster connection lost":                                "as cluster started",
	"cluster connection restored":                            "as cluster started",
	"cluster stopped":                                        "as cluster started",
	"nats server warning":                                    "the embedded NATS server of the process's node",
	"nats server error":                                      "as nats server warning",
	"nats server fatal error":                                "as nats server warning",
	"nats route unreachable":                                 "a peer's cluster port refuses the route (at most every 30 s)",
	"cluster provisioning retried":                           "a host's streams and buckets not yet created on a cluster that has just formed",
}

// ownerSynonyms are field names that other code calls a mailbox owner; the
// vocabulary names it user (and the recipient of a message, rcpt).
var ownerSynonyms = []string{"account", "owner", "mailbox", "username", "login", "pop3_user"}

// sessionIDFormat is the one format of session ids, for SMTP and POP3 alike.
var sessionIDFormat = regexp.MustCompile(`^[0-9a-v]{16}$`)

// vocabRun is one representative run's secrets and markers: each unique to
// the run, so that finding one in the log is a leak and not a coincidence.
type vocabRun struct {
	pass, wrongPass, body, subject string
	smtp, pop, gmPOP               string
}

// uniqueMarker is prefix and 64 random bits in hex.
func uniqueMarker(prefix string) string {
	var b [8]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// TestLogVocabulary runs mtad with both course hosts through a representative
// run with real clients — submission over STARTTLS with AUTH, relay across the
// hosts, a local delivery, a bounce for an unknown remote user, refused
// commands, POP3 over STLS with LIST/RETR/DELE/QUIT, a failed POP3 login —
// and checks every line of its JSON log against the vocabulary.
func TestLogVocabulary(t *testing.T) {
	t.Parallel()
	r := vocabRun{pass: uniqueMarker("pw-"), wrongPass: uniqueMarker("badpw-"),
		body: uniqueMarker("BODYMARK"), subject: uniqueMarker("subj")}
	p := mtatest.FreePorts(t, 4) // exmail.qq.com SMTP, POP3; gmail.com SMTP, POP3
	cfg := fmt.Sprintf(`[server]
"exmail.qq.com" = { smtp = %d, pop = %d }
"gmail.com" = { smtp = %d, pop = %d }
[accounts."exmail.qq.com"]
"usr1@mail.sustech.edu.cn" = %q
"usr2@mail.sustech.edu.cn" = %q
[accounts."gmail.com"]
"usr@gmail.com" = %q
[MX]
"mail.sustech.edu.cn." = "mxbiz1.qq.com."
"gmail.com." = "gmail-smtp-in.l.google.com."
[P]
"mxbiz1.qq.com." = "%d"
"gmail-smtp-in.l.google.com." = "%d"
[gomta]
trusted_networks = ["127.0.0.1/32"]
tls_self_signed = true
`, p[0], p[1], p[2], p[3], r.pass, r.pass+"2", r.pass+"3", p[0], p[2])
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	d := mtatest.StartDaemon(t, []string{"-config", path, "-data", t.TempDir(), "-log-level", "debug"}, p...)
	r.smtp, r.pop, r.gmPOP = mtatest.Addr(p[0]), mtatest.Addr(p[1]), mtatest.Addr(p[3])

	r.submit(t)
	r.refuse(t)
	// Delivered: across to gmail.com, locally to usr2, and the bounce for
	// nobody@gmail.com back to usr1.
	mtatest.WaitMailbox(t, r.gmPOP, "usr@gmail.com", r.pass+"3", 1)
	mtatest.WaitMailbox(t, r.pop, "usr2@mail.sustech.edu.cn", r.pass+"2", 1)
	mtatest.WaitMailbox(t, r.pop, "usr1@mail.sustech.edu.cn", r.pass, 1)
	bounce := regexp.MustCompile(`"bounce_msg_id":"([^"]+)"`)
	d.WaitLog(t, `"bounce_msg_id"`)
	id := bounce.FindStringSubmatch(d.Log.String())[1]
	mtatest.Eventually(t, "every message processed to the end", func() bool { return d.Settled(id) })

	r.pop3Session(t)
	r.failedLogin(t)
	mtatest.Eventually(t, "every POP3 session ended", func() bool { return popSessionsEnded(d.Log.String()) })
	d.Stop(t) // the log is complete once the process has exited

	checkVocabulary(t, d.Log.String(), r)
}

// submit sends one message over STARTTLS with AUTH PLAIN (net/smtp) to a
// local recipient, a recipient on the other host and an unknown one there.
func (r vocabRun) submit(t *testing.T) {
	t.Helper()
	cl, err := smtp.Dial(r.smtp)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.StartTLS(&tls.Config{InsecureSkipVerify: true, ServerName: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if err := cl.Auth(smtp.PlainAuth("", "usr1@mail.sustech.edu.cn", r.pass, "127.0.0.1")); err != nil {
		t.Fatalf("AUTH PLAIN: %v", err)
	}
	if err := cl.Mail("usr1@mail.sustech.edu.cn"); err != nil {
		t.Fatal(err)
	}
	for _, rcpt := range []string{"usr2@mail.sustech.edu.cn", "usr@gmail.com", "nobody@gmail.com"} {
		if err := cl.Rcpt(rcpt); err != nil {
			t.Fatalf("RCPT %s: %v", rcpt, err)
		}
	}
	w, err := cl.Data()
	if err != nil {
		t.Fatal(err)
	}
	// The Message-ID is logged (message_id); the subject and body never are.
	w.Write([]byte("From: usr1@mail.sustech.edu.cn\r\nTo: usr2@mail.sustech.edu.cn\r\nSubject: " + r.subject +
		"\r\nMessage-ID: <vocab-run@test>\r\n\r\nthe body " + r.body + "\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cl.Quit(); err != nil {
		t.Fatal(err)
	}
}

// refuse drives commands the server refuses: a failed AUTH (net/smtp quits
// after it), then an unknown command and an unknown local sender.
func (r vocabRun) refuse(t *testing.T) {
	t.Helper()
	cl, err := smtp.Dial(r.smtp)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Auth(smtp.PlainAuth("", "usr1@mail.sustech.edu.cn", r.wrongPass, "127.0.0.1")); replyCode(t, err) != 535 {
		t.Errorf("wrong password: %v, want 535", err)
	}
	cl, err = smtp.Dial(r.smtp)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	id, err := cl.Text.Cmd("XYZZY")
	if err != nil {
		t.Fatal(err)
	}
	cl.Text.StartResponse(id)
	_, _, err = cl.Text.ReadResponse(250)
	cl.Text.EndResponse(id)
	if replyCode(t, err) != 500 {
		t.Errorf("unknown command: %v, want 500", err)
	}
	if err := cl.Mail("nobody@mail.sustech.edu.cn"); replyCode(t, err) != 550 {
		t.Errorf("unknown local sender: %v, want 550", err)
	}
	if err := cl.Quit(); err != nil {
		t.Fatal(err)
	}
}

// pop3Session reads and deletes usr1's bounce over STLS: CAPA, STLS, USER/PASS,
// LIST, RETR, DELE, QUIT.
func (r vocabRun) pop3Session(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pop3client.Dial(ctx, r.pop, pop3client.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartTLS(&tls.Config{InsecureSkipVerify: true}); err != nil {
		t.Fatalf("STLS: %v", err)
	}
	if err := c.Login("usr1@mail.sustech.edu.cn", r.pass); err != nil {
		t.Fatal(err)
	}
	list, err := c.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("LIST: %v %v, want the bounce", list, err)
	}
	m, err := c.Retr(1)
	if err != nil || !strings.Contains(string(m), "multipart/report") {
		t.Fatalf("RETR: %v\n%s", err, m)
	}
	if err := c.Dele(1); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

// failedLogin tries usr2's mailbox with a wrong password.
func (r vocabRun) failedLogin(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pop3client.Dial(ctx, r.pop, pop3client.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("usr2@mail.sustech.edu.cn", r.wrongPass); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

// logLine is one decoded JSON log line.
type logLine map[string]any

func (l logLine) str(key string) string { s, _ := l[key].(string); return s }

// popSessionsEnded reports whether every POP3 session in the log has its
// "session end" line and the failed login is among them.
func popSessionsEnded(log string) bool {
	started, ended, failed := map[string]bool{}, map[string]bool{}, false
	for _, s := range strings.Split(log, "\n") {
		var l logLine
		if json.Unmarshal([]byte(s), &l) != nil || l.str("proto") != "pop3" || l.str("session_id") == "" {
			continue
		}
		started[l.str("session_id")] = true
		failed = failed || l.str("msg") == "login failed"
		if l.str("msg") == "session end" {
			ended[l.str("session_id")] = true
		}
	}
	return failed && len(started) == len(ended)
}

// checkVocabulary fails t with every violation of the vocabulary in log, a
// leak of r's secrets and markers among them, and checks that the run wrote
// lines of every proto and session ids of both protocols.
func checkVocabulary(t *testing.T, log string, r vocabRun) {
	t.Helper()
	secrets := map[string]string{"password": r.pass, "wrong password": r.wrongPass, "body": r.body, "subject": r.subject,
		"AUTH PLAIN payload": base64.StdEncoding.EncodeToString([]byte("\x00usr1@mail.sustech.edu.cn\x00" + r.pass))}
	for _, v := range vocabViolations(log, secrets) {
		t.Error(v)
	}
	protos, ids := map[string]bool{}, map[string]bool{}
	for _, s := range strings.Split(log, "\n") {
		var l logLine
		if json.Unmarshal([]byte(s), &l) == nil {
			protos[l.str(logvocab.Proto)] = true
			ids[l.str(logvocab.Proto)] = ids[l.str(logvocab.Proto)] || l.str(logvocab.SessionID) != ""
		}
	}
	for _, p := range logvocab.Protos {
		if !protos[p] {
			t.Errorf("no line of proto %q: the run does not cover it", p)
		}
	}
	if !ids[logvocab.SMTP] || !ids[logvocab.POP3] {
		t.Errorf("session ids: smtp %v, pop3 %v: the run does not cover both", ids[logvocab.SMTP], ids[logvocab.POP3])
	}
}

// vocabViolations checks every line of log and returns the violations, each
// kind once per message and proto, with the first line that shows it.
func vocabViolations(log string, secrets map[string]string) []string {
	var out []string
	for what, s := range secrets {
		if strings.Contains(log, s) {
			out = append(out, "the log contains the "+what)
		}
	}
	var lines []logLine
	for _, s := range strings.Split(strings.TrimSpace(log), "\n") {
		var l logLine
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			out = append(out, fmt.Sprintf("not a JSON log line: %q", s))
			continue
		}
		lines = append(lines, l)
	}
	values := fieldValues(lines)
	seen := map[string]bool{}
	violation := func(l logLine, format string, args ...any) {
		what := fmt.Sprintf(format, args...)
		if key := what + "\x00" + l.str("msg") + "\x00" + l.str(logvocab.Proto); !seen[key] {
			seen[key] = true
			out = append(out, fmt.Sprintf("%s: %v", what, l))
		}
	}
	for _, l := range lines {
		msg, proto := l.str("msg"), l.str(logvocab.Proto)
		if _, ok := processLines[msg]; !ok && (l.str(logvocab.Host) == "" || proto == "") {
			violation(l, "line without host or proto")
		}
		if _, ok := l[logvocab.Proto]; ok && !slices.Contains(logvocab.Protos, proto) && !slices.Contains(logvocab.ProcessProtos, proto) {
			violation(l, "proto %q is not one of %v", proto, logvocab.Protos)
		}
		for _, k := range ownerSynonyms {
			if _, ok := l[k]; ok {
				violation(l, "field %q names a mailbox owner: the vocabulary says %q", k, logvocab.User)
			}
		}
		// A mailbox's own line is of proto mailbox or, should it lack its
		// proto, one whose message speaks of the mailbox. It names the owner
		// as user; a recipient (rcpt) only beside it (a delivery's line).
		mailboxLine := proto == logvocab.Mailbox || proto == logvocab.POP3 || strings.HasPrefix(msg, "mailbox ")
		_, hasUser := l[logvocab.User]
		if _, ok := l[logvocab.Rcpt]; ok && mailboxLine && !hasUser {
			violation(l, "the mailbox owner logged as %q: the vocabulary says %q", logvocab.Rcpt, logvocab.User)
		}
		if id, ok := l[logvocab.SessionID]; ok && !sessionIDFormat.MatchString(fmt.Sprint(id)) {
			violation(l, "session_id not of the one format %v", sessionIDFormat)
		}
		if v := formattedIn(msg, values); v != "" {
			violation(l, "message holds the value %q: messages are constant, values go in fields", v)
		}
	}
	return out
}

// TestVocabularyChecks shows that each check of vocabViolations catches its
// kind of violation.
func TestVocabularyChecks(t *testing.T) {
	t.Parallel()
	const ok = `{"level":"info","msg":"login","host":"h.test","proto":"pop3","session_id":"0123456789abcdef","user":"u@h.test"}`
	for _, c := range []struct{ line, want string }{
		{ok, ""},
		{`{"level":"info","msg":"mtad started","hosts":2}`, ""},
		{`{"level":"info","msg":"mailbox opened","host":"h.test","user":"u@h.test"}`, "without host or proto"},
		{`{"level":"info","msg":"x","proto":"smtp"}`, "without host or proto"},
		{`{"level":"info","msg":"x","host":"h.test","proto":"imap"}`, "is not one of"},
		{`{"level":"info","msg":"x","host":"h.test","proto":"mailbox","rcpt":"u@h.test"}`, "owner logged as"},
		{`{"level":"info","msg":"mailbox updated","host":"h.test","rcpt":"u@h.test"}`, "owner logged as"},
		{`{"level":"info","msg":"message delivered","host":"h.test","proto":"mailbox","user":"u@h.test","rcpt":"U@h.test"}`, ""},
		{`{"level":"info","msg":"x","host":"h.test","proto":"pop3","account":"u@h.test"}`, "names a mailbox owner"},
		{`{"level":"info","msg":"x","host":"h.test","proto":"smtp","session_id":"ABCDEFGHIJKLMNOP"}`, "one format"},
		{`{"level":"info","msg":"x","host":"h.test","proto":"pop3","session_id":"0123456789abcdef0123abcd"}`, "one format"},
		{`{"level":"info","msg":"login u@h.test","host":"h.test","proto":"pop3"}`, "messages are constant"},
		{`{"level":"info","msg":"relay to mx.h.test","host":"h.test","proto":"relay","mx":"mx.h.test"}`, "messages are constant"},
		{`{"level":"info","msg":"x","host":"h.test","proto":"smtp","command":"PASS s3cret"}`, "contains the password"},
		{`level=info msg=x`, "not a JSON log line"},
	} {
		got := strings.Join(vocabViolations(c.line, map[string]string{"password": "s3cret"}), "\n")
		if c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("%s: got %q, want a violation with %q", c.line, got, c.want)
		}
	}
}

// notValues are the keys whose values are words of the log's own (a level,
// a proto) or the message itself.
var notValues = map[string]bool{"msg": true, "level": true, "proto": true, "ts": true, "caller": true}

// fieldValues is every string value of a field other than msg in lines, at
// least four characters long (shorter ones, such as "ok", occur in words).
func fieldValues(lines []logLine) map[string]bool {
	vs := map[string]bool{}
	for _, l := range lines {
		for k, v := range l {
			if s, ok := v.(string); ok && !notValues[k] && len(s) >= 4 {
				vs[s] = true
			}
		}
	}
	return vs
}

var number = regexp.MustCompile(`\d{2,}|@`)

// formattedIn returns a value found in msg — a field value of the run, a
// number or an address — or "" when msg looks constant.
func formattedIn(msg string, values map[string]bool) string {
	if m := number.FindString(msg); m != "" {
		return m
	}
	for v := range values {
		if strings.Contains(msg, v) {
			return v
		}
	}
	return ""
}
