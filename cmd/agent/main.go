// Command agent is gomta's mail agent: the course's interactive agent
// ([smtp|pop|exit]>>>, To:/Subject:/Content:, [pop]>>>) made pleasant, and a
// scriptable one-command mode (agent … send …, agent … pop …) with exit
// statuses for scripts and tests.
//
// It finds its servers as the course's agent does: the domain of -e selects
// [agent]."<domain>" in the config, whose SMTP and POP host names resolve
// through the fake DNS [P] table. It speaks SMTP and POP3 only through gomta's
// one client implementation (session/smtpclient, session/pop3client).
//
// Security (secure.go): STARTTLS/STLS whenever offered (unless -tls=false),
// the certificate checked against the system roots and -ca (-insecure skips
// it; a loopback server whose certificate cannot be checked is used
// unverified, and said so), then a login: SMTP AUTH when offered, POP3 AUTH
// PLAIN when CAPA lists it, else USER/PASS. A password never goes in the
// clear to a remote server unless -tls=false says so.
//
// Exit status: 0 on success, 1 when a server refused something, 2 on a usage or
// connection error. Every failure is one line on stderr.
package main

import (
	"os"
	"os/signal"

	"github.com/chzyer/readline"
)

// Exit statuses.
const (
	exitOK      = 0   // everything done
	exitRefused = 1   // a server refused something (-ERR, 4xx/5xx)
	exitUsage   = 2   // bad command line, config, or the server could not be reached
	exitSignal  = 130 // left with Ctrl-C (128 + SIGINT)
)

func main() {
	e := newEnv(os.Stdin, os.Stdout, os.Stderr)
	e.terminal = readline.IsTerminal(int(os.Stdin.Fd())) && readline.IsTerminal(int(os.Stdout.Fd()))
	e.notify = func() (<-chan os.Signal, func()) {
		c := make(chan os.Signal, 1)
		signal.Notify(c, os.Interrupt)
		return c, func() { signal.Stop(c) }
	}
	os.Exit(e.run(os.Args[1:]))
}
