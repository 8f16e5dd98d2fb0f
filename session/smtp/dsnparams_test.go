package smtp

import (
	"context"
	"reflect"
	"testing"
)

func TestParseRcptParams(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   []string
		want RcptDSN
		bad  string // reply line when refused
	}{
		{in: nil},
		{in: []string{"NOTIFY=NEVER"}, want: RcptDSN{Notify: "NEVER"}},
		{in: []string{"notify=delay,success"}, want: RcptDSN{Notify: "SUCCESS,DELAY"}},
		{in: []string{"NOTIFY=FAILURE", "ORCPT=rfc822;a+2Bb@x.example"}, want: RcptDSN{Notify: "FAILURE", ORCPT: "rfc822;a+2Bb@x.example"}},
		{in: []string{"NOTIFY=NEVER,SUCCESS"}, bad: "501 5.5.4 syntax error: NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY"},
		{in: []string{"NOTIFY="}, bad: "501 5.5.4 syntax error: NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY"},
		{in: []string{"NOTIFY=SUCCESS,SUCCESS"}, bad: "501 5.5.4 syntax error: NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY"},
		{in: []string{"NOTIFY=SUCCESS", "NOTIFY=FAILURE"}, bad: "555 5.5.4 parameter given twice: NOTIFY"},
		{in: []string{"ORCPT=rfc822;a+2bb@x"}, bad: "501 5.5.4 syntax error: ORCPT must be addr-type;xtext of at most 500 characters"},
		{in: []string{"ORCPT=a@x"}, bad: "501 5.5.4 syntax error: ORCPT must be addr-type;xtext of at most 500 characters"},
		{in: []string{"ORCPT=rfc822;a=b"}, bad: "501 5.5.4 syntax error: ORCPT must be addr-type;xtext of at most 500 characters"},
		{in: []string{"ORCPT=rfc822;a", "ORCPT=rfc822;b"}, bad: "555 5.5.4 parameter given twice: ORCPT"},
		{in: []string{"FOO=1"}, bad: "555 5.5.4 parameter not recognized: FOO"},
	}
	for _, c := range cases {
		got, r := parseRcptParams(c.in)
		if c.bad != "" {
			if r == nil || r.Error() != c.bad {
				t.Errorf("%q: reply %v, want %q", c.in, r, c.bad)
			}
			continue
		}
		if r != nil || got != c.want {
			t.Errorf("%q = %+v, %v; want %+v", c.in, got, r, c.want)
		}
	}
}

func TestParseMailParamsDSN(t *testing.T) {
	t.Parallel()
	mp, r := parseMailParams([]string{"ret=hdrs", "ENVID=QQ+2B1", "SIZE=10"})
	if r != nil || mp.ret != "HDRS" || mp.envID != "QQ+2B1" || mp.size != 10 {
		t.Fatalf("got %+v %v", mp, r)
	}
	for in, want := range map[string]string{
		"RET=BODY":  "501 5.5.4 syntax error: RET must be FULL or HDRS",
		"ENVID=a b": "555 5.5.4 parameter not recognized: B", // split on the space: b is another parameter
		"ENVID=a=b": "501 5.5.4 syntax error: ENVID must be xtext of 1 to 100 characters",
		"ENVID=x+4": "501 5.5.4 syntax error: ENVID must be xtext of 1 to 100 characters",
	} {
		_, r := parseMailParams(splitParams(in))
		if r == nil || r.Error() != want {
			t.Errorf("%q: reply %v, want %q", in, r, want)
		}
	}
	_, r = parseMailParams([]string{"RET=FULL", "RET=HDRS"})
	if r == nil || r.Error() != "555 5.5.4 parameter given twice: RET" {
		t.Errorf("RET twice: %v", r)
	}
}

func splitParams(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

// dsnMessage is a fakeMessage that takes DSN parameters.
type dsnMessage struct {
	*fakeMessage
	got chan DSN
}

func (m *dsnMessage) SetDSN(p DSN) { m.got <- p }

// TestDSNSession checks that DSN is offered and that the parameters of a
// transaction reach the MessageWriter before Commit, and only that
// transaction's.
func TestDSNSession(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	got := make(chan DSN, 4)
	dsnBe := &dsnBackend{fakeBackend: be, got: got}
	_, addr := startServer(t, Config{}, dsnBe)
	cl := dialReady(t, addr)
	cl.send("MAIL FROM:<a@example.org> RET=HDRS ENVID=env+2B1")
	cl.expect("250 2.1.0 sender OK")
	cl.send("RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;B@example.org")
	cl.expect("250 2.1.5 recipient OK")
	cl.send("RCPT TO:<c@example.org>")
	cl.expect("250 2.1.5 recipient OK")
	cl.send("RCPT TO:<d@example.org> NOTIFY=NEVER,DELAY")
	cl.expect("501 5.5.4 syntax error: NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY")
	cl.send("DATA")
	cl.expect("354 end data with <CR><LF>.<CR><LF>")
	cl.send("Subject: x", "", "hi", ".")
	cl.expect("250 2.0.0 OK queued as MSG0001")
	want := DSN{Ret: "HDRS", EnvID: "env+2B1", Rcpts: map[string]RcptDSN{
		"b@example.org": {Notify: "SUCCESS,FAILURE", ORCPT: "rfc822;B@example.org"}}}
	if p := <-got; !reflect.DeepEqual(p, want) {
		t.Errorf("DSN %+v, want %+v", p, want)
	}
	// The next transaction, without parameters, hands none over.
	cl.send("MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA")
	cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "354 end data with <CR><LF>.<CR><LF>")
	cl.send("hi", ".")
	cl.expect("250 2.0.0 OK queued as MSG0002")
	if n := len(got); n != 0 {
		t.Errorf("%d more SetDSN calls", n)
	}
}

type dsnBackend struct {
	*fakeBackend
	got chan DSN
}

func (b *dsnBackend) NewMessage(ctx context.Context, p *Peer) (MessageWriter, error) {
	mw, err := b.fakeBackend.NewMessage(ctx, p)
	if err != nil {
		return nil, err
	}
	return &dsnMessage{fakeMessage: mw.(*fakeMessage), got: b.got}, nil
}
