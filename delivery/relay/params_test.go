package relay

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"gomta/session/reply"
	"gomta/session/smtpclient/smtpclienttest"
)

// nopSeekCloser is a seekable body, as a spool file is.
type nopSeekCloser struct{ *strings.Reader }

func (nopSeekCloser) Close() error { return nil }

const body8 = "From: a@a.test\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: 8bit\r\n\r\nGr\u00fc\u00dfe \u4f60\u597d\r\n"

// relayTo delivers msg to one recipient at a fake server with ext and
// returns the server, the converted fields logged and the result.
func relayTo(t *testing.T, ext []string, msg string) (*smtpclienttest.Server, []string, error) {
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: ext})
	rl, logs := newRelay(t, &Resolver{P: map[string]string{"b.test": srv.Addr()}})
	// Not seekable: the body is opened again after each pass.
	open := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(msg)), nil }
	out := rl.Deliver(context.Background(), job("m8", "b.test", open, "ann@b.test"))
	var conv []string
	for _, e := range logs.FilterMessage("relay delivered").All() {
		if v, ok := e.ContextMap()["converted"].(string); ok {
			conv = append(conv, v)
		}
	}
	return srv, conv, out.Errs[0]
}

func mailLine(srv *smtpclienttest.Server) string {
	for _, l := range srv.Lines() {
		if strings.HasPrefix(l, "MAIL ") {
			return l
		}
	}
	return ""
}

func TestMailParams(t *testing.T) {
	t.Parallel()
	n7, n8 := len(body), len(body8)
	for _, tt := range []struct {
		ext  []string
		msg  string
		want string
	}{
		{[]string{"SIZE 1000000", "8BITMIME"}, body8, "MAIL FROM:<me@a.test> SIZE=" + strconv.Itoa(n8) + " BODY=8BITMIME"},
		{[]string{"SIZE", "8BITMIME"}, body, "MAIL FROM:<me@a.test> SIZE=" + strconv.Itoa(n7)},
		{[]string{"8BITMIME"}, body8, "MAIL FROM:<me@a.test> BODY=8BITMIME"},
		{[]string{"PIPELINING"}, body, "MAIL FROM:<me@a.test>"},
		{[]string{"SIZE 0"}, body8, "MAIL FROM:<me@a.test> SIZE=" + strconv.Itoa(n8)}, // converted; the original size
	} {
		srv, _, err := relayTo(t, tt.ext, tt.msg)
		if err != nil || mailLine(srv) != tt.want {
			t.Errorf("ext %v: %v, MAIL %q, want %q", tt.ext, err, mailLine(srv), tt.want)
		}
	}
}

func TestConvertedForHopWithout8BITMIME(t *testing.T) {
	t.Parallel()
	srv, conv, err := relayTo(t, []string{"PIPELINING"}, body8)
	if err != nil {
		t.Fatal(err)
	}
	want := "From: a@a.test\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe =E4=BD=A0=E5=A5=BD\r\n.\r\n"
	msgs := srv.Messages()
	if len(msgs) != 1 || string(msgs[0].Raw) != want {
		t.Fatalf("got %q\nwant %q", msgs, want)
	}
	if len(conv) != 1 || conv[0] != "8bit-to-qp" {
		t.Fatalf("converted field %q", conv)
	}
}

func TestNotConvertibleBounces563(t *testing.T) {
	t.Parallel()
	msg := "Subject: Gr\u00fc\u00dfe\r\n\r\nbody\r\n"
	srv, _, err := relayTo(t, []string{"PIPELINING"}, msg)
	var r *reply.Reply
	if !errors.As(err, &r) || r.Enhanced != "5.6.3" || !r.Permanent() {
		t.Fatalf("result %v, want a 5.6.3 refusal", err)
	}
	if mailLine(srv) != "" || len(srv.Messages()) != 0 {
		t.Fatalf("sent anyway: %q", srv.Lines())
	}
}

func TestOverHopSizeLimitBounces534(t *testing.T) {
	t.Parallel()
	srv, _, err := relayTo(t, []string{"SIZE 10"}, body)
	var r *reply.Reply
	if !errors.As(err, &r) || r.Code != 552 || r.Enhanced != "5.3.4" {
		t.Fatalf("result %v, want 552 5.3.4", err)
	}
	for _, l := range srv.Lines() {
		if strings.HasPrefix(l, "MAIL") || l == "DATA" {
			t.Fatalf("sent %q", srv.Lines())
		}
	}
}

func TestMultipartConvertsOnlyTheTextPart(t *testing.T) {
	t.Parallel()
	head := "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
	b64 := "--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nw7zDnw==\r\n--b1--\r\n"
	msg := head + "Content-Transfer-Encoding: 8bit\r\n\r\n\u00fc\u00df\r\n" + b64
	want := head + "Content-Transfer-Encoding: quoted-printable\r\n\r\n=C3=BC=C3=9F\r\n" + b64 + ".\r\n"
	srv, conv, err := relayTo(t, []string{"PIPELINING"}, msg)
	if err != nil {
		t.Fatal(err)
	}
	if msgs := srv.Messages(); len(msgs) != 1 || string(msgs[0].Raw) != want || len(conv) != 1 {
		t.Fatalf("got %q\nwant %q (converted %q)", msgs, want, conv)
	}
}
