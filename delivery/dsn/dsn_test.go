package dsn

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const original = "Received: from a.test by mx.a.test; Mon, 1 Jan 2024 00:00:00 +0000\n" +
	"From: Alice <alice@a.test>\n" +
	"To: bob@b.test\n" +
	"Subject: lunch?\n" +
	"\n" +
	"secret body line\n"

func testReport() Report {
	return Report{
		ReportingMTA: "mx.a.test",
		From:         "alice@a.test",
		MsgID:        "20240101-abc",
		Arrival:      time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		Date:         time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC),
		Failures: []Failure{
			{Rcpt: "bob@b.test", Code: 550, Enhanced: "5.1.1", Text: "no such user\nreally", RemoteMTA: "mx.b.test"},
			{Rcpt: "carol@b.test", Code: 552, Text: "mailbox full", RemoteMTA: "mx.b.test"},
			{Rcpt: "dave@b.test", Code: 451, Text: "try later (expired)", RemoteMTA: "mx.b.test"},
			{Rcpt: "eve@nowhere.test", Enhanced: "5.1.2", Text: "no mail exchanger for nowhere.test"},
		},
		Original: strings.NewReader(original),
	}
}

func render(t *testing.T, r Report) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// parts parses the bounce with net/mail and mime/multipart.
func parts(t *testing.T, raw []byte) (*mail.Message, []*multipart.Part, [][]byte) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("content type %q %v %v", mt, params, err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var ps []*multipart.Part
	var bodies [][]byte
	for range 10 {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
		bodies = append(bodies, b)
	}
	return msg, ps, bodies
}

func TestWriteParses(t *testing.T) {
	t.Parallel()
	raw := render(t, testReport())
	// CRLF throughout: no bare LF, no bare CR.
	for i, c := range raw {
		if c == '\n' && (i == 0 || raw[i-1] != '\r') {
			t.Fatalf("bare LF at %d: %q", i, raw[max(0, i-40):i+1])
		}
		if c == '\r' && (i+1 >= len(raw) || raw[i+1] != '\n') {
			t.Fatalf("bare CR at %d", i)
		}
	}
	msg, ps, bodies := parts(t, raw)
	h := msg.Header
	for k, want := range map[string]string{
		"From":           "Mail Delivery System <MAILER-DAEMON@mx.a.test>",
		"To":             "<alice@a.test>",
		"Subject":        "Undelivered Mail Returned to Sender",
		"Auto-Submitted": "auto-replied",
		"MIME-Version":   "1.0",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if d, err := h.Date(); err != nil || !d.Equal(time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("Date %v %v", d, err)
	}
	if _, err := mail.ParseAddress(h.Get("From")); err != nil {
		t.Errorf("From does not parse: %v", err)
	}
	if id := h.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@mx.a.test>") {
		t.Errorf("Message-ID %q", id)
	}
	if len(ps) != 3 {
		t.Fatalf("%d parts, want 3", len(ps))
	}
	for i, want := range []string{"text/plain", "message/delivery-status", "text/rfc822-headers"} {
		if mt, _, _ := mime.ParseMediaType(ps[i].Header.Get("Content-Type")); mt != want {
			t.Errorf("part %d: %q, want %q", i, mt, want)
		}
	}

	text := string(bodies[0])
	for _, want := range []string{"bob@b.test", "host mx.b.test said: 550 5.1.1 no such user really", "carol@b.test", "eve@nowhere.test", "no mail exchanger"} {
		if !strings.Contains(text, want) {
			t.Errorf("text part lacks %q:\n%s", want, text)
		}
	}

	// The delivery-status part: a per-message block, then one per recipient.
	tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(bodies[1])))
	perMsg, err := tr.ReadMIMEHeader()
	if err != nil {
		t.Fatal(err)
	}
	if perMsg.Get("Reporting-MTA") != "dns; mx.a.test" || perMsg.Get("Arrival-Date") != "Mon, 01 Jan 2024 00:00:00 +0000" {
		t.Errorf("per-message fields %v", perMsg)
	}
	want := []map[string]string{
		{"Final-Recipient": "rfc822; bob@b.test", "Action": "failed", "Status": "5.1.1", "Remote-MTA": "dns; mx.b.test", "Diagnostic-Code": "smtp; 550 5.1.1 no such user really"},
		{"Final-Recipient": "rfc822; carol@b.test", "Action": "failed", "Status": "5.0.0", "Remote-MTA": "dns; mx.b.test", "Diagnostic-Code": "smtp; 552 mailbox full"},
		{"Final-Recipient": "rfc822; dave@b.test", "Action": "failed", "Status": "4.0.0", "Diagnostic-Code": "smtp; 451 try later (expired)"},
		{"Final-Recipient": "rfc822; eve@nowhere.test", "Action": "failed", "Status": "5.1.2", "Remote-MTA": "", "Diagnostic-Code": "X-gomta; no mail exchanger for nowhere.test"},
	}
	for i, w := range want {
		rh, err := tr.ReadMIMEHeader()
		if err != nil && !(err == io.EOF && len(rh) > 0) {
			t.Fatalf("recipient block %d: %v", i, err)
		}
		for k, v := range w {
			if got := rh.Get(k); got != v {
				t.Errorf("recipient %d %s: %q, want %q", i, k, got, v)
			}
		}
	}

	headers := string(bodies[2])
	if !strings.Contains(headers, "Subject: lunch?\r\n") || !strings.Contains(headers, "From: Alice <alice@a.test>\r\n") {
		t.Errorf("headers part %q", headers)
	}
	if strings.Contains(string(raw), "secret body") {
		t.Error("the original body was copied")
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		f    Failure
		want string
	}{
		{Failure{Code: 550, Enhanced: "5.1.1"}, "5.1.1"},
		{Failure{Code: 550, Enhanced: "5.7.100"}, "5.7.100"},
		{Failure{Code: 550}, "5.0.0"},
		{Failure{Code: 554, Enhanced: "bogus"}, "5.0.0"},
		{Failure{Code: 452}, "4.0.0"},
		{Failure{Code: 452, Enhanced: "4.2.2"}, "4.2.2"},
		{Failure{Enhanced: "4.4.7"}, "4.4.7"},
		{Failure{}, "5.0.0"},
		{Failure{Code: 550, Enhanced: "5.1"}, "5.0.0"},
		{Failure{Code: 451, Enhanced: "4.3.0", Status: "5.4.7"}, "5.4.7"},
		{Failure{Code: 451, Status: "bogus"}, "4.0.0"},
	}
	for _, tt := range tests {
		if got := Status(tt.f); got != tt.want {
			t.Errorf("Status(%+v) = %q, want %q", tt.f, got, tt.want)
		}
	}
}

func TestNullSenderRefused(t *testing.T) {
	t.Parallel()
	r := testReport()
	r.From = ""
	if err := Write(io.Discard, r); !errors.Is(err, ErrNullSender) {
		t.Fatalf("got %v, want ErrNullSender", err)
	}
}

// TestHeaderInjection: CR/LF in a remote reply or an address cannot add fields.
func TestHeaderInjection(t *testing.T) {
	t.Parallel()
	r := testReport()
	r.From = "alice@a.test>\r\nBcc: victim@x.test"
	r.Failures = []Failure{{Rcpt: "bob@b.test\r\nAction: delivered", Code: 550, Text: "no\r\nStatus: 2.0.0"}}
	raw := render(t, r)
	msg, _, bodies := parts(t, raw)
	if msg.Header.Get("Bcc") != "" {
		t.Fatal("Bcc injected")
	}
	tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(bodies[1])))
	_, _ = tr.ReadMIMEHeader()
	rh, _ := tr.ReadMIMEHeader()
	if len(rh["Action"]) != 1 || len(rh["Status"]) != 1 || rh.Get("Status") != "5.0.0" {
		t.Fatalf("injected fields: %v", rh)
	}
}

func TestOriginalHeadersBounded(t *testing.T) {
	t.Parallel()
	r := testReport()
	var big strings.Builder
	for big.Len() < 2*MaxHeaders {
		big.WriteString("X-Filler: " + strings.Repeat("y", 70) + "\r\n")
	}
	r.Original = strings.NewReader(big.String())
	_, _, bodies := parts(t, render(t, r))
	if n := len(bodies[2]); n > MaxHeaders+2 || n == 0 {
		t.Fatalf("headers part is %d bytes", n)
	}
	if !strings.HasSuffix(string(bodies[2]), strings.Repeat("y", 70)+"\r\n") {
		t.Fatal("a truncated field line was copied")
	}
	r.Original = nil
	if _, ps, _ := parts(t, render(t, r)); len(ps) != 3 {
		t.Fatalf("without original: %d parts", len(ps))
	}
}

// TestPythonParses feeds the bounce to Python's email package.
func TestPythonParses(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	const script = `
import sys, email, email.policy
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
assert m.get_content_type() == "multipart/report", m.get_content_type()
assert m.get_param("report-type") == "delivery-status"
assert not m.defects, m.defects
ps = m.get_payload()
print(len(ps))
for p in ps:
    print(p.get_content_type())
    assert not p.defects, p.defects
ds = ps[1].get_payload()  # a list of blocks
print(ds[0]["Reporting-MTA"])
for b in ds[1:]:
    print(b["Final-Recipient"], "|", b["Action"], "|", b["Status"], "|", b["Diagnostic-Code"])
print(m["To"].addresses[0].addr_spec)
`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = bytes.NewReader(render(t, testReport()))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	want := "3\ntext/plain\nmessage/delivery-status\ntext/rfc822-headers\ndns; mx.a.test\n" +
		"rfc822; bob@b.test | failed | 5.1.1 | smtp; 550 5.1.1 no such user really\n" +
		"rfc822; carol@b.test | failed | 5.0.0 | smtp; 552 mailbox full\n" +
		"rfc822; dave@b.test | failed | 4.0.0 | smtp; 451 try later (expired)\n" +
		"rfc822; eve@nowhere.test | failed | 5.1.2 | X-gomta; no mail exchanger for nowhere.test\n" +
		"alice@a.test\n"
	if string(out) != want {
		t.Fatalf("python saw:\n%s\nwant:\n%s", out, want)
	}
}

// statusBlocks returns the per-recipient blocks of a report's
// message/delivery-status part.
func statusBlocks(t *testing.T, part []byte) []textproto.MIMEHeader {
	t.Helper()
	tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(part)))
	if _, err := tr.ReadMIMEHeader(); err != nil {
		t.Fatal(err)
	}
	var out []textproto.MIMEHeader
	for range 10 {
		h, err := tr.ReadMIMEHeader()
		if len(h) > 0 {
			out = append(out, h)
		}
		if err != nil {
			break
		}
	}
	return out
}

// TestDelayNotice: Action: delayed, a transient status (the reply's own, or
// 4.0.0 for one that is not 4.x.x), Will-Retry-Until, its own Subject, and
// From: MAILER-DAEMON at the mail domain rather than the host name.
func TestDelayNotice(t *testing.T) {
	t.Parallel()
	until := time.Date(2024, 1, 6, 0, 0, 0, 0, time.UTC)
	r := testReport()
	r.MailDomain, r.Delayed, r.RetryUntil = "a.test", true, until
	r.Failures = []Failure{
		{Rcpt: "bob@b.test", Enhanced: "4.4.1", Text: "connect to mx.b.test[192.0.2.1]:25: Connection refused"},
		{Rcpt: "carol@b.test", Code: 451, Enhanced: "4.3.0", Text: "busy", RemoteMTA: "mx.b.test"},
		{Rcpt: "dave@b.test"},
	}
	msg, _, bodies := parts(t, render(t, r))
	if got := msg.Header.Get("From"); got != "Mail Delivery System <MAILER-DAEMON@a.test>" {
		t.Errorf("From %q", got)
	}
	if got := msg.Header.Get("Subject"); got != "Delayed Mail (still being retried)" {
		t.Errorf("Subject %q", got)
	}
	text := string(bodies[0])
	for _, want := range []string{"not been delivered yet", "until Sat, 06 Jan 2024 00:00:00 +0000",
		"<bob@b.test>: connect to mx.b.test[192.0.2.1]:25: Connection refused", "<carol@b.test>: host mx.b.test said: 451 4.3.0 busy"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	blocks := statusBlocks(t, bodies[1])
	if len(blocks) != 3 {
		t.Fatalf("%d recipient blocks", len(blocks))
	}
	for i, status := range []string{"4.4.1", "4.3.0", "4.0.0"} {
		b := blocks[i]
		if b.Get("Action") != "delayed" || b.Get("Status") != status || b.Get("Will-Retry-Until") != "Sat, 06 Jan 2024 00:00:00 +0000" {
			t.Errorf("block %d: %v, want delayed %s", i, b, status)
		}
	}
}

// TestExpiredKeepsTheLastReply: a recipient given up on with 5.4.7 has
// that Status, and its last reply in Diagnostic-Code and in the text.
func TestExpiredKeepsTheLastReply(t *testing.T) {
	t.Parallel()
	r := testReport()
	r.Failures = []Failure{
		{Rcpt: "bob@b.test", Code: 451, Enhanced: "4.3.0", Text: "busy", RemoteMTA: "mx.b.test", Status: "5.4.7"},
		{Rcpt: "carol@b.test", Enhanced: "4.4.1", Text: "connect to mx.b.test[192.0.2.1]:25: Connection refused", Status: "5.4.7"},
	}
	_, _, bodies := parts(t, render(t, r))
	blocks := statusBlocks(t, bodies[1])
	want := []string{"smtp; 451 4.3.0 busy", "X-gomta; connect to mx.b.test[192.0.2.1]:25: Connection refused"}
	for i, b := range blocks {
		if b.Get("Action") != "failed" || b.Get("Status") != "5.4.7" || b.Get("Diagnostic-Code") != want[i] {
			t.Errorf("block %d: %v", i, b)
		}
	}
	text := string(bodies[0])
	for _, want := range []string{
		"<bob@b.test>: delivery time expired (5.4.7); the last attempt got: host mx.b.test said: 451 4.3.0 busy",
		"<carol@b.test>: delivery time expired (5.4.7); the last attempt got: connect to mx.b.test[192.0.2.1]:25: Connection refused",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
}
