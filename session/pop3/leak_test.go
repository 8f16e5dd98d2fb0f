package pop3_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"gomta/session/limit"
	"gomta/session/pop3"
)

// streamBackend accepts any user with password "pw" and gives each a maildrop
// of one large generated message, counting what is opened and closed.
type streamBackend struct {
	drops, dropsClosed     atomic.Int64
	readers, readersClosed atomic.Int64
}

// streamLine is the generated message's line; streamSize its total size.
const (
	streamLine = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnop\r\n"
	streamSize = 64 << 20
)

func (b *streamBackend) Login(ctx context.Context, user, pass string) error {
	if pass != "pw" {
		return pop3.ErrAuth
	}
	return nil
}

func (b *streamBackend) Open(ctx context.Context, user string) (pop3.Maildrop, error) {
	b.drops.Add(1)
	return &streamDrop{b: b}, nil
}

type streamDrop struct {
	b    *streamBackend
	once sync.Once
}

func (d *streamDrop) List() []pop3.MsgInfo { return []pop3.MsgInfo{{Size: streamSize, UID: "big"}} }

func (d *streamDrop) Open(ctx context.Context, i int) (io.ReadCloser, error) {
	d.b.readers.Add(1)
	return &streamReader{b: d.b, r: io.LimitReader(repeatReader{}, streamSize)}, nil
}

func (d *streamDrop) Commit(ctx context.Context, deleted []int) error { d.Close(); return nil }
func (d *streamDrop) Close()                                          { d.once.Do(func() { d.b.dropsClosed.Add(1) }) }

type streamReader struct {
	b    *streamBackend
	r    io.Reader
	once sync.Once
}

func (r *streamReader) Read(p []byte) (int, error) { return r.r.Read(p) }
func (r *streamReader) Close() error {
	r.once.Do(func() { r.b.readersClosed.Add(1) })
	return nil
}

// repeatReader yields streamLine forever.
type repeatReader struct{}

func (repeatReader) Read(p []byte) (int, error) {
	for i := 0; i < len(p); i += len(streamLine) {
		copy(p[i:], streamLine)
	}
	return len(p) - len(p)%len(streamLine), nil
}

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open files: %v", err)
	}
	return len(ents)
}

// dropKinds are the ways a client walks away. Each gets a fresh connection,
// reads what it must to reach the point, and closes without QUIT.
var dropKinds = []struct {
	name string
	run  func(c net.Conn, r *bufio.Reader, i int) error
}{
	{"mid-command", func(c net.Conn, r *bufio.Reader, i int) error {
		_, err := io.WriteString(c, "USER ali") // no CRLF
		return err
	}},
	{"mid-AUTH", func(c net.Conn, r *bufio.Reader, i int) error {
		if _, err := io.WriteString(c, "AUTH PLAIN\r\n"); err != nil {
			return err
		}
		return expectLine(r, "+ ")
	}},
	{"mid-RETR", func(c net.Conn, r *bufio.Reader, i int) error {
		if _, err := fmt.Fprintf(c, "USER u%d\r\nPASS pw\r\nRETR 1\r\n", i); err != nil {
			return err
		}
		for _, want := range []string{"+OK send PASS", "+OK maildrop has 1 messages (67108864 octets)", "+OK 67108864 octets"} {
			if err := expectLine(r, want); err != nil {
				return err
			}
		}
		_, err := io.ReadFull(r, make([]byte, 4096)) // the stream is flowing
		return err
	}},
	{"mid-STLS", func(c net.Conn, r *bufio.Reader, i int) error {
		if _, err := io.WriteString(c, "STLS\r\n"); err != nil {
			return err
		}
		return expectLine(r, "+OK Begin TLS negotiation")
	}},
}

func expectLine(r *bufio.Reader, want string) error {
	got, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if got != want+"\r\n" {
		return fmt.Errorf("got %q, want %q", got, want)
	}
	return nil
}

// TestNoLeaksOnDroppedConnections drops thousands of connections mid-command,
// mid-AUTH, mid-RETR and mid-STLS and checks that goroutines, open files,
// connection-limit slots, maildrops and message readers all come back. Not
// parallel: it counts the process's goroutines and files.
func TestNoLeaksOnDroppedConnections(t *testing.T) {
	n := 2000 // per kind
	if testing.Short() {
		n = 100
	}
	if os.Getenv("GOMTA_STRESS") != "" { // make stress: 10,000 in all
		n = 2500
	}
	baseFDs := countFDs(t)
	beforeServer := goleak.IgnoreCurrent()

	be := &streamBackend{}
	// The per-IP limit is far above the concurrency below: a leaked slot
	// would turn into refused connections.
	const workers = 32
	lim := limit.New(limit.Config{MaxConnsPerIP: 4 * workers})
	// Small socket buffers on both sides keep the server from pushing
	// megabytes of the RETR stream into the kernel before the client walks
	// away: the stream is really blocked mid-message.
	lc := net.ListenConfig{Control: smallBuffers}
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{
		srv:    pop3.NewServer(pop3.Config{Hostname: host, Logger: zap.NewNop(), TLSConfig: newCert(t).server, Limiter: lim}, be),
		addr:   l.Addr().String(),
		served: make(chan error, 1),
	}
	go func() { ts.served <- ts.srv.Serve(l) }()
	t.Cleanup(func() { shutdownNow(t, ts) })
	withServer := goleak.IgnoreCurrent()

	for _, kind := range dropKinds {
		began := time.Now()
		jobs := make(chan int)
		errs := make(chan error, workers)
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range jobs {
					if err := dropOne(ts.addr, i, kind.run); err != nil {
						errs <- fmt.Errorf("%s #%d: %w", kind.name, i, err)
						for range jobs { // drain so the feeder ends
						}
						return
					}
				}
			}()
		}
		for i := range n {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		t.Logf("%d connections dropped %s in %v", n, kind.name, time.Since(began).Round(time.Millisecond))
	}

	// Every session ends on its own once its client is gone.
	if err := findLeaks(withServer); err != nil {
		t.Fatalf("goroutines left after the clients went away:\n%v", err)
	}
	if d, c := be.drops.Load(), be.dropsClosed.Load(); d != int64(n) || c != d {
		t.Errorf("maildrops: %d opened, %d closed; want %d each", d, c, n)
	}
	if o, c := be.readers.Load(), be.readersClosed.Load(); o != int64(n) || c != o {
		t.Errorf("message readers: %d opened, %d closed; want %d each", o, c, n)
	}
	shutdownNow(t, ts)
	if err := findLeaks(beforeServer); err != nil {
		t.Fatalf("goroutines left after Shutdown:\n%v", err)
	}
	// Open files come back to the baseline (a little slack for the runtime).
	var fds int
	for range 100 {
		if fds = countFDs(t); fds <= baseFDs+2 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%d open files after Shutdown, %d before the server", fds, baseFDs)
}

func dropOne(addr string, i int, run func(net.Conn, *bufio.Reader, int) error) error {
	d := net.Dialer{Control: smallBuffers}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioWait))
	r := bufio.NewReader(c)
	greeting, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(greeting, "+OK ") {
		return fmt.Errorf("greeting %q", greeting)
	}
	return run(c, r, i)
}

// findLeaks is goleak.Find retried for longer than its own ~1.5 s, for a
// loaded machine; bounded.
func findLeaks(opt goleak.Option) error {
	var err error
	for range 10 {
		if err = goleak.Find(opt); err == nil {
			return nil
		}
	}
	return err
}

// smallBuffers sets 8 KiB socket buffers (inherited by accepted connections
// when set on a listener).
func smallBuffers(network, address string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = errors.Join(
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8192),
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 8192))
	})
	return errors.Join(err, serr)
}
