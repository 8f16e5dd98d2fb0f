package relay

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gomta/session/reply"
	"gomta/session/smtpclient/smtpclienttest"
)

// opens returns an opener of a fixed message.
func opens(msg string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(msg)), nil }
}

// TestSMTPUTF8Relay checks which messages are relayed with the SMTPUTF8
// parameter to a hop that offers it (next to BODY=8BITMIME for any 8-bit
// content, params.go), and that the message arrives whole.
func TestSMTPUTF8Relay(t *testing.T) {
	t.Parallel()
	const declared = "Received: from c (c)\r\n\tby a.test (gomta) with UTF8SMTPS id X;\r\n\tdate\r\nSubject: 你好\r\n\r\nbody\r\n"
	tests := []struct {
		name, from, rcpt, msg string
		want                  string // the MAIL line
	}{
		{"ascii", "me@a.test", "ann@b.test", body, "MAIL FROM:<me@a.test>"},
		{"utf8 recipient", "me@a.test", "张三@b.test", body, "MAIL FROM:<me@a.test> SMTPUTF8"},
		{"utf8 sender", "用户@a.test", "ann@b.test", body, "MAIL FROM:<用户@a.test> SMTPUTF8"},
		{"utf8 header declared", "me@a.test", "ann@b.test", declared, "MAIL FROM:<me@a.test> BODY=8BITMIME SMTPUTF8"},
		{"utf8 header not declared", "me@a.test", "ann@b.test", strings.Replace(declared, "UTF8SMTPS", "ESMTPS", 1), "MAIL FROM:<me@a.test> BODY=8BITMIME"},
		{"utf8 body only", "me@a.test", "ann@b.test", "Received: x with UTF8SMTP id Y;\r\n\tdate\r\n\r\n正文\r\n", "MAIL FROM:<me@a.test> BODY=8BITMIME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING", "8BITMIME", "SMTPUTF8"}})
			rl, _ := newRelay(t, NewResolver(map[string]string{"b.test.": "mx.b.test."}, map[string]string{"mx.b.test.": srv.Port()}, false))
			j := Job{MsgID: "m", Domain: "b.test", From: tt.from, Rcpts: []string{tt.rcpt}, Open: opens(tt.msg)}
			if errs := rl.Deliver(context.Background(), j).Errs; errs[0] != nil {
				t.Fatalf("result %v", errs[0])
			}
			if got := mailLine(srv); got != tt.want {
				t.Errorf("MAIL line %q, want %q", got, tt.want)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 || string(msgs[0].Raw) != tt.msg+".\r\n" {
				t.Errorf("messages %+v", msgs)
			}
		})
	}
}

// TestSMTPUTF8NotOffered checks that a message that needs SMTPUTF8 is not
// sent to a hop without it: every recipient gets a permanent 5.6.7, and
// nothing reaches the hop.
func TestSMTPUTF8NotOffered(t *testing.T) {
	t.Parallel()
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING", "8BITMIME"}})
	rl, _ := newRelay(t, NewResolver(map[string]string{"b.test.": "mx.b.test."}, map[string]string{"mx.b.test.": srv.Port()}, false))
	j := Job{MsgID: "m", Domain: "b.test", From: "me@a.test", Rcpts: []string{"张三@b.test", "ann@b.test"}, Open: opens(body)}
	out := rl.Deliver(context.Background(), j)
	for i, err := range out.Errs {
		var r *reply.Reply
		if !errors.As(err, &r) || !r.Permanent() || r.Enhanced != "5.6.7" || !strings.Contains(r.Text, "SMTPUTF8 is required") {
			t.Errorf("rcpt %d: %v, want a permanent 5.6.7", i, err)
		}
		if f := Failure(j.Rcpts[i], out.MX, err); f.Enhanced != "5.6.7" {
			t.Errorf("bounce of rcpt %d: %+v", i, f)
		}
	}
	if slices.ContainsFunc(srv.Lines(), func(l string) bool { return strings.HasPrefix(l, "MAIL") }) || len(srv.Messages()) != 0 {
		t.Errorf("the hop got %q", srv.Lines())
	}
}

// TestSMTPUTF8BeforeConversion: a message whose header is UTF-8 under a
// declared SMTPUTF8, to a hop that offers neither SMTPUTF8 nor 8BITMIME,
// fails with the precise 5.6.7, not the converter's 5.6.3 (the header
// could not be converted either), and nothing is sent.
func TestSMTPUTF8BeforeConversion(t *testing.T) {
	t.Parallel()
	const msg = "Received: from c (c)\r\n\tby a.test (gomta) with UTF8SMTP id X;\r\n\tdate\r\nSubject: 你好\r\n\r\n正文\r\n"
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING"}})
	rl, _ := newRelay(t, NewResolver(map[string]string{"b.test.": "mx.b.test."}, map[string]string{"mx.b.test.": srv.Port()}, false))
	j := Job{MsgID: "m", Domain: "b.test", From: "me@a.test", Rcpts: []string{"ann@b.test"}, Open: opens(msg)}
	out := rl.Deliver(context.Background(), j)
	var r *reply.Reply
	if !errors.As(out.Errs[0], &r) || r.Enhanced != "5.6.7" {
		t.Errorf("result %v, want 5.6.7", out.Errs[0])
	}
	if len(srv.Messages()) != 0 || slices.ContainsFunc(srv.Lines(), func(l string) bool { return strings.HasPrefix(l, "MAIL") }) {
		t.Errorf("the hop got %q", srv.Lines())
	}
}

// TestSMTPUTF8BodyRewound checks that a file body read for its header is
// sent whole, from its start.
func TestSMTPUTF8BodyRewound(t *testing.T) {
	t.Parallel()
	const msg = "Subject: x\r\n\r\n" + "line\r\n"
	p := filepath.Join(t.TempDir(), "m")
	if err := os.WriteFile(p, []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	need, rest, err := needsSMTPUTF8(Job{From: "a@a.test", Rcpts: []string{"b@b.test"}}, f)
	if err != nil || need || rest != io.Reader(f) {
		t.Fatalf("need %v rest %T err %v", need, rest, err)
	}
	if got, _ := io.ReadAll(rest); string(got) != msg {
		t.Errorf("body %q", got)
	}
}
