// Package dsn writes delivery status notifications (RFC 3464): the bounce a
// sender gets when some recipients of a message have failed for good, the
// delay notice (Action: delayed) when some are still being retried after a
// while, and the success notice (Action: delivered or relayed) for
// recipients that asked for one (RFC 3461 NOTIFY=SUCCESS). The sender's
// ENVID and each recipient's ORCPT are reported, decoded from xtext, as
// Original-Envelope-Id and Original-Recipient. A report is a
// multipart/report (RFC 6522) with three parts: a human-readable text/plain
// explanation, the machine-readable message/delivery-status, and the
// original message's header section as text/rfc822-headers, or the whole
// message as message/rfc822 when the sender asked for it (RET=FULL). It
// comes From: MAILER-DAEMON at the host's mail domain, so that a reply
// reaches a mailbox there.
//
// Invariants: output uses CRLF line endings throughout; field values are
// stripped of CR and LF so nothing from a remote reply or an address can
// inject a header; the copied header section is bounded (MaxHeaders) and
// without RET=FULL nothing of the body is returned; no report is ever
// written to the null sender (RFC 5321 §4.5.5, §6.1: bounces go to the
// reverse-path, and a null one gets none).
package dsn

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// MaxHeaders bounds how much of the original message's header section is
// returned. RFC 3462/6522 lets a report carry just the headers; 64 KiB is
// plenty for any sane header section.
const MaxHeaders = 64 << 10

// maxDiagnostic bounds a diagnostic text so that a field line stays well
// inside RFC 5322 §2.1.1's 998-octet limit.
const maxDiagnostic = 800

// ErrNullSender is returned for a report whose From is empty: a bounce is
// never sent to the null reverse-path (no bounce loops).
var ErrNullSender = errors.New("dsn: no bounce to the null sender")

// Failure is one recipient that could not be delivered.
type Failure struct {
	Rcpt      string
	Code      int    // remote SMTP reply code; 0 when there was no remote reply (local error, resolution)
	Enhanced  string // RFC 3463 status ("5.1.1"); may be empty
	Text      string // reply text (lines separated by "\n") or the local error
	RemoteMTA string // mail exchanger that answered; "" when none
	// Status, when set, is the recipient's RFC 3463 status instead of the
	// one Enhanced or Code give: 5.4.7 when the sender's MTA gave up on a
	// recipient that was failing temporarily, whose last reply the other
	// fields keep (it stays in Diagnostic-Code).
	Status string
	// ORCPT is the recipient's ORCPT parameter (RFC 3461 §4.2) as given,
	// "addr-type;xtext": reported, decoded, as Original-Recipient (RFC 3464
	// §2.3.1). "" when none was given.
	ORCPT string
	// Relayed, in a success notice, says that the recipient was relayed
	// to a next hop that does not offer DSN (Action: relayed) rather than
	// delivered here (Action: delivered).
	Relayed bool
}

// Report is one bounce.
type Report struct {
	ReportingMTA string    // this host's name
	MailDomain   string    // this host's mail domain, for From: MAILER-DAEMON@...; "" = ReportingMTA
	From         string    // original sender (the bounce goes To: this)
	MsgID        string    // original msg_id
	Arrival      time.Time // when the original was accepted; zero: no Arrival-Date
	Failures     []Failure // the recipients reported on (failed, or still pending when Delayed)
	Original     io.Reader // the original message (its header section is copied, at most MaxHeaders)

	// Delayed makes the report a delay notice: Action: delayed, a 4.x.x
	// Status for each recipient (RFC 3464 §2.3.3), and Will-Retry-Until
	// (§2.3.9) when RetryUntil is set.
	Delayed    bool
	RetryUntil time.Time

	// Success makes the report a success notice (RFC 3461 §6.2, NOTIFY=
	// SUCCESS): Action: delivered, or relayed when the recipient's Relayed
	// is set (the next
	// hop does not offer DSN: Failure.Relayed), status 2.0.0, no diagnostic. Failures are
	// then the recipients reported on.
	Success bool

	// EnvID is the sender's ENVID (RFC 3461 §4.4) as given (xtext),
	// reported decoded as Original-Envelope-Id (RFC 3464 §2.2.1).
	EnvID string
	// Full returns the whole original (RET=FULL, RFC 3461 §4.3) as
	// message/rfc822 instead of its header section.
	Full bool

	// Date is the bounce's Date; zero means now.
	Date time.Time
}

// Write writes the whole bounce message, headers and body, to w.
func Write(w io.Writer, r Report) error {
	if strings.TrimSpace(r.From) == "" {
		return ErrNullSender
	}
	if len(r.Failures) == 0 {
		return errors.New("dsn: report without failures")
	}
	boundary, err := token(12)
	if err != nil {
		return err
	}
	id, err := token(8)
	if err != nil {
		return err
	}
	date := r.Date
	if date.IsZero() {
		date = time.Now()
	}
	mta := clean(r.ReportingMTA)
	if mta == "" {
		mta = "localhost"
	}
	domain := clean(r.MailDomain)
	if domain == "" {
		domain = mta
	}
	subject := "Undelivered Mail Returned to Sender"
	switch {
	case r.Success:
		subject = "Successful Mail Delivery Report"
	case r.Delayed:
		subject = "Delayed Mail (still being retried)"
	}
	boundary = "=_gomta_" + boundary
	bw := bufio.NewWriter(w)
	lw := &lineWriter{w: bw}

	// Header section (RFC 5322; Auto-Submitted per RFC 3834 §5).
	lw.line("Date: " + date.Format(time.RFC1123Z))
	lw.line("From: Mail Delivery System <MAILER-DAEMON@" + domain + ">")
	lw.line("To: <" + clean(r.From) + ">")
	lw.line("Subject: " + subject)
	lw.line("Message-ID: <" + id + "." + messageIDPart(r.MsgID) + "@" + mta + ">")
	lw.line("Auto-Submitted: auto-replied")
	lw.line("MIME-Version: 1.0")
	lw.line(`Content-Type: multipart/report; report-type=delivery-status; boundary="` + boundary + `"`)
	lw.line("")
	lw.line("This is a MIME-encapsulated message.")
	lw.line("")

	writeNotification(lw, boundary, mta, r)
	writeStatus(lw, boundary, mta, r)
	if err := writeOriginal(lw, boundary, r.Original, r.Full); err != nil {
		return err
	}
	lw.line("--" + boundary + "--")
	if lw.err != nil {
		return lw.err
	}
	return bw.Flush()
}

// writeNotification writes part 1, the explanation for people.
func writeNotification(lw *lineWriter, boundary, mta string, r Report) {
	text := humanText(mta, r)
	lw.line("--" + boundary)
	lw.line("Content-Description: Notification")
	lw.line("Content-Type: text/plain; charset=utf-8")
	if isASCII(text) {
		lw.line("Content-Transfer-Encoding: 7bit")
	} else {
		lw.line("Content-Transfer-Encoding: 8bit")
	}
	lw.line("")
	lw.text(text)
	lw.line("") // the CRLF before a boundary belongs to the boundary (RFC 2046 §5.1.1)
}

// writeStatus writes part 2, the message/delivery-status for programs
// (RFC 3464 §2): the per-message fields, then one block per recipient.
func writeStatus(lw *lineWriter, boundary, mta string, r Report) {
	lw.line("--" + boundary)
	lw.line("Content-Description: Delivery report")
	lw.line("Content-Type: message/delivery-status")
	lw.line("")
	lw.line("Reporting-MTA: dns; " + mta)
	if r.EnvID != "" {
		lw.line("Original-Envelope-Id: " + clean(decodeXtext(r.EnvID)))
	}
	if r.MsgID != "" {
		lw.line("X-Gomta-Msg-Id: " + clean(r.MsgID)) // extension field, RFC 3464 §2.4
	}
	if !r.Arrival.IsZero() {
		lw.line("Arrival-Date: " + r.Arrival.Format(time.RFC1123Z))
	}
	action, status := "failed", Status
	switch {
	case r.Success:
		status = successStatus
	case r.Delayed:
		action, status = "delayed", delayStatus
	}
	for _, f := range r.Failures {
		lw.line("")
		if r.Success {
			action = successAction(f)
		}
		if typ, addr, ok := strings.Cut(f.ORCPT, ";"); ok {
			lw.line("Original-Recipient: " + clean(typ) + "; " + clean(decodeXtext(addr)))
		}
		lw.line("Final-Recipient: rfc822; " + clean(f.Rcpt))
		lw.line("Action: " + action)
		lw.line("Status: " + status(f))
		if f.RemoteMTA != "" {
			lw.line("Remote-MTA: dns; " + clean(f.RemoteMTA))
		}
		if r.Success && f.Code == 0 {
			continue // nothing went wrong: no diagnostic
		}
		lw.line("Diagnostic-Code: " + diagnostic(f))
		if r.Delayed && !r.RetryUntil.IsZero() {
			lw.line("Will-Retry-Until: " + r.RetryUntil.Format(time.RFC1123Z))
		}
	}
	lw.line("")
}

// writeOriginal writes part 3, the original header section (RFC 6522 §4
// text/rfc822-headers), or with full the whole original (message/rfc822,
// RFC 3464 §2); original may be nil.
func writeOriginal(lw *lineWriter, boundary string, original io.Reader, full bool) error {
	lw.line("--" + boundary)
	copyPart := copyHeaders
	if full && original != nil {
		lw.line("Content-Description: Original Message")
		lw.line("Content-Type: message/rfc822")
		copyPart = copyAll
	} else {
		lw.line("Content-Description: Undelivered Message Headers")
		lw.line("Content-Type: text/rfc822-headers")
	}
	lw.line("")
	if original != nil {
		if err := copyPart(lw, original); err != nil {
			return fmt.Errorf("dsn: read original: %w", err)
		}
	}
	lw.line("")
	return nil
}

// copyAll copies the whole of msg with CRLF line endings. Its size is the
// original's, which the queue accepted.
func copyAll(lw *lineWriter, msg io.Reader) error {
	br := bufio.NewReader(msg)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			lw.line(strings.TrimRight(line, "\r\n"))
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// successAction is the Action of a recipient in a success notice (RFC
// 3464 §2.3.3).
func successAction(f Failure) string {
	if f.Relayed {
		return "relayed"
	}
	return "delivered"
}

// successStatus is the status of a recipient delivered or relayed (RFC
// 3463 §3.1 X.0.0 with class 2, success).
func successStatus(Failure) string { return "2.0.0" }

// decodeXtext decodes RFC 3461 §4 xtext ("+XX" is the octet 0xXX); a
// malformed "+" is kept as it is.
func decodeXtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '+' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Status is the RFC 3463 status for a failure: its Status when set, else
// its enhanced code when it has a well-formed one, else derived from the
// reply class (4xx → 4.0.0, anything else, including no reply, → 5.0.0).
func Status(f Failure) string {
	if validStatus(f.Status) {
		return f.Status
	}
	if validStatus(f.Enhanced) {
		return f.Enhanced
	}
	if f.Code >= 400 && f.Code < 500 {
		return "4.0.0"
	}
	return "5.0.0"
}

// delayStatus is the status of a recipient still being retried: a
// transient one (RFC 3464 §2.3.4: "delayed" goes with a 4.x.x status), the
// reply's own when it is 4.x.x, else 4.0.0.
func delayStatus(f Failure) string {
	if s := Status(Failure{Code: f.Code, Enhanced: f.Enhanced}); strings.HasPrefix(s, "4.") {
		return s
	}
	return "4.0.0"
}

// validStatus checks "class.subject.detail": class 2, 4 or 5, subject 1-3
// digits, detail 1-3 digits (RFC 3463 §2).
func validStatus(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || (parts[0] != "2" && parts[0] != "4" && parts[0] != "5") {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

// diagnostic renders Diagnostic-Code (RFC 3464 §2.3.6): "smtp; 550 5.1.1
// text" for a remote reply, an X- type for a local error (RFC 3464 §2.2.1).
func diagnostic(f Failure) string {
	text := clip(clean(strings.ReplaceAll(f.Text, "\n", " ")))
	if f.Code == 0 {
		if text == "" {
			text = "delivery failed"
		}
		return "X-gomta; " + text
	}
	s := fmt.Sprintf("smtp; %d", f.Code)
	if f.Enhanced != "" && validStatus(f.Enhanced) {
		s += " " + f.Enhanced
	}
	if text != "" {
		s += " " + text
	}
	return s
}

// humanText is the explanation for the sender, in plain words.
func humanText(mta string, r Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "This is the mail system at host %s.\n\n", mta)
	if r.Success {
		return successText(&b, r)
	}
	if r.Delayed {
		b.WriteString("Your message has not been delivered yet to the recipients below.\n")
		b.WriteString("It is still in the queue and will be tried again")
		if !r.RetryUntil.IsZero() {
			fmt.Fprintf(&b, " until %s", r.RetryUntil.Format(time.RFC1123Z))
		}
		b.WriteString(";\nyou need not send it again. The last attempt got:\n\n")
	} else {
		b.WriteString("I'm sorry to have to inform you that your message could not\n")
		b.WriteString("be delivered to one or more recipients. The details are below.\n\n")
	}
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "<%s>: ", clean(f.Rcpt))
		if validStatus(f.Status) && f.Status != f.Enhanced {
			fmt.Fprintf(&b, "%s (%s); the last attempt got: ", statusPhrase(f.Status), f.Status)
		}
		b.WriteString(explain(f) + "\n")
	}
	if r.MsgID != "" {
		fmt.Fprintf(&b, "\nThe message's id here was %s.\n", clean(r.MsgID))
	}
	return b.String()
}

// successText ends the explanation of a success notice.
func successText(b *strings.Builder, r Report) string {
	b.WriteString("Your message was delivered to the recipients below, or relayed to\n")
	b.WriteString("a system that sends no delivery notifications (you may hear no more).\n\n")
	for _, f := range r.Failures {
		fmt.Fprintf(b, "<%s>: ", clean(f.Rcpt))
		switch {
		case f.Relayed && f.RemoteMTA != "":
			fmt.Fprintf(b, "relayed to %s\n", clean(f.RemoteMTA))
		case f.Relayed:
			b.WriteString("relayed\n")
		default:
			b.WriteString("delivered to the mailbox\n")
		}
	}
	if r.MsgID != "" {
		fmt.Fprintf(b, "\nThe message's id here was %s.\n", clean(r.MsgID))
	}
	return b.String()
}

// explain is what happened to one recipient: the remote reply, or the
// local error.
func explain(f Failure) string {
	switch {
	case f.Code != 0 && f.RemoteMTA != "":
		return "host " + clean(f.RemoteMTA) + " said: " + strings.TrimPrefix(diagnostic(f), "smtp; ")
	case f.Code != 0:
		return "the remote server said: " + strings.TrimPrefix(diagnostic(f), "smtp; ")
	default:
		return strings.TrimPrefix(diagnostic(f), "X-gomta; ")
	}
}

// statusPhrase names the RFC 3463 statuses the queue sets itself.
func statusPhrase(s string) string {
	switch s[2:] {
	case "4.7":
		return "delivery time expired" // RFC 3463 §3.5 X.4.7
	case "4.1":
		return "no answer from host" // X.4.1
	case "4.2":
		return "bad connection" // X.4.2
	default:
		return "delivery failed"
	}
}

// copyHeaders copies the header section of msg (up to its first empty
// line, at most MaxHeaders, whole lines only) with CRLF endings.
func copyHeaders(lw *lineWriter, msg io.Reader) error {
	br := bufio.NewReader(io.LimitReader(msg, MaxHeaders))
	for range MaxHeaders { // bounded: each pass consumes at least one byte
		line, err := br.ReadString('\n')
		if err != nil {
			// EOF before the blank line: keep only a complete last line
			// of a message that is all headers (no truncated field).
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return nil
		}
		lw.line(line)
	}
	return nil
}

// lineWriter writes CRLF-terminated lines, remembering the first error.
type lineWriter struct {
	w   *bufio.Writer
	err error
}

func (l *lineWriter) line(s string) {
	if l.err != nil {
		return
	}
	if _, err := l.w.WriteString(s); err != nil {
		l.err = err
		return
	}
	_, l.err = l.w.WriteString("\r\n")
}

// text writes a "\n"-separated text as CRLF lines.
func (l *lineWriter) text(s string) {
	for line := range strings.Lines(s) {
		l.line(strings.TrimRight(line, "\r\n"))
	}
}

// clean removes CR, LF and other control characters from a field value.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
}

func clip(s string) string {
	if len(s) <= maxDiagnostic {
		return s
	}
	return strings.ToValidUTF8(s[:maxDiagnostic], "") + "..."
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// token is a random hex string of n bytes.
func token(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("dsn: random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// messageIDPart is the msg_id reduced to characters safe in the left part
// of a Message-ID (RFC 5322 §3.6.4 dot-atom-text), "bounce" when none is.
func messageIDPart(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		if r < 0x80 && (r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "bounce"
	}
	return b.String()
}
