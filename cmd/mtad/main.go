// Command mtad is gomta's daemon: it loads a config in the course's schema,
// starts every mail host of it (or the one named by -n) and runs their SMTP and
// POP3 listeners, queues and delivery workers, and the control socket that
// mtactl talks to (-control, [gomta] control_socket), in one oklog/run group
// until SIGINT or SIGTERM. SIGHUP (or mtactl reload) reloads the config and
// fake DNS files (mta.Hosts.Reload): it never stops the daemon, and a bad new
// config leaves the running one in place. With -metrics ADDR or [gomta]
// metrics_listen it also serves /metrics (Prometheus text format) from the
// process's own registry, as one more actor of the group. With
// [gomta.cluster] it first starts this process's node of the cluster
// (mta/cluster: an embedded NATS server or a connection to an external
// one) and waits until JetStream answers; the node is closed after the run
// group has ended.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/oklog/run"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"gomta/mta"
	"gomta/mta/cluster"
	"gomta/mta/config"
	"gomta/mta/control"
	"gomta/mta/control/ctlserver"
	"gomta/session/logvocab"
	"gomta/session/metrics"
)

func main() { os.Exit(realMain(os.Args[1:], os.Stderr)) }

type options struct {
	config, fdns, name, data, logFormat, logLevel, genCert, pprof string
	control, metrics                                              string
	smtpPort, popPort                                             int
	dataSet, levelSet, version                                    bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	var o options
	fs := flag.NewFlagSet("mtad", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.config, "config", "", "config `FILE` in the course's schema (default: the built-in two-host demo)")
	fs.StringVar(&o.name, "n", "", "run only the server `NAME` of [server] (default: every server)")
	fs.IntVar(&o.smtpPort, "s", 0, "SMTP `PORT` for the server of -n (default: from [server])")
	fs.IntVar(&o.popPort, "p", 0, "POP3 `PORT` for the server of -n (default: from [server])")
	fs.StringVar(&o.data, "data", "", "`DIR` for spool and mailboxes (default: data_dir of [gomta], ./var)")
	fs.StringVar(&o.logFormat, "log-format", "json", "log format: json or console")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error (without it, log_level of [gomta] applies and follows a reload)")
	fs.StringVar(&o.fdns, "fdns", "", "fake DNS `FILE` with [MX] and [P] tables (added to the config's; default: none)")
	fs.StringVar(&o.pprof, "pprof", "", "serve Go profiles on `ADDR` (loopback only, e.g. 127.0.0.1:6060) for go tool pprof (default: off)")
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics (IP:PORT; overrides metrics_listen of [gomta]; "+
		"loopback such as 127.0.0.1:9100, or an address written out: 0.0.0.0:9100 for every one; default: off)")
	fs.StringVar(&o.control, "control", "", "control socket `PATH` for mtactl (default: control_socket of [gomta], <data dir>/control.sock)")
	fs.BoolVar(&o.version, "version", false, "print the version (module version and VCS revision) and exit")
	fs.StringVar(&o.genCert, "gen-cert", "", "write a self-signed certificate (cert.pem, key.pem) for the config's servers into `DIR` and exit (default: off)")
	fs.Usage = func() { usage(fs, stderr) }
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) {
		o.dataSet = o.dataSet || f.Name == "data"
		o.levelSet = o.levelSet || f.Name == "log-level"
	})
	return &o, nil
}

// usage prints every flag with its default, the empty ones included (the
// flag package leaves out a default that is the zero value).
func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintln(w, "usage: mtad [flags]\n\nSIGHUP reloads the config and fake DNS files; SIGINT and SIGTERM stop mtad.\n\nflags:")
	fs.VisitAll(func(f *flag.Flag) {
		name, text := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  -%s %s\n    \t%s", f.Name, name, text)
		if !strings.Contains(text, "(default") && !strings.Contains(text, "default:") {
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

func realMain(args []string, stderr io.Writer) int {
	// Catch SIGINT/SIGTERM from the very start: one that arrives while the
	// listeners open is kept and handled as a graceful stop once the run
	// group runs, instead of killing the process half started. SIGHUP is
	// caught too, so that Go's default action (exit) never applies; room for
	// a few signals keeps a SIGTERM that follows a SIGHUP.
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigc)
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "mtad:", err)
		return 2
	}
	if o.version {
		fmt.Println(control.Version())
		return 0
	}
	log, level, stopLog, err := newLogger(o.logFormat, o.logLevel, os.Stderr)
	if err != nil {
		fmt.Fprintln(stderr, "mtad:", err)
		return 2
	}
	defer stopLog()
	// From here on, an error sentence comes after the log lines before it.
	return start(o, log, level, sigc, logFirst{log: log, w: stderr})
}

// start loads the config, builds the mail hosts, the control socket and the
// optional profiler and metrics listeners, and runs them all until a stop
// signal. It returns the exit code.
func start(o *options, log *zap.Logger, level zap.AtomicLevel, sigc <-chan os.Signal, stderr io.Writer) int {
	fail := func(code int, err error) int { fmt.Fprintln(stderr, "mtad:", err); return code }
	cfg, err := config.Load(o.config, o.fdns)
	if err != nil {
		fmt.Fprintf(stderr, "mtad: bad configuration:\n%s\n", indent(err.Error()))
		return 1
	}
	if o.genCert != "" {
		return genCert(cfg, o.genCert, stderr)
	}
	servers, err := selectServers(cfg, o)
	if err != nil {
		return fail(1, err)
	}
	applyFlags(cfg, o)
	if !o.levelSet && cfg.LogLevel != "" {
		lvl, _ := zapcore.ParseLevel(cfg.LogLevel) // validated with the config
		level.SetLevel(lvl)
	}
	logConfig(log, o, cfg)
	var extra []actor
	if o.pprof != "" {
		prof, err := newPprof(o.pprof)
		if err != nil {
			return fail(2, err)
		}
		extra = append(extra, actor{prof.execute(log), prof.interrupt})
	}
	m, met, err := newMetrics(o.metrics, cfg, log)
	if err != nil {
		return fail(2, err)
	}
	if met != nil {
		extra = append(extra, actor{met.execute(log), met.interrupt})
	}
	raiseFileLimit(log)
	certs, err := mta.NewTLS(cfg, log)
	if err != nil {
		return fail(1, err)
	}
	node, err := startCluster(cfg, sigc, log)
	if errors.Is(err, errSignal) {
		log.Info("mtad stopped", zap.NamedError("reason", err))
		return 0
	}
	if err != nil {
		return fail(1, err)
	}
	if node != nil {
		// Closed after the run group: the hosts drain through it (their
		// queues and mailboxes are the cluster's).
		defer node.Close()
		exec, interrupt := node.Actor()
		extra = append(extra, actor{exec, interrupt})
	}
	var hosts []*mta.Host
	if node != nil {
		hosts, err = newClusterHosts(cfg, servers, certs, log, m, node, sigc)
	} else {
		hosts, err = newHosts(cfg, servers, certs, log, m, nil)
	}
	if errors.Is(err, errSignal) {
		log.Info("mtad stopped", zap.NamedError("reason", err))
		return 0
	}
	if err != nil {
		return fail(1, err)
	}
	ho := mta.HostsOptions{Load: func() (*config.Config, error) { return reloadConfig(o) }, TLS: certs, Logger: log}
	if !o.levelSet {
		ho.Level = &level
	}
	hs := mta.NewHosts(cfg, hosts, ho)
	ctl, err := newControl(cfg, o.config, hs, log)
	if err != nil {
		for _, h := range hosts {
			h.Close()
		}
		return fail(1, err)
	}
	extra = append(extra, actor{ctl.Serve, func(error) { ctl.Close() }})
	return runHosts(cfg, hs, sigc, log, extra...)
}

// actor is one block of the run group.
type actor struct {
	execute   func() error
	interrupt func(error)
}

// applyFlags puts the command line's overrides into a loaded config.
func applyFlags(cfg *config.Config, o *options) {
	if o.dataSet {
		cfg.DataDir = o.data
	}
	switch {
	case o.control != "":
		cfg.ControlSocket = o.control
	case cfg.ControlSocket == "" && o.name != "":
		// One process per host (-n) on one data directory: one socket each,
		// in the host's own folder.
		cfg.ControlSocket = filepath.Join(mta.DataDir(cfg.DataDir, cfg.Server(o.name)), "control.sock")
	}
}

// newControl opens the control socket that mtactl talks to, serving the
// hosts of hs; mtactl reload is hs.Reload, as SIGHUP.
func newControl(cfg *config.Config, file string, hs *mta.Hosts, log *zap.Logger) (*ctlserver.Server, error) {
	if file == "" {
		file = "built-in default config"
	}
	opt := ctlserver.Options{Path: cfg.ControlPath(), ConfigFile: file, Reload: ctlserver.ReloadFunc(hs.Reload),
		Loaded: func() time.Time { _, at := hs.Config(); return at },
		Logger: log.With(zap.String(logvocab.Proto, logvocab.Control))}
	for _, h := range hs.List() {
		opt.Hosts = append(opt.Hosts, ctlserver.Host{Name: h.Name, Queue: h.Queue, Listeners: h.ListenAddrs(), Sessions: h.Sessions})
	}
	if err := os.MkdirAll(filepath.Dir(opt.Path), 0o750); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ctlserver.Listen(opt)
}

// reloadConfig reads the config files again as realMain did at start, with
// the same command-line overrides.
func reloadConfig(o *options) (*config.Config, error) {
	cfg, err := config.Load(o.config, o.fdns)
	if err != nil {
		return nil, err
	}
	if _, err := selectServers(cfg, o); err != nil {
		return nil, err
	}
	applyFlags(cfg, o)
	return cfg, nil
}

// logConfig logs the effective configuration, once, at start: the files it
// came from (after the flags that override them) and every setting, with
// accounts by address only (config.LogFields never logs a password).
func logConfig(log *zap.Logger, o *options, cfg *config.Config) {
	file := o.config
	if file == "" {
		file = "built-in default config"
	}
	log.Info("config loaded", append([]zap.Field{zap.String("file", file), zap.String("fdns", o.fdns)},
		cfg.LogFields()...)...)
}

// newHosts builds the mail hosts of servers, opening their listeners; on an
// error the listeners already open are closed.
func newHosts(cfg *config.Config, servers []*config.Server, certs *mta.TLS, log *zap.Logger, m *metrics.Metrics, node *cluster.Node) ([]*mta.Host, error) {
	var tlsConf *tls.Config
	if certs != nil {
		tlsConf = certs.Config
	}
	var hosts []*mta.Host
	for _, s := range servers {
		h, err := mta.NewHost(cfg, s, mta.DataDir(cfg.DataDir, s), tlsConf, log, m, node)
		if err != nil {
			for _, h := range hosts {
				h.Close()
			}
			return nil, err
		}
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// runHosts runs one run group with the signal actor, the profiler (nil:
// none), the control socket and every host's actors until a signal or an
// actor's end, and returns the exit code.
func runHosts(cfg *config.Config, hs *mta.Hosts, sigc <-chan os.Signal, log *zap.Logger, extra ...actor) int {
	var g run.Group
	g.Add(signalActor(sigc, hs.Reload, log))
	for _, a := range extra {
		g.Add(a.execute, a.interrupt)
	}
	stop := mta.NewStop(mta.ShutdownGrace) // one deadline for every host's drain
	hosts := hs.List()
	for _, h := range hosts {
		for _, a := range h.Actors(stop) {
			g.Add(a.Execute, a.Interrupt)
		}
		accounts := make([]string, 0, len(h.Accounts()))
		accounts = append(accounts, h.Accounts()...)
		sort.Strings(accounts)
		fields := append([]zap.Field{zap.String("host", h.Name)}, h.Listeners()...)
		log.Info("mail host ready", append(fields, zap.Strings("accounts", accounts), zap.Strings("domains", h.Domains()),
			zap.Bool("tls", cfg.TLSCert != "" || cfg.TLSSelfSigned), zap.String("data_dir", mta.DataDir(cfg.DataDir, h.Server())))...)
	}
	log.Info("mtad started", zap.Int("hosts", len(hosts)), zap.String("resolver", cfg.Resolver),
		zap.String("control_socket", cfg.ControlPath()),
		zap.Strings("trusted_networks", cfg.TrustedNetworks))
	err := g.Run()
	if err != nil && !errors.Is(err, errSignal) {
		log.Error("mtad stopped", zap.Error(err))
		return 1
	}
	log.Info("mtad stopped", zap.NamedError("reason", err))
	return 0
}

// errSignal ends the run group when SIGINT or SIGTERM arrives.
var errSignal = errors.New("signal")

// signalActor is the run group's block that returns on SIGINT or SIGTERM
// from sigc, and calls reload on SIGHUP (which logs what it did).
func signalActor(sigc <-chan os.Signal, reload func(context.Context) ([]string, error), log *zap.Logger) (func() error, func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	return func() error {
			for {
				select {
				case sig := <-sigc:
					if sig == syscall.SIGHUP {
						log.Info("SIGHUP: reloading the config")
						_, _ = reload(ctx) // the changes and the problems are in the log
						continue
					}
					return fmt.Errorf("received %s: %w", sig, errSignal)
				case <-ctx.Done():
					return nil
				}
			}
		}, func(error) {
			cancel()
		}
}

func genCert(cfg *config.Config, dir string, stderr io.Writer) int {
	names := make([]string, len(cfg.Servers))
	for i, s := range cfg.Servers {
		names[i] = s.Name
	}
	cert, key, err := mta.WriteSelfSigned(dir, names)
	if err != nil {
		fmt.Fprintln(stderr, "mtad: -gen-cert:", err)
		return 1
	}
	fmt.Fprintf(stderr, "mtad: wrote a self-signed certificate for %s (and localhost, 127.0.0.1, ::1):\n  %s\n  %s\n"+
		"Use it with tls_cert and tls_key in [gomta]; clients cannot verify it: for local use only.\n",
		strings.Join(names, ", "), cert, key)
	return 0
}

func selectServers(cfg *config.Config, o *options) ([]*config.Server, error) {
	if o.name == "" {
		if o.smtpPort != 0 || o.popPort != 0 {
			if len(cfg.Servers) != 1 {
				return nil, errors.New("-s and -p need -n NAME when the config has several servers")
			}
		} else {
			return cfg.Servers, nil
		}
		o.name = cfg.Servers[0].Name
	}
	s := cfg.Server(o.name)
	if s == nil {
		names := make([]string, len(cfg.Servers))
		for i, s := range cfg.Servers {
			names[i] = s.Name
		}
		return nil, fmt.Errorf("-n %q: no such server in [server] (have: %s)", o.name, strings.Join(names, ", "))
	}
	if o.smtpPort != 0 {
		s.SMTPPort = o.smtpPort
	}
	if o.popPort != 0 {
		s.POPPort = o.popPort
	}
	return []*config.Server{s}, nil
}

// Log lines are written in batches: at most logFlush late, or as soon as
// logBuffer octets are waiting, instead of one write(2) per line (four lines
// a message). With the log on a file mtad did 1,300 msg/s against 1,900 with
// it on /dev/null (mtaload c=20, one write per line). A kill -9 can lose the
// last logFlush of lines, never mail; a clean stop writes them all, and a
// line at DPanic or above is written at once (zap syncs for those).
const (
	logBuffer = 64 << 10
	logFlush  = 200 * time.Millisecond
)

// logFirst writes out the logger's buffered lines before each write to w.
type logFirst struct {
	log *zap.Logger
	w   io.Writer
}

func (l logFirst) Write(p []byte) (int, error) {
	_ = l.log.Sync()
	return l.w.Write(p)
}

// writeOnly is an io.Writer without the Sync method of what it wraps.
type writeOnly struct{ w io.Writer }

func (o writeOnly) Write(p []byte) (int, error) { return o.w.Write(p) }

// newLogger builds the daemon's logger on w (stderr) and returns the
// function that writes out what is buffered and stops the flusher.
func newLogger(format, level string, w io.Writer) (*zap.Logger, zap.AtomicLevel, func(), error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, zap.AtomicLevel{}, nil, fmt.Errorf("-log-level: %w", err)
	}
	enc, err := logEncoder(format)
	if err != nil {
		return nil, zap.AtomicLevel{}, nil, err
	}
	// The flusher syncs what it wraps after every flush; on a log file that
	// would be an fsync five times a second, I/O the mail's own syncs then
	// wait behind. Log lines need no power-cut durability: the wrapper
	// hides the file's Sync, leaving write(2) only.
	ws := &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(writeOnly{w}), Size: logBuffer, FlushInterval: logFlush}
	opts := []zap.Option{zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(w)))}
	if format == "json" {
		opts = append(opts, zap.AddStacktrace(zapcore.ErrorLevel))
	}
	al := zap.NewAtomicLevelAt(lvl)
	log := zap.New(zapcore.NewCore(enc, ws, al), opts...)
	return log, al, func() { _ = ws.Stop() }, nil
}

// logEncoder is the encoder of a -log-format. Neither format writes the
// source file and line ("caller"): the constant message and the
// component's fields say where a line comes from, and runtime.Callers on
// every line costs CPU under load. JSON lines carry "ts" in RFC 3339 with
// nanoseconds, one object per line.
func logEncoder(format string) (zapcore.Encoder, error) {
	switch format {
	case "json":
		ec := zap.NewProductionEncoderConfig()
		ec.TimeKey = "ts"
		ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
		ec.CallerKey = zapcore.OmitKey
		return zapcore.NewJSONEncoder(ec), nil
	case "console":
		ec := zap.NewDevelopmentEncoderConfig()
		ec.CallerKey = zapcore.OmitKey
		ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
		return zapcore.NewConsoleEncoder(ec), nil
	}
	return nil, fmt.Errorf("-log-format %q: want json or console", format)
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }
