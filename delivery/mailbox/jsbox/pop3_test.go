package jsbox

import (
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"gomta/delivery/mailbox"
	"gomta/mta/cluster/natstest"
	"gomta/session/pop3"
)

// popBackend serves a Store over POP3 as package mta's pop3Backend does:
// one password for every account.
type popBackend struct{ s *Store }

func (b popBackend) Login(_ context.Context, user, pass string) error {
	if pass != "secret" {
		return pop3.ErrAuth
	}
	return nil
}

func (b popBackend) Open(ctx context.Context, user string) (pop3.Maildrop, error) {
	box, err := b.s.Open(ctx, user)
	switch {
	case errors.Is(err, mailbox.ErrInUse):
		return nil, pop3.ErrInUse
	case errors.Is(err, mailbox.ErrNoUser):
		return nil, pop3.ErrAuth
	case err != nil:
		return nil, err
	}
	return popDrop{box}, nil
}

type popDrop struct{ b mailbox.Box }

func (d popDrop) List() []pop3.MsgInfo {
	var out []pop3.MsgInfo
	for _, x := range d.b.List() {
		out = append(out, pop3.MsgInfo{Size: x.Size, UID: x.UID, MsgID: x.MsgID})
	}
	return out
}
func (d popDrop) Open(ctx context.Context, i int) (io.ReadCloser, error) { return d.b.Open(ctx, i) }
func (d popDrop) Commit(ctx context.Context, del []int) error            { return d.b.Commit(ctx, del) }
func (d popDrop) Close()                                                 { d.b.Close() }

// startPOP3 serves n's Store over POP3 on 127.0.0.1 and returns the port.
func startPOP3(t *testing.T, n *node) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := pop3.NewServer(pop3.Config{Hostname: n.s.node, Logger: zaptest.NewLogger(t)}, popBackend{n.s})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioWait)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// pyCluster logs in on node 1, tries the same mailbox on node 2 while the
// first session lives, deletes message 1 and quits; then reads the rest on
// node 2.
const pyCluster = `
import poplib, sys
a = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=10)
a.user('alice@mail.test'); print(a.pass_('secret').decode())
print(a.list()[1])
print(repr(b'\r\n'.join(a.retr(1)[1]) + b'\r\n'))
b = poplib.POP3('127.0.0.1', int(sys.argv[2]), timeout=10)
b.user('alice@mail.test')
try:
    b.pass_('secret')
except poplib.error_proto as e:
    print(e.args[0].decode())
print(a.dele(1).decode())
print(a.quit().decode())
b = poplib.POP3('127.0.0.1', int(sys.argv[2]), timeout=10)
b.user('alice@mail.test'); print(b.pass_('secret').decode())
print(b.uidl()[1])
print(repr(b'\r\n'.join(b.retr(1)[1]) + b'\r\n'))
print(b.quit().decode())
`

func TestPythonPoplibAcrossTwoNodes(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	srv := natstest.Start(t, 0)
	n1 := startNode(t, srv, "n1", 0, "alice@mail.test")
	n2 := startNode(t, srv, "n2", 0, "alice@mail.test")
	deliver(t, n1.s, "alice@mail.test", "id-1", body1)
	deliver(t, n2.s, "alice@mail.test", "id-2", body2)
	p1, p2 := startPOP3(t, n1), startPOP3(t, n2)
	out, err := exec.CommandContext(ctxT(t), py, "-c", pyCluster, p1, p2).CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	m1, m2 := stored("alice@mail.test", body1), stored("alice@mail.test", body2)
	n1s, n2s, total := strconv.Itoa(len(m1)), strconv.Itoa(len(m2)), strconv.Itoa(len(m1)+len(m2))
	pyRepr := func(s string) string {
		return "b'" + strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s) + "'"
	}
	want := strings.Join([]string{
		"+OK maildrop has 2 messages (" + total + " octets)",
		"[b'1 " + n1s + "', b'2 " + n2s + "']",
		pyRepr(m1),
		"-ERR [IN-USE] mailbox already locked",
		"+OK message 1 deleted",
		"+OK n1 signing off (1 messages left)",
		"+OK maildrop has 1 messages (" + n2s + " octets)",
		"[b'1 2']",
		pyRepr(m2),
		"+OK n2 signing off (1 messages left)",
	}, "\n") + "\n"
	if string(out) != want {
		t.Fatalf("poplib transcript:\n%s\nwant:\n%s", out, want)
	}
}
