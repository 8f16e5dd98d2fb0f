// Command mtalog reads gomta's JSON logs — from one or several hosts or
// processes at once, plain or gzip'd, or standard input — and follows
// messages across hosts (trace) or sums a day up as pflogsumm does
// (summary).
//
//	mtalog trace [-json] [-since T] [-until T] (MSGID | -message-id ID | -from ADDR | -to ADDR) FILE…
//	mtalog summary [-json] [-html FILE] [-top N] [-since T] [-until T] FILE…
//
// It owns no state beyond one run. Its invariants:
//
//   - it streams: the files are merged by time (a k-way merge holding one
//     line per file) and never loaded whole. summary's memory is the
//     messages accepted and not yet done plus one entry per domain,
//     address, client and hour; trace reads its files twice (the first
//     pass finds the matching messages and everything linked to them, the
//     second collects their lines) and keeps state for those messages
//     only. Standard input is copied to a temporary file for trace.
//   - lines that are not gomta JSON (no ts or msg, not JSON, cut short)
//     are skipped and their count is written to standard error.
//   - a link between hops is confirmed only when the sending hop's relay
//     delivered line names the receiving hop's msg_id in its remote_reply;
//     an upstream_msg_id the receiving hop alone logs (any client can
//     write a Received header) is claimed.
//
// Exit status: 0 on success; 1 when trace matched nothing; 2 on a usage or
// read error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Exit statuses.
const (
	exitOK      = 0
	exitNoMatch = 1
	exitUsage   = 2
)

const usage = `usage:
  mtalog trace [-json] [-since T] [-until T] (MSGID | -message-id ID | -from ADDR | -to ADDR) FILE...
  mtalog summary [-json] [-html FILE] [-top N] [-since T] [-until T] FILE...
FILE is a gomta JSON log, gzip'd or not; - is standard input.
T is RFC 3339 (2026-12-06T03:00:00Z), a date (2026-12-06), a date and time
(2026-12-06 03:00) in UTC, or a duration before now (2h).
`

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

// run is mtalog with args, its exit status as the result.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "trace":
		return runTrace(args[1:], stdin, stdout, stderr)
	case "summary":
		return runSummary(args[1:], stdin, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "mtalog: unknown command %q\n%s", args[0], usage)
	return exitUsage
}

// windowFlags are -since and -until, shared by both commands.
type windowFlags struct{ since, until string }

func (w *windowFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&w.since, "since", "", "only lines at or after `T`")
	fs.StringVar(&w.until, "until", "", "only lines before `T`")
}

func (w *windowFlags) window(now time.Time) (window, error) {
	var win window
	var err1, err2 error
	win.since, err1 = parseWhen(w.since, now)
	win.until, err2 = parseWhen(w.until, now)
	return win, errors.Join(err1, err2)
}

// parseWhen reads a -since/-until value: unix nanoseconds, 0 for "".
func parseWhen(s string, now time.Time) (int64, error) {
	if s == "" {
		return 0, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UnixNano(), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d).UnixNano(), nil
	}
	return 0, fmt.Errorf("time %q: want RFC 3339, a date, a date and time, or a duration", s)
}

// parseFlags parses fs with args, allowing flags after the operands too
// (mtalog summary app.log -json); it returns the operands.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var operands []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return operands, nil
		}
		operands = append(operands, args[0])
		args = args[1:]
	}
}

// reportSkipped writes how many lines were not gomta JSON.
func reportSkipped(stderr io.Writer, n int64) {
	if n > 0 {
		fmt.Fprintf(stderr, "mtalog: %d lines skipped: not gomta JSON\n", n)
	}
}

// checkFiles refuses an empty list and more than one standard input.
func checkFiles(files []string) error {
	if len(files) == 0 {
		return errors.New("no log file (- for standard input)")
	}
	stdin := 0
	for _, f := range files {
		if f == "-" {
			stdin++
		}
	}
	if stdin > 1 {
		return errors.New("standard input (-) named more than once")
	}
	return nil
}

func usageError(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "mtalog %s: %v\n%s", cmd, err, usage)
	return exitUsage
}

// newFlagSet is a flag set that reports to stderr and does not exit.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("mtalog "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// ellipsis cuts s to n runes.
func ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// joinMax joins at most n of ss, saying how many more there are.
func joinMax(ss []string, n int) string {
	if len(ss) <= n {
		return strings.Join(ss, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ss[:n], ", "), len(ss)-n)
}
