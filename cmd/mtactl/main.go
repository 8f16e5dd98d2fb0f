// Command mtactl is the operator's tool for a running mtad: it talks to the
// daemon's control socket (package control's protocol) to show its status,
// list and show queued messages, retry, hold, release or drop them, and
// reload the configuration.
//
//	mtactl [-socket PATH | -data DIR] status [-json]
//	mtactl queue list [-json] [-host H]
//	mtactl queue show [-body] MSGID
//	mtactl queue retry MSGID... | -all
//	mtactl queue hold MSGID...
//	mtactl queue release MSGID...
//	mtactl queue drop [-bounce] MSGID...
//	mtactl reload
//	mtactl -version
//
// Exit status: 0 on success; 1 when the daemon refused (an unknown id among
// others, a bad new config); 2 when mtactl cannot reach the daemon (one line
// naming the socket and why) or was called wrongly.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gomta/mta/control"
)

// Exit statuses.
const (
	exitOK          = 0
	exitRefused     = 1
	exitUnreachable = 2
)

// dialTimeout bounds the connect; a daemon that accepted answers within
// the server's own request timeout.
const dialTimeout = 5 * time.Second

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `usage: mtactl [-socket PATH | -data DIR] COMMAND [flags] [args]
commands:
  status [-json]                    version, uptime, hosts, sessions, queue counts
  queue list [-json] [-host H]      the queued messages (-json: JSON Lines)
  queue show [-body] MSGID          one message: envelope, recipients, attempts, headers
  queue retry MSGID... | -all       make due now
  queue hold MSGID...               never attempted until released
  queue release MSGID...            due now again
  queue drop [-bounce] MSGID...     remove (-bounce: a DSN to the sender first)
  reload                            re-read the configuration
flags (before or after the command):
`

// opts are every flag of every command; each command reads its own.
type opts struct {
	socket, data, host  string
	json, all, bounce   bool
	body, version, help bool
}

func flags(o *opts, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("mtactl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.socket, "socket", "", "control socket `PATH` (default: control.sock in the data directory)")
	fs.StringVar(&o.data, "data", "./var", "mtad's data `DIR`, where the control socket is by default")
	fs.StringVar(&o.host, "host", "", "only the mail host `NAME` (default: every host of the daemon)")
	fs.BoolVar(&o.json, "json", false, "status, queue list: JSON (queue list: one message per line)")
	fs.BoolVar(&o.all, "all", false, "queue retry: every message")
	fs.BoolVar(&o.bounce, "bounce", false, "queue drop: send a DSN to the sender first")
	fs.BoolVar(&o.body, "body", false, "queue show: the body too")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	return fs
}

// parse reads flags anywhere among the words (Go's flag stops at the
// first word), and returns the words.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var words []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return words, nil
		}
		words = append(words, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	var o opts
	fs := flags(&o, stderr)
	words, err := parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUnreachable
	}
	if o.version {
		fmt.Fprintln(stdout, control.Version())
		return exitOK
	}
	req, err := request(words, &o)
	if err != nil {
		fmt.Fprintf(stderr, "mtactl: %v\n", err)
		fs.Usage()
		return exitUnreachable
	}
	path := o.socket
	if path == "" {
		path = filepath.Join(o.data, "control.sock")
	}
	resp, err := call(path, req)
	if err != nil {
		fmt.Fprintf(stderr, "mtactl: cannot reach mtad at %s: %v\n", path, err)
		return exitUnreachable
	}
	if !resp.OK {
		fmt.Fprintf(stderr, "mtactl: %s\n", resp.Error)
		for _, p := range resp.Problems {
			fmt.Fprintf(stderr, "  %s\n", p)
		}
		return exitRefused
	}
	return render(req, &o, resp, stdout, stderr)
}

// request turns the command words into a request.
func request(words []string, o *opts) (control.Request, error) {
	req := control.Request{Host: o.host}
	if len(words) == 0 {
		return req, errors.New("no command")
	}
	switch cmd := strings.Join(words[:min(len(words), 2)], " "); {
	case words[0] == "status" && len(words) == 1:
		req.Cmd = control.CmdStatus
	case words[0] == "reload" && len(words) == 1:
		req.Cmd = control.CmdReload
	case cmd == "queue list" && len(words) == 2:
		req.Cmd = control.CmdList
	case cmd == "queue show":
		if len(words) != 3 {
			return req, errors.New("queue show takes one MSGID")
		}
		req.Cmd, req.IDs, req.Body = control.CmdShow, words[2:], o.body
	case cmd == "queue retry" && o.all:
		if len(words) > 2 {
			return req, errors.New("queue retry takes MSGIDs or -all, not both")
		}
		req.Cmd, req.All = control.CmdRetry, true
	case cmd == "queue retry" || cmd == "queue hold" || cmd == "queue release" || cmd == "queue drop":
		if len(words) < 3 {
			return req, fmt.Errorf("%s takes at least one MSGID", cmd)
		}
		req.Cmd, req.IDs, req.Bounce = "queue."+words[1], words[2:], o.bounce
	default:
		return req, fmt.Errorf("unknown command %q", strings.Join(words, " "))
	}
	return req, nil
}

// call sends one request to the daemon at path.
func call(path string, req control.Request) (*control.Response, error) {
	c, err := control.Dial(path, dialTimeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Call(req)
}
