package smtpclient

import (
	"slices"
	"strings"
	"testing"

	"gomta/session/smtpclient/smtpclienttest"
)

// TestSendEnvelopeParams checks that the parameters of MAIL and of each RCPT
// go on their command lines, pipelined or not, and that a parameter that
// would break the line is refused before anything is sent.
func TestSendEnvelopeParams(t *testing.T) {
	for _, pipelining := range []bool{false, true} {
		cfg := smtpclienttest.Config{Ext: []string{"SIZE 1000000", "8BITMIME", "DSN"}}
		if pipelining {
			cfg.Ext = append(cfg.Ext, "PIPELINING")
			cfg.Strict = true
		}
		srv := smtpclienttest.Start(t, cfg)
		c := dial(t, srv, testOpts())
		env := Envelope{
			From:       "me@a.test",
			MailParams: []string{"SIZE=4", "BODY=8BITMIME"},
			Rcpts:      []string{"ann@b.test", "bob@b.test"},
			RcptParams: [][]string{{"NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;ann@b.test"}},
		}
		errs, err := c.SendEnvelope(env, strings.NewReader("hi\r\n"))
		if err != nil || errs[0] != nil || errs[1] != nil {
			t.Fatalf("pipelining=%v: %v %v", pipelining, err, errs)
		}
		lines := srv.Lines()
		for _, want := range []string{
			"MAIL FROM:<me@a.test> SIZE=4 BODY=8BITMIME",
			"RCPT TO:<ann@b.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;ann@b.test",
			"RCPT TO:<bob@b.test>",
		} {
			if !slices.Contains(lines, want) {
				t.Errorf("pipelining=%v: no line %q in %q", pipelining, want, lines)
			}
		}
		env.MailParams = []string{"SIZE=4\r\nRSET"}
		if _, err := c.SendEnvelope(env, strings.NewReader("hi\r\n")); err == nil {
			t.Errorf("pipelining=%v: a parameter with CRLF was sent", pipelining)
		}
		_ = c.Quit()
	}
}
