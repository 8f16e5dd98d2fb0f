// Command mtaload is gomta's load generator, in the line of Postfix's
// smtp-source and chasquid's loadgen: it drives an SMTP or POP3 server with
// many concurrent sessions and reports throughput, per-step latency
// percentiles and errors grouped by reply code. It can hold idle sessions to
// measure a server's memory per connection, and verify over POP3 that every
// message that got a 250 arrived exactly once.
//
// Open loop (smtp -open): instead of each session sending its next message
// when the last is answered, a dispatcher hands every message to a pool of
// -c workers at its intended time, from a schedule of -rate steps (each
// -step long) or a linear -ramp, whatever the server does. A message that
// finds every worker busy waits, and its corrected latency runs from its
// intended send time to the 250 after the final dot (coordinated omission
// corrected, as wrk2 does); its service time runs from the moment a worker
// began to send it. Each step reports both (p50 to max), sent, ok, errors
// and the achieved rate; the run's figure is the highest step rate whose
// p99 corrected latency is under -slo with no errors. -json FILE and
// -html FILE (a self-contained page of inline SVG charts) keep the results.
//
// It speaks the protocols only through gomta's own clients
// (session/smtpclient, session/pop3client). It owns no server state.
//
// Invariants: it sends load to loopback addresses only (127.0.0.0/8, ::1, or
// a name that resolves only to those); every loop is bounded by a count or a
// duration and by the hard -timeout; measuring never takes a lock per
// message (each worker owns its histograms, merged at the end).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// Exit codes.
const (
	exitOK     = 0 // everything succeeded
	exitErrors = 1 // the run completed but errors occurred (refusals, losses)
	exitUsage  = 2 // bad flags, refused target, unsupported feature
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usageText = `usage: mtaload <mode> [flags]

modes:
  smtp    send messages (smtp-source-like): mtaload smtp -addr 127.0.0.1:2525 -c 20 -n 10000
          or open loop at fixed arrival rates: mtaload smtp -open -rate 250,500,1000 -step 20s -c 200 -html r.html
  pop3    log in, STAT, LIST, RETR each (DELE with -dele), QUIT, over and over
  idle    open and hold sessions after the greeting; report held/refused/dropped and server RSS
  verify  count over POP3 what arrived for each recipient of a previous smtp run (-acked FILE)

Run "mtaload <mode> -h" for the flags of a mode. Targets must be loopback
addresses. Exit status: 0 success, 1 errors occurred, 2 usage error.
`

// run is main without the process: it parses args, runs a mode and returns
// the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	errw := &syncWriter{w: stderr}
	switch args[0] {
	case "smtp":
		return runSMTP(args[1:], stdout, errw)
	case "pop3":
		return runPOP3(args[1:], stdout, errw)
	case "idle":
		return runIdle(args[1:], stdout, errw)
	case "verify":
		return runVerify(args[1:], stdout, errw)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usageText)
		return exitOK
	}
	fmt.Fprintf(stderr, "mtaload: unknown mode %q\n\n%s", args[0], usageText)
	return exitUsage
}

// newFlagSet returns a flag set for a mode that reports to stderr.
func newFlagSet(mode, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("mtaload "+mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: mtaload %s [flags]\n\n%s\n\nflags:\n", mode, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; done is true when the caller must return code
// (after -h, or on a flag error).
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	err := fs.Parse(jsonFileArgs(fs, args))
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK, true
	case err != nil:
		return exitUsage, true
	case fs.NArg() > 0:
		fmt.Fprintf(fs.Output(), "mtaload: unexpected argument %q\n", fs.Arg(0))
		return exitUsage, true
	}
	return 0, false
}

// usageErr prints a usage problem and returns exitUsage.
func usageErr(stderr io.Writer, format string, a ...any) int {
	fmt.Fprintf(stderr, "mtaload: "+format+"\n", a...)
	return exitUsage
}
