package smtp

import (
	"fmt"
	"strings"
	"testing"
)

// TestReconfigure: a session keeps the limits it started with; a session
// that starts after Reconfigure has the new ones, here NoLimit: SIZE 0 in
// EHLO (RFC 1870 §4: no fixed maximum), more recipients than the default
// 100, a message over the old size.
func TestReconfigure(t *testing.T) {
	t.Parallel()
	be := &fakeBackend{}
	srv, addr := startServer(t, Config{MaxSize: 100, MaxRcpts: 1}, be)
	before := dialReady(t, addr)

	srv.Reconfigure(Config{Hostname: testHost, MaxSize: NoLimit, MaxRcpts: NoLimit, MaxErrors: NoLimit})
	after := dial(t, addr)
	after.expect("220 " + testHost + " ESMTP gomta")
	after.send("EHLO client.example")
	after.expectMulti("250-"+testHost+" greets client.example", "250-PIPELINING", "250-8BITMIME", "250-SIZE 0",
		"250-ENHANCEDSTATUSCODES", "250-CHUNKING", "250-DSN", "250-SMTPUTF8", "250 HELP")

	before.send("MAIL FROM:<a@b.example>", "RCPT TO:<x1@c.example>", "RCPT TO:<x2@c.example>")
	before.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "452 4.5.3 too many recipients")

	after.send("MAIL FROM:<a@b.example> SIZE=1000000")
	after.expect("250 2.1.0 sender OK")
	for i := range 150 {
		after.send(fmt.Sprintf("RCPT TO:<x%d@c.example>", i))
		after.expect("250 2.1.5 recipient OK")
	}
	for range 20 { // more than the default error budget of 10
		after.send("BOGUS")
		after.expect("500 5.5.2 command not recognized")
	}
	after.send("DATA")
	after.expect("354 end data with <CR><LF>.<CR><LF>")
	after.send("Subject: big", "", strings.Repeat("x", 998), strings.Repeat("y", 998), ".")
	after.expect("250 2.0.0 OK queued as MSG0001")
}
