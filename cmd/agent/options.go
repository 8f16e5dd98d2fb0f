package main

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"gomta/mta/config"
)

const usageText = `usage:
  agent -e EMAIL -p PASSWORD [options]                      interactive
  agent -e EMAIL [-p PASSWORD] [options] send -to ADDR [-to ADDR]… -subject S
        (-body TEXT | -body-file FILE|-) [-attach FILE]…
  agent -e EMAIL -p PASSWORD [options] pop stat|list|uidl|retr N [-raw]|dele N [-json]

options:
  -config FILE   course-schema config (default: the built-in one, as mtad's)
  -fdns FILE     fake DNS file ([MX], [P]) added to the config's tables
  -s HOST        SMTP host name (resolved through [P]), or host:port
  -P HOST        POP3 host name (resolved through [P]), or host:port
  -multiline     interactive Content: takes lines until a line with a single "."
  -timeout D     per-command network timeout (default 1m)

security:
  -tls=false, -no-tls
                 do not use STARTTLS/STLS (default: use it whenever offered);
                 a password then goes in the clear, even to a remote server
  -ca FILE       also trust the PEM certificate(s) in FILE, e.g. the cert.pem
                 that "mtad -gen-cert DIR" writes
  -insecure      do not verify the server's certificate (a warning says so)
  -source IP     connect from this local address (e.g. 127.0.0.2, to act as
                 a client outside mtad's trusted networks on one machine)

  The server's certificate is verified against the system roots and -ca.
  Exception: a server on a loopback address whose certificate cannot be
  verified (the demo's is self-signed, made at start), when neither -ca nor
  -insecure is given, is still used under TLS, unverified; interactive
  output notes it. The password is sent with AUTH (SMTP: when offered;
  POP3: AUTH PLAIN when CAPA lists SASL PLAIN, else USER/PASS), after
  STARTTLS/STLS; the agent refuses to send it in the clear to a remote
  server that offers no TLS unless -tls=false is given.

exit status: 0 success, 1 a server refused something, 2 usage or connection error
`

// env is one run of the agent: its streams and process hooks. Tests build one
// with newEnv and call run; main adds the terminal and signal hooks.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	terminal       bool                              // stdin and stdout are a terminal: line editing
	notify         func() (<-chan os.Signal, func()) // starts SIGINT delivery (interactive mode only)
	interrupt      <-chan os.Signal                  // set by tests to simulate Ctrl-C
	now            func() time.Time                  // clock for Date headers
	warnedInsecure bool                              // the -insecure warning was printed
}

func newEnv(stdin io.Reader, stdout, stderr io.Writer) *env {
	return &env{stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now}
}

// run is the whole agent for in-process use; it never calls os.Exit.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return newEnv(stdin, stdout, stderr).run(args)
}

// options are the global flags, resolved.
type options struct {
	email, password string
	domain          string
	multiline       bool
	timeout         time.Duration
	cfg             *config.Config
	smtpHost        string // host name as given or from [agent]
	popHost         string
	tls             bool           // STARTTLS/STLS when offered (-tls, -no-tls)
	insecure        bool           // -insecure: no certificate check
	caFile          string         // -ca
	roots           *x509.CertPool // system roots plus -ca; nil = system roots
	source          net.IP         // -source: local address to connect from
}

// usageError marks a command-line problem (exit 2, with a hint).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

func (e *env) run(args []string) int {
	o, rest, err := parseGlobal(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(e.stdout, usageText)
		return exitOK
	}
	if err != nil {
		return e.fail(err)
	}
	if len(rest) == 0 {
		if o.password == "" {
			return e.fail(usagef("-p PASSWORD is required"))
		}
		return e.interactive(o)
	}
	switch rest[0] {
	case "send":
		return e.scriptSend(o, rest[1:])
	case "pop":
		if o.password == "" {
			return e.fail(usagef("-p PASSWORD is required"))
		}
		return e.scriptPop(o, rest[1:])
	default:
		return e.fail(usagef("unknown command %q: want send or pop (or nothing, for the interactive agent)", rest[0]))
	}
}

// fail prints err as one line on stderr and returns its exit status.
func (e *env) fail(err error) int {
	fmt.Fprintln(e.stderr, "agent: "+sentence(err))
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitStatus(err)
}

// parseGlobal parses the flags before the subcommand, loads the config and
// picks the host names.
func parseGlobal(args []string) (*options, []string, error) {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	o := &options{}
	var configPath, fdnsPath string
	fs.StringVar(&o.email, "e", "", "")
	fs.StringVar(&o.password, "p", "", "")
	fs.StringVar(&configPath, "config", "", "")
	fs.StringVar(&fdnsPath, "fdns", "", "")
	fs.StringVar(&o.smtpHost, "s", "", "")
	fs.StringVar(&o.popHost, "P", "", "")
	fs.BoolVar(&o.multiline, "multiline", false, "")
	fs.DurationVar(&o.timeout, "timeout", time.Minute, "")
	var noTLS bool
	var source string
	fs.BoolVar(&o.tls, "tls", true, "")
	fs.BoolVar(&noTLS, "no-tls", false, "")
	fs.BoolVar(&o.insecure, "insecure", false, "")
	fs.StringVar(&o.caFile, "ca", "", "")
	fs.StringVar(&source, "source", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, err
		}
		return nil, nil, usagef("%v", err)
	}
	if o.email == "" {
		return nil, nil, usagef("-e EMAIL is required")
	}
	at := strings.LastIndexByte(o.email, '@')
	if at <= 0 || at == len(o.email)-1 || strings.ContainsAny(o.email, " \t<>\r\n") {
		return nil, nil, usagef("-e %q is not an address local@domain", o.email)
	}
	if o.timeout <= 0 {
		return nil, nil, usagef("-timeout must be positive")
	}
	if noTLS {
		o.tls = false
	}
	if o.insecure && o.caFile != "" {
		return nil, nil, usagef("give -ca FILE or -insecure, not both")
	}
	if o.caFile != "" {
		pool, err := loadCA(o.caFile)
		if err != nil {
			return nil, nil, usagef("%s", err)
		}
		o.roots = pool
	}
	if source != "" {
		if o.source = net.ParseIP(source); o.source == nil {
			return nil, nil, usagef("-source %q is not an IP address", source)
		}
	}
	o.domain = strings.ToLower(o.email[at+1:])
	cfg, err := config.Load(configPath, fdnsPath)
	if err != nil {
		return nil, nil, usagef("%s", oneLine(err.Error()))
	}
	o.cfg = cfg
	if a, ok := cfg.Agents[o.domain]; ok {
		if o.smtpHost == "" {
			o.smtpHost = a.SMTP
		}
		if o.popHost == "" {
			o.popHost = a.POP
		}
	}
	return o, fs.Args(), nil
}

// smtpAddr and popAddr resolve the server host names to "host:port".
func (o *options) smtpAddr() (string, error) { return o.resolve("SMTP", "-s", o.smtpHost) }
func (o *options) popAddr() (string, error)  { return o.resolve("POP3", "-P", o.popHost) }

func (o *options) resolve(proto, flagName, host string) (string, error) {
	if host == "" {
		return "", usagef("the config has no [agent] entry for %s; name the %s server with %s", o.domain, proto, flagName)
	}
	addr, err := o.cfg.ResolveHost(host)
	if err == nil {
		return addr, nil
	}
	// Not in the fake DNS: accept a literal host:port.
	if config.IsHostPort(host) {
		return host, nil
	}
	return "", usagef("the %s server %s has no [P] record in the fake DNS", proto, host)
}

// oneLine joins a multi-line message (errors.Join) into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
