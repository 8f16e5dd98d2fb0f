package smtp

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// tracingBackend's messages write trace fields of their own when the
// session offers the envelope (TraceWriter).
type tracingBackend struct{ fakeBackend }

type tracingMessage struct{ *fakeMessage }

func (b *tracingBackend) NewMessage(ctx context.Context, p *Peer) (MessageWriter, error) {
	mw, err := b.fakeBackend.NewMessage(ctx, p)
	if err != nil {
		return nil, err
	}
	return tracingMessage{mw.(*fakeMessage)}, nil
}

func (m tracingMessage) WriteTrace(from string, rcpts []string) (int, error) {
	return fmt.Fprintf(m, "X-Trace: %s -> %s\r\n", from, strings.Join(rcpts, ","))
}

// TestTraceWriterFirst: with DATA and with BDAT, a TraceWriter's fields
// come first, before the Received field, once, with the envelope.
func TestTraceWriterFirst(t *testing.T) {
	t.Parallel()
	be := &tracingBackend{}
	_, addr := startServer(t, Config{}, be)
	cl := dialReady(t, addr)
	cl.send("MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA")
	cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "354 end data with <CR><LF>.<CR><LF>")
	cl.send("Subject: data", ".")
	cl.expect("250 2.0.0 OK queued as MSG0001")
	cl.write("MAIL FROM:<a@example.org>\r\nRCPT TO:<c@example.org>\r\n" + bdat("Subject: bdat\r\n", false) + bdat("x\r\n", true))
	cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "250 2.0.0 15 octets received",
		"250 2.0.0 OK queued as MSG0002")
	for i, want := range []string{"X-Trace: a@example.org -> b@example.org\r\nReceived: ", "X-Trace: a@example.org -> c@example.org\r\nReceived: "} {
		got := be.message(t, i).body.String()
		if !strings.HasPrefix(got, want) || strings.Count(got, "X-Trace:") != 1 {
			t.Errorf("message %d: %q, want it to start with %q", i, got, want)
		}
	}
}
