package dsn

import (
	"strings"
	"testing"
)

// TestSuccessNotice: Action delivered or relayed, status 2.0.0, no
// Diagnostic-Code, its own Subject; ENVID and ORCPT reported decoded.
func TestSuccessNotice(t *testing.T) {
	t.Parallel()
	r := testReport()
	r.Success, r.EnvID = true, "env+2B1"
	r.Failures = []Failure{
		{Rcpt: "bob@b.test", ORCPT: "rfc822;Bob+2Bx@b.test"},
		{Rcpt: "carol@c.test", RemoteMTA: "mx.c.test", Relayed: true},
	}
	msg, _, bodies := parts(t, render(t, r))
	if got := msg.Header.Get("Subject"); got != "Successful Mail Delivery Report" {
		t.Errorf("Subject %q", got)
	}
	if text := string(bodies[0]); !strings.Contains(text, "<bob@b.test>: delivered to the mailbox") ||
		!strings.Contains(text, "<carol@c.test>: relayed to mx.c.test") {
		t.Errorf("text:\n%s", text)
	}
	if !strings.Contains(string(bodies[1]), "\r\nOriginal-Envelope-Id: env+1\r\n") {
		t.Errorf("no Original-Envelope-Id:\n%s", bodies[1])
	}
	blocks := statusBlocks(t, bodies[1])
	if len(blocks) != 2 {
		t.Fatalf("%d recipient blocks", len(blocks))
	}
	b := blocks[0]
	if b.Get("Action") != "delivered" || b.Get("Status") != "2.0.0" || b.Get("Original-Recipient") != "rfc822; Bob+x@b.test" ||
		b.Get("Diagnostic-Code") != "" {
		t.Errorf("delivered block %v", b)
	}
	b = blocks[1]
	if b.Get("Action") != "relayed" || b.Get("Status") != "2.0.0" || b.Get("Remote-MTA") != "dns; mx.c.test" ||
		b.Get("Original-Recipient") != "" {
		t.Errorf("relayed block %v", b)
	}
}

// TestReturnFull: RET=FULL returns the whole original as message/rfc822;
// the default returns only its header section.
func TestReturnFull(t *testing.T) {
	t.Parallel()
	for _, full := range []bool{false, true} {
		r := testReport()
		r.Full = full
		_, ps, bodies := parts(t, render(t, r))
		ct := ps[2].Header.Get("Content-Type")
		hasBody := strings.Contains(string(bodies[2]), "secret body line")
		if full && (ct != "message/rfc822" || !hasBody) || !full && (ct != "text/rfc822-headers" || hasBody) {
			t.Errorf("full %v: part 3 %s, body returned %v:\n%s", full, ct, hasBody, bodies[2])
		}
		if !strings.Contains(string(bodies[2]), "Subject: lunch?") {
			t.Errorf("full %v: no header section", full)
		}
	}
}

func TestDecodeXtext(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"a+2Bb": "a+b", "+C3+A9": "é", "a+zz": "a+zz", "x+4": "x+4"} {
		if got := decodeXtext(in); got != want {
			t.Errorf("decodeXtext(%q) = %q, want %q", in, got, want)
		}
	}
}
