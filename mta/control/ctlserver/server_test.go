package ctlserver

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gomta/mta/control"
)

func serve(t *testing.T, opt Options) *Server {
	t.Helper()
	s, err := Listen(opt)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

func call(t *testing.T, path string, req control.Request) *control.Response {
	t.Helper()
	c, err := control.Dial(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := c.Call(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestSocketModeAndOwnership: the socket is 0600; a second server on the
// same path while the first answers is refused; a stale socket (nobody
// answers) is replaced; Close removes the file.
func TestSocketModeAndOwnership(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "control.sock")
	s := serve(t, Options{Path: path})
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 || st.Mode().Type() != os.ModeSocket {
		t.Fatalf("socket: %v %v", st.Mode(), err)
	}
	if _, err := Listen(Options{Path: path}); err == nil || !strings.Contains(err.Error(), "another mtad is running") {
		t.Fatalf("second server on a live socket: %v", err)
	}
	s.Close()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file after Close: %v", err)
	}

	// A stale socket: bound, never listened on, left behind.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	serve(t, Options{Path: path})
	if resp := call(t, path, control.Request{Cmd: control.CmdStatus}); !resp.OK || resp.Status == nil {
		t.Fatalf("status on the replaced socket: %+v", resp)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "control.sock")
	serve(t, Options{Path: path, Reload: ReloadFunc(func(context.Context) ([]string, error) {
		return nil, errors.Join(errors.New("[gomta] max_errors must be positive"), errors.New("[MX] bad"))
	})})
	for _, tc := range []struct {
		req  control.Request
		want string
	}{
		{control.Request{Cmd: "queue.frob"}, `unknown command "queue.frob"`},
		{control.Request{Cmd: control.CmdList, Host: "nowhere"}, `no mail host "nowhere" here`},
		{control.Request{Cmd: control.CmdShow}, "queue.show takes one message id"},
		{control.Request{Cmd: control.CmdHold}, "queue.hold takes message ids"},
		{control.Request{Cmd: control.CmdReload}, "new configuration refused, the old one keeps running"},
	} {
		resp := call(t, path, tc.req)
		if resp.OK || !strings.Contains(resp.Error, tc.want) {
			t.Errorf("%+v: %+v, want refusal %q", tc.req, resp, tc.want)
		}
		if tc.req.Cmd == control.CmdReload && len(resp.Problems) != 2 {
			t.Errorf("reload problems: %q", resp.Problems)
		}
	}
	// Another protocol version is refused with the version spoken here.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(`{"v":2,"cmd":"status"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, _ := c.Read(buf)
	if got := string(buf[:n]); !strings.Contains(got, `"ok":false`) || !strings.Contains(got, "speaks version 1") {
		t.Fatalf("version 2 request: %q", got)
	}
}
