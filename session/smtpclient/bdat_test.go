package smtpclient

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"gomta/session/reply"
	"gomta/session/smtp"
)

// store is a session/smtp Backend that keeps every committed message whole.
type store struct {
	mu   sync.Mutex
	msgs []*stored
}

type stored struct {
	s     *store
	body  bytes.Buffer
	rcpts []string
}

func (*store) Mail(context.Context, *smtp.Peer, string) error         { return nil }
func (*store) Rcpt(context.Context, *smtp.Peer, string, string) error { return nil }
func (s *store) NewMessage(context.Context, *smtp.Peer) (smtp.MessageWriter, error) {
	return &stored{s: s}, nil
}
func (m *stored) ID() string                  { return "ID1" }
func (m *stored) Write(p []byte) (int, error) { return m.body.Write(p) }
func (m *stored) Abort()                      {}
func (m *stored) Commit(_ context.Context, _ string, rcpts []string) error {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	m.rcpts = rcpts
	m.s.msgs = append(m.s.msgs, m)
	return nil
}

func (s *store) bodies() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.msgs {
		b := m.body.String()
		// Without the Received field the server put first.
		i := strings.Index(b, "\r\n") + 2
		for strings.HasPrefix(b[i:], "\t") {
			i += strings.Index(b[i:], "\r\n") + 2
		}
		out = append(out, b[i:])
	}
	return out
}

// gomtaServer runs gomta's SMTP server (session/smtp, which offers CHUNKING
// and PIPELINING) on 127.0.0.1:0 until the test ends.
func gomtaServer(t *testing.T, maxSize int64) (*store, string) {
	t.Helper()
	st := &store{}
	srv := smtp.NewServer(smtp.Config{Hostname: "mx.test", MaxSize: maxSize, Logger: zap.NewNop()}, st)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	})
	return st, l.Addr().String()
}

// steps dials with a Trace that records the steps taken.
func dialSteps(t *testing.T, addr string, over int64) (*Client, *[]string) {
	t.Helper()
	steps := &[]string{}
	opt := testOpts()
	opt.ChunkingOver = over
	opt.Trace = func(step string, _ time.Duration) { *steps = append(*steps, step) }
	c, err := Dial(context.Background(), addr, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, steps
}

func has(steps []string, step string) bool {
	for _, s := range steps {
		if s == step {
			return true
		}
	}
	return false
}

// bigBody is a body of more than 2 MiB with lines that begin with a dot, a
// bare LF and a bare CR, and a last line without its line end; want is it
// as it must arrive: every line end CRLF, nothing dot-stuffed.
func bigBody() (body, want string) {
	var b strings.Builder
	b.WriteString("Subject: big\r\n\r\n")
	for i := 0; b.Len() < 2<<20+100; i++ {
		b.WriteString(".dot line ")
		b.WriteString(strings.Repeat("x", i%900))
		b.WriteString("\r\n")
	}
	b.WriteString("bare LF\nbare CR\r.\r\nno line end")
	body = b.String()
	want = strings.NewReplacer("LF\n", "LF\r\n", "CR\r.", "CR\r\n.").Replace(body) + "\r\n"
	return body, want
}

// TestSendBdat: a large body to gomta's server goes in BDAT chunks and
// arrives byte for byte as it would by DATA.
func TestSendBdat(t *testing.T) {
	t.Parallel()
	st, addr := gomtaServer(t, 0)
	c, steps := dialSteps(t, addr, 0)
	body, want := bigBody()
	errs, err := c.Send("a@example.org", []string{"b@example.org", "c@example.org"}, strings.NewReader(body))
	if err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatalf("Send: %v %v", err, errs)
	}
	if r := c.LastReply(); r.Code != reply.CodeOK || !strings.Contains(r.Text, "queued as ID1") {
		t.Errorf("last reply %v", r)
	}
	if !has(*steps, "bdat") || has(*steps, "data") {
		t.Errorf("steps %v, want bdat and no data", *steps)
	}
	got := st.bodies()
	if len(got) != 1 || got[0] != want {
		t.Fatalf("%d message(s); first differs from what was sent (len %d, want %d)", len(got), len(got[0]), len(want))
	}
	// The same body by DATA, on the same connection, arrives the same.
	c.opt.ChunkingOver = -1
	if _, err := c.Send("a@example.org", []string{"b@example.org"}, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if got := st.bodies(); len(got) != 2 || got[1] != want || !has(*steps, "data") {
		t.Errorf("by DATA: %d message(s), same %v, steps %v", len(got), len(got) == 2 && got[1] == want, *steps)
	}
}

// TestSendBdatOnlyWhenLarge: a small body, or one whose size is unknown, goes
// by DATA.
func TestSendBdatOnlyWhenLarge(t *testing.T) {
	t.Parallel()
	st, addr := gomtaServer(t, 0)
	for _, body := range []io.Reader{strings.NewReader("small\r\n"), io.MultiReader(strings.NewReader(strings.Repeat("y\r\n", 1<<20)))} {
		c, steps := dialSteps(t, addr, 1<<20)
		if _, err := c.Send("a@example.org", []string{"b@example.org"}, body); err != nil {
			t.Fatal(err)
		}
		if has(*steps, "bdat") || !has(*steps, "data") {
			t.Errorf("steps %v, want data", *steps)
		}
	}
	if n := len(st.bodies()); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
}

// TestSendBdatRefused: a chunk over the server's size limit is refused (552
// 5.3.4); the client stops, reads the replies to the chunks it had sent,
// resets, and the connection serves the next message.
func TestSendBdatRefused(t *testing.T) {
	t.Parallel()
	st, addr := gomtaServer(t, 3<<19)
	c, _ := dialSteps(t, addr, 0)
	body, _ := bigBody()
	_, err := c.Send("a@example.org", []string{"b@example.org"}, strings.NewReader(body))
	wantReply(t, err, reply.CodeTooBig, "5.3.4")
	if _, err := c.Send("a@example.org", []string{"b@example.org"}, strings.NewReader("after\r\n")); err != nil {
		t.Fatalf("next message: %v", err)
	}
	if got := st.bodies(); len(got) != 1 || got[0] != "after\r\n" {
		t.Errorf("messages %q", got)
	}
}
