package downgrade_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"gomta/delivery/dsn"
	"gomta/delivery/relay/downgrade"
)

// TestFullBounceOfEightBitMessageConverts: a RET=FULL bounce carries the
// original as message/rfc822; an 8-bit original must not make the bounce
// itself unsendable to a hop without 8BITMIME (it would be dropped, the
// null sender getting no bounce of a bounce).
func TestFullBounceOfEightBitMessageConverts(t *testing.T) {
	t.Parallel()
	orig := "Received: from x\r\nFrom: a@x.test\r\nSubject: hi\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\u00fc\u00dfe\r\n"
	var b bytes.Buffer
	err := dsn.Write(&b, dsn.Report{ReportingMTA: "mx.x.test", From: "a@x.test", MsgID: "m1", Arrival: time.Now(),
		Failures: []dsn.Failure{{Rcpt: "b@y.test", Code: 550, Enhanced: "5.1.1", Text: "no such user"}},
		Original: strings.NewReader(orig), Full: true})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	conv, err := downgrade.Convert(&out, &b)
	if err != nil || !conv {
		t.Fatalf("converted %v: %v", conv, err)
	}
	for i, c := range out.Bytes() {
		if c >= 0x80 {
			t.Fatalf("8-bit octet at %d:\n%s", i, out.String())
		}
	}
	if !strings.Contains(out.String(), "Gr=C3=BC=C3=9Fe") {
		t.Errorf("the original's text is not quoted-printable:\n%s", out.String())
	}
}
