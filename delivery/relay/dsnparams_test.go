package relay

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"

	"gomta/session/smtpclient/smtpclienttest"
)

// TestDSNPassedOn checks that a next hop offering DSN gets RET and ENVID
// on MAIL and NOTIFY and ORCPT on each RCPT (ORCPT=rfc822;<rcpt> added
// where none was given), and that the Outcome says it offers DSN; and
// that a hop without DSN gets no parameter.
func TestDSNPassedOn(t *testing.T) {
	t.Parallel()
	dsn := DSN{Ret: "HDRS", EnvID: "env+2B1", Rcpt: map[string]RcptDSN{
		"ann@b.test": {Notify: "SUCCESS,FAILURE", ORCPT: "rfc822;Ann@b.test"},
		"bob@b.test": {Notify: "NEVER"},
	}}
	for _, offered := range []bool{true, false} {
		ext := []string{"PIPELINING"}
		if offered {
			ext = append(ext, "DSN")
		}
		srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: ext})
		res := NewResolver(map[string]string{"b.test.": "mx.b.test."}, map[string]string{"mx.b.test.": srv.Port()}, false)
		rl, _ := newRelay(t, res)
		var opens atomic.Int32
		j := job("m1", "b.test", opener(&opens), "ann@b.test", "bob@b.test", "c+d@b.test")
		j.DSN = dsn
		out := rl.Deliver(context.Background(), j)
		if out.DSN != offered || slices.ContainsFunc(out.Errs, func(err error) bool { return err != nil }) {
			t.Fatalf("offered %v: outcome %+v", offered, out)
		}
		want := []string{"MAIL FROM:<me@a.test>", "RCPT TO:<ann@b.test>", "RCPT TO:<bob@b.test>", "RCPT TO:<c+d@b.test>"}
		if offered {
			want = []string{"MAIL FROM:<me@a.test> RET=HDRS ENVID=env+2B1",
				"RCPT TO:<ann@b.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Ann@b.test",
				"RCPT TO:<bob@b.test> NOTIFY=NEVER ORCPT=rfc822;bob@b.test",
				"RCPT TO:<c+d@b.test> ORCPT=rfc822;c+2Bd@b.test"}
		}
		lines := srv.Lines()
		for _, w := range want {
			if !slices.Contains(lines, w) {
				t.Errorf("offered %v: no %q in %q", offered, w, lines)
			}
		}
	}
}

func TestXtext(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"a@b": "a@b", "a+b=c d": "a+2Bb+3Dc+20d", "é": "+C3+A9"} {
		if got := xtext(in); got != want {
			t.Errorf("xtext(%q) = %q, want %q", in, got, want)
		}
	}
}
