// Package ctlserver owns mtad's control socket server: it listens on a
// Unix-domain socket (mode 0600), reads requests of package control's
// protocol one line at a time, and answers them from the hosts' queues
// (queue.Queue's control requests, answered by each queue's Run actor: the
// server keeps no queue state of its own and takes no lock of the queue's),
// the hosts' session counts, and the reload function mtad gives it.
//
// Invariants: one server per process and socket path (a socket a live
// daemon answers on is never taken over; a stale one is replaced); the
// socket file is removed when the server closes; a request never outlives
// Close (its context is cancelled), nor waits longer than requestTimeout.
package ctlserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"gomta/mta/control"
	"gomta/queue"
)

// maxRequest bounds a request line: ids are 20 octets, and a few thousand
// of them fit.
const maxRequest = 1 << 20

// requestTimeout bounds the wait for a queue's answer (a queue that is
// stopping answers no more).
const requestTimeout = 30 * time.Second

// Host is what the server needs of one mail host.
type Host struct {
	Name      string
	Queue     queue.Spool
	Listeners map[string]string       // listener kind → address
	Sessions  func() (smtp, pop3 int) // open sessions now
}

// Reloader re-reads the configuration: it returns what changed, or every
// problem of the new configuration (and then the old one keeps serving).
type Reloader interface {
	Reload(ctx context.Context) (changes []string, problems error)
}

// ErrNoReload is what a Reloader returns when the daemon cannot reload at
// all (as opposed to a new configuration with problems).
var ErrNoReload = errors.New("reload not available")

// ReloadFunc adapts a function to Reloader.
type ReloadFunc func(ctx context.Context) ([]string, error)

// Reload calls f.
func (f ReloadFunc) Reload(ctx context.Context) ([]string, error) { return f(ctx) }

// Options configure a Server.
type Options struct {
	Path       string // socket path
	Hosts      []Host
	Reload     Reloader
	ConfigFile string           // for status
	Loaded     func() time.Time // when the config in force was loaded
	Logger     *zap.Logger
}

// Server is a listening control socket.
type Server struct {
	opt     Options
	ln      *net.UnixListener
	started time.Time
	log     *zap.Logger
	ctx     context.Context
	cancel  context.CancelFunc

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// Listen creates the socket at opt.Path with mode 0600. A file already
// there is replaced only when it is a socket nobody answers on (the trace of
// a daemon that did not stop cleanly).
func Listen(opt Options) (*Server, error) {
	if err := clearStale(opt.Path); err != nil {
		return nil, err
	}
	// The socket is created 0600 (no window in which another user could
	// connect): every command here is an operator's.
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: opt.Path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", opt.Path, err)
	}
	if err := os.Chmod(opt.Path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", opt.Path, err)
	}
	if opt.Logger == nil {
		opt.Logger = zap.NewNop()
	}
	if opt.Loaded == nil {
		at := time.Now()
		opt.Loaded = func() time.Time { return at }
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{opt: opt, ln: ln, started: time.Now(), log: opt.Logger, ctx: ctx, cancel: cancel,
		conns: map[net.Conn]struct{}{}}, nil
}

// clearStale removes a stale socket at path, or says why it cannot.
func clearStale(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if st.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control socket %s: a file that is not a socket is in the way", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("control socket %s: another mtad is running on it", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		// A live daemon that is slow to accept is not stale.
		return fmt.Errorf("control socket %s: cannot tell whether another mtad is running on it: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("control socket %s: remove stale socket: %w", path, err)
	}
	return nil
}

// Serve accepts connections until Close; it then returns nil.
func (s *Server) Serve() error {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("control socket %s: %w", s.opt.Path, err)
		}
		if !s.track(c) {
			c.Close()
			return nil
		}
		s.wg.Go(func() {
			defer s.untrack(c)
			s.serveConn(c)
		})
	}
}

// Close stops accepting, cancels the requests in progress, closes the
// connections, waits for them, and removes the socket file.
func (s *Server) Close() {
	s.cancel()
	s.ln.Close() // unlinks the socket file
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// serveConn answers the requests of one connection, one line each.
func (s *Server) serveConn(c net.Conn) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in control request", zap.Any("error", p), zap.Stack("stack"))
		}
	}()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 0, 4096), maxRequest)
	enc := json.NewEncoder(c)
	for sc.Scan() {
		var req control.Request
		var resp *control.Response
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp = refuse("bad request: %v", err)
		} else {
			resp = s.handle(req)
		}
		resp.V = control.ProtocolVersion
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
}

// handle answers one request.
func (s *Server) handle(req control.Request) *control.Response {
	if req.V != control.ProtocolVersion {
		return refuse("control protocol version %d is not spoken here (this mtad speaks version %d)", req.V, control.ProtocolVersion)
	}
	hosts, err := s.hosts(req.Host)
	if err != nil {
		return refuse("%v", err)
	}
	ctx, cancel := context.WithTimeout(s.ctx, requestTimeout)
	defer cancel()
	switch req.Cmd {
	case control.CmdStatus:
		return s.status(ctx, hosts)
	case control.CmdList:
		return list(ctx, hosts)
	case control.CmdShow:
		return show(ctx, hosts, req)
	case control.CmdRetry, control.CmdHold, control.CmdRelease, control.CmdDrop:
		return act(ctx, hosts, req)
	case control.CmdReload:
		return s.reload(ctx)
	}
	return refuse("unknown command %q", req.Cmd)
}

// hosts are the hosts a request covers: every host, or the one named.
func (s *Server) hosts(name string) ([]Host, error) {
	if name == "" {
		return s.opt.Hosts, nil
	}
	var names []string
	for _, h := range s.opt.Hosts {
		if h.Name == name {
			return []Host{h}, nil
		}
		names = append(names, h.Name)
	}
	return nil, fmt.Errorf("no mail host %q here (hosts: %v)", name, names)
}

func refuse(format string, a ...any) *control.Response {
	return &control.Response{Error: fmt.Sprintf(format, a...)}
}

// reload runs the reload function and reports its changes or problems.
func (s *Server) reload(ctx context.Context) *control.Response {
	if s.opt.Reload == nil {
		return refuse("%v", ErrNoReload)
	}
	changes, err := s.opt.Reload.Reload(ctx)
	if errors.Is(err, ErrNoReload) {
		return refuse("%v", err)
	}
	if err != nil {
		resp := refuse("new configuration refused, the old one keeps running")
		resp.Problems = problemLines(err)
		return resp
	}
	return &control.Response{OK: true, Changes: changes}
}

// problemLines splits an error (an errors.Join of problems) into lines.
func problemLines(err error) []string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, problemLines(e)...)
		}
		return out
	}
	return []string{err.Error()}
}
