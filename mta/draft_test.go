package mta

import (
	"strings"
	"testing"

	"gomta/session/smtp"
)

// TestDSNParamsFirstSpellingWins: a recipient given twice in forms that
// fold to one keeps the DSN parameters of the form given first (none, if
// it had none), every time, not whichever a map walk meets first.
func TestDSNParamsFirstSpellingWins(t *testing.T) {
	d := &envelopeDraft{
		envelope: func(rcpts []string) []string {
			out := make([]string, len(rcpts))
			for i, r := range rcpts {
				out[i] = strings.ToLower(r)
			}
			return out
		},
		dsn: smtp.DSN{Rcpts: map[string]smtp.RcptDSN{
			"A@x.test": {Notify: "NEVER"}, "a@x.test": {Notify: "SUCCESS"},
			"c@x.test": {Notify: "FAILURE"},
		}},
	}
	for range 50 { // map order differs between walks
		p := d.params([]string{"A@x.test", "a@x.test", "B@x.test", "b@x.test", "C@x.test", "c@x.test"})
		if got := p.Rcpt["a@x.test"].Notify; got != "NEVER" {
			t.Fatalf("a@x.test NOTIFY %q, want NEVER (the first spelling's)", got)
		}
		if _, ok := p.Rcpt["c@x.test"]; ok || len(p.Rcpt) != 1 {
			t.Fatalf("params %v: C@x.test was given first without parameters", p.Rcpt)
		}
	}
}
