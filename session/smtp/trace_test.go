package smtp

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestTraceScan(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", maxTraceField)
	for _, c := range []struct{ name, msg, mid, up string }{
		{"gomta hop", "Received: from c (d)\r\n\tby exmail.qq.com (gomta) with ESMTPS id 06h1gqm8ifuj62nc0rtg\r\n\tfor <x@y>;\r\n\tdate\r\n" +
			"Message-ID: <abc@host.example>\r\nSubject: s\r\n\r\nbody", "<abc@host.example>", "06h1gqm8ifuj62nc0rtg"},
		{"no upstream", "Subject: no upstream\r\nMessage-Id:\r\n <folded@x>\r\n\r\nReceived: in the body id NOTME\r\n", "<folded@x>", ""},
		{"no id clause", "Received: from c by d with SMTP; date id X\r\n\r\n", "", ""},
		{"postfix", "Received: by postfix.example (Postfix) id <4F1A2>;\r\n x\r\n\r\n", "", "4F1A2"},
		{"first Received only", "Received: by b id FIRST;\r\nReceived: by a id SECOND;\r\n\r\n", "", "FIRST"},
		{"first Message-ID only", "message-id: <one@x>\r\nMessage-ID: <two@x>\r\n\r\n", "<one@x>", ""},
		{"body starts without a blank line", "Subject: x\r\nnot a header line\r\nMessage-ID: <late@x>\r\n\r\n", "", ""},
		{"no header", "\r\nMessage-ID: <body@x>\r\n", "", ""},
		{"over-long Message-ID line", "Message-ID: <" + long + ">\r\nReceived: by a id R1;\r\n\r\n", "", "R1"},
		{"over-long fold", "Message-ID: <a@x>\r\n " + long + "\r\n\r\n", "<a@x>", ""},
		{"LF only", "Message-ID: <lf@x>\nReceived: by a id LF1;\n\n", "<lf@x>", "LF1"},
	} {
		// Whole, and in fragments of every small size: the DATA reader
		// hands over pieces of lines.
		for _, size := range []int{len(c.msg), 1, 2, 3, 7} {
			var h traceScan
			for p := c.msg; len(p) > 0; {
				n := min(size, len(p))
				h.Scan([]byte(p[:n]))
				p = p[n:]
			}
			if got := h.MessageID(); got != c.mid {
				t.Errorf("%s (pieces of %d): MessageID %q, want %q", c.name, size, got, c.mid)
			}
			if got := h.UpstreamID(); got != c.up {
				t.Errorf("%s (pieces of %d): UpstreamID %q, want %q", c.name, size, got, c.up)
			}
		}
	}
}

// queuedBackend queues its recipients lower-cased and once each, as the
// mail host's envelope does, and says so (QueuedRcpts).
type queuedBackend struct{ fakeBackend }

type queuedMessage struct {
	*fakeMessage
	queued []string
}

func (b *queuedBackend) NewMessage(ctx context.Context, p *Peer) (MessageWriter, error) {
	mw, err := b.fakeBackend.NewMessage(ctx, p)
	if err != nil {
		return nil, err
	}
	return &queuedMessage{fakeMessage: mw.(*fakeMessage)}, nil
}

func (m *queuedMessage) Commit(ctx context.Context, from string, rcpts []string) error {
	seen := map[string]bool{}
	for _, r := range rcpts {
		if l := strings.ToLower(r); !seen[l] {
			seen[l] = true
			m.queued = append(m.queued, l)
		}
	}
	return m.fakeMessage.Commit(ctx, from, m.queued)
}

func (m *queuedMessage) QueuedRcpts() []string { return m.queued }

// TestAcceptanceLine: the acceptance line names the message by msg_id, its
// author's Message-ID and the previous hop's id, with the client, sender,
// recipients as queued, size and TLS.
func TestAcceptanceLine(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.InfoLevel)
	_, addr := startServer(t, Config{Logger: zap.New(core)}, &queuedBackend{})
	cl := dialReady(t, addr)
	cl.send("MAIL FROM:<a@src.example>", "RCPT TO:<Bob@dst.example>", "RCPT TO:<bob@dst.example>", "RCPT TO:<carol@dst.example>", "DATA")
	cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "250 2.1.5 recipient OK", "250 2.1.5 recipient OK",
		"354 end data with <CR><LF>.<CR><LF>")
	cl.write("Received: from x by up.example (gomta) with ESMTP id 06h0upstream00000000;\r\n\tdate\r\n" +
		"Message-ID: <m1@src.example>\r\nSubject: hi\r\n\r\nbody\r\n.\r\n")
	cl.expect("250 2.0.0 OK queued as MSG0001")
	lines := logs.FilterMessage("message accepted").All()
	if len(lines) != 1 {
		t.Fatalf("%d acceptance lines", len(lines))
	}
	f := lines[0].ContextMap()
	rcpts, _ := f["rcpt"].([]any)
	if f["msg_id"] != "MSG0001" || f["mail_from"] != "a@src.example" || f["message_id"] != "<m1@src.example>" ||
		f["upstream_msg_id"] != "06h0upstream00000000" || f["tls"] != false || f["bytes"] == nil ||
		f["remote"] == nil || f["session_id"] == nil || len(rcpts) != 2 || rcpts[0] != "bob@dst.example" || rcpts[1] != "carol@dst.example" {
		t.Errorf("fields %v", f)
	}
	if _, ok := f["auth_user"]; ok {
		t.Errorf("auth_user without AUTH: %v", f)
	}
	logs.TakeAll()

	// A message without Message-ID or Received field names neither.
	cl.send("MAIL FROM:<a@src.example>", "RCPT TO:<bob@dst.example>", "DATA")
	cl.expectMulti("250 2.1.0 sender OK", "250 2.1.5 recipient OK", "354 end data with <CR><LF>.<CR><LF>")
	cl.write("Subject: bare\r\n\r\nbody\r\n.\r\n")
	cl.expect("250 2.0.0 OK queued as MSG0002")
	f = logs.FilterMessage("message accepted").All()[0].ContextMap()
	for _, k := range []string{"message_id", "upstream_msg_id", "auth_user"} {
		if _, ok := f[k]; ok {
			t.Errorf("%s in %v", k, f)
		}
	}
}
