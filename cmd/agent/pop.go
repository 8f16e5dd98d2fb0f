package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"gomta/session/pop3client"
)

const popHelp = `Commands:
  stat            number of messages and their total size
  list [N]        size of every message (or of message N)
  uidl [N]        unique id of every message (or of message N)
  retr N [raw]    show message N decoded (raw: exactly as stored)
  top N L         headers and the first L lines of message N
  dele N          mark message N for deletion (done at quit)
  rset            unmark every message marked for deletion
  noop            check that the server is still there
  quit            commit deletions and go back to the main prompt
  help            this list`

// popCommand is one [pop]>>> command: its argument count range and handler.
type popCommand struct {
	minArgs, maxArgs int
	run              func(e *env, c *pop3client.Client, args []int, raw bool) error
}

var popCommands = map[string]popCommand{
	"stat": {0, 0, func(e *env, c *pop3client.Client, _ []int, _ bool) error {
		n, size, err := c.Stat()
		if err == nil {
			fmt.Fprintf(e.stdout, "%d messages (%d bytes)\n", n, size)
		}
		return err
	}},
	"list": {0, 1, func(e *env, c *pop3client.Client, a []int, _ bool) error {
		return e.printInfos(c.List, c.ListOne, a, func(m pop3client.MsgInfo) string { return strconv.FormatInt(m.Size, 10) })
	}},
	"uidl": {0, 1, func(e *env, c *pop3client.Client, a []int, _ bool) error {
		return e.printInfos(c.Uidl, c.UidlOne, a, func(m pop3client.MsgInfo) string { return m.UID })
	}},
	"retr": {1, 1, func(e *env, c *pop3client.Client, a []int, raw bool) error {
		msg, err := c.Retr(a[0])
		if err != nil {
			return err
		}
		if raw {
			e.writeRaw(msg)
		} else {
			fmt.Fprintln(e.stdout, decodeMessage(msg).String())
		}
		return nil
	}},
	"top": {2, 2, func(e *env, c *pop3client.Client, a []int, _ bool) error {
		msg, err := c.Top(a[0], a[1])
		if err == nil {
			e.writeRaw(msg)
		}
		return err
	}},
	"dele": {1, 1, func(e *env, c *pop3client.Client, a []int, _ bool) error {
		err := c.Dele(a[0])
		if err == nil {
			fmt.Fprintf(e.stdout, "Message %d marked for deletion (deleted at quit; rset undoes it).\n", a[0])
		}
		return err
	}},
	"rset": {0, 0, func(e *env, c *pop3client.Client, _ []int, _ bool) error {
		err := c.Rset()
		if err == nil {
			fmt.Fprintln(e.stdout, "No message is marked for deletion any more.")
		}
		return err
	}},
	"noop": {0, 0, func(e *env, c *pop3client.Client, _ []int, _ bool) error {
		err := c.Noop()
		if err == nil {
			fmt.Fprintln(e.stdout, "+OK")
		}
		return err
	}},
}

// popDialog logs in and runs [pop]>>> until quit. It returns errInterrupt or
// errLeave to end the agent; server trouble is printed and returns nil.
func (e *env) popDialog(o *options, in lineReader) error {
	c, err := e.popLogin(o, e.stdout)
	if err != nil {
		fmt.Fprintln(e.stdout, capitalize(sentence(err))+".")
		return nil
	}
	defer c.Close()
	for {
		line, err := in.readLine(popPrompt, true)
		if errors.Is(err, errInterrupt) {
			// Ctrl-C abandons the session: nothing marked is deleted.
			c.Rset()
			c.Quit()
			return errInterrupt
		}
		if err != nil {
			// End of input: leave as quit would.
			e.popQuit(c)
			return errLeave
		}
		f := strings.Fields(strings.ToLower(line))
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "quit", "exit":
			e.popQuit(c)
			return nil
		case "help", "?":
			fmt.Fprintln(e.stdout, popHelp)
			continue
		}
		cmd, ok := popCommands[f[0]]
		if !ok {
			fmt.Fprintf(e.stdout, "Unknown command %q.\n%s\n", f[0], popHelp)
			continue
		}
		args, raw, perr := popArgs(f[0], f[1:], cmd.minArgs, cmd.maxArgs)
		if perr != nil {
			fmt.Fprintln(e.stdout, perr.Error())
			continue
		}
		if err := cmd.run(e, c, args, raw); err != nil {
			if refused(err) {
				fmt.Fprintln(e.stdout, serverWords(err))
				continue
			}
			fmt.Fprintf(e.stdout, "Lost the POP3 server: %s. Back to the main prompt.\n", describeNetErr(err))
			return nil
		}
	}
}

// popQuit sends QUIT and says what it did.
func (e *env) popQuit(c *pop3client.Client) {
	if err := c.Quit(); err != nil {
		fmt.Fprintf(e.stdout, "QUIT failed: %s.\n", serverWords(err))
		return
	}
	fmt.Fprintln(e.stdout, "Logged out; deletions are done.")
}

// popArgs parses numeric arguments; "raw" is allowed after retr's number.
func popArgs(verb string, f []string, minArgs, maxArgs int) (args []int, raw bool, err error) {
	if verb == "retr" && len(f) == 2 && f[1] == "raw" {
		raw, f = true, f[:1]
	}
	if len(f) < minArgs || len(f) > maxArgs {
		usage := map[string]string{"list": "list [N]", "uidl": "uidl [N]", "retr": "retr N [raw]",
			"top": "top N LINES", "dele": "dele N"}[verb]
		if usage == "" {
			usage = verb
		}
		return nil, false, fmt.Errorf("Usage: %s", usage)
	}
	for _, s := range f {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, false, fmt.Errorf("%q is not a message number.", s)
		}
		args = append(args, n)
	}
	return args, raw, nil
}

// popLogin dials the POP3 server, shows the greeting on w, reads CAPA,
// runs STLS when offered (unless -tls=false), and logs in: AUTH PLAIN when
// CAPA lists SASL PLAIN, else USER/PASS.
func (e *env) popLogin(o *options, w io.Writer) (*pop3client.Client, error) {
	addr, err := o.popAddr()
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("the POP3 server %s (%s)", o.popHost, addr)
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	conn, err := o.dial(ctx, addr)
	if err != nil {
		return nil, &connError{"cannot reach " + what, err}
	}
	c, err := pop3client.NewClient(conn, pop3client.Options{Timeout: o.timeout})
	if err != nil { // NewClient closed conn
		if refused(err) {
			return nil, err
		}
		return nil, &connError{"cannot reach " + what, err}
	}
	if w != nil {
		fmt.Fprintln(w, "+OK "+c.Greeting())
	}
	st, err := e.popSecure(o, c, what, addr, isLoopback(conn))
	if err != nil {
		c.Close()
		return nil, err
	}
	if w != nil {
		if n, size, err := c.Stat(); err == nil {
			fmt.Fprintf(w, "Logged in as %s %s: %d messages (%d bytes).\n", o.email, st.describeLogin(), n, size)
		}
		if n := st.note(); n != "" {
			fmt.Fprintln(w, n)
		}
	}
	return c, nil
}

// popSecure runs STLS when offered and wanted, then logs in.
func (e *env) popSecure(o *options, c *pop3client.Client, what, addr string, loopback bool) (*connState, error) {
	st := &connState{}
	lost := func(err error) error {
		if refused(err) {
			return err
		}
		return &connError{"lost " + what, err}
	}
	caps, err := capa(c)
	if err != nil {
		return nil, lost(err)
	}
	if o.tls && caps.Has("STLS") {
		host, _, _ := net.SplitHostPort(addr)
		if err := c.StartTLS(e.tlsConfig(o, what, host, loopback, st)); err != nil {
			var ce *certError
			switch {
			case errors.As(err, &ce):
				return nil, ce
			case refused(err):
				return nil, &stepError{"STLS with " + what + " failed", err}
			}
			return nil, lost(err)
		}
		// RFC 2595 §4: capabilities may differ under TLS; ask again.
		if caps, err = capa(c); err != nil {
			return nil, lost(err)
		}
	}
	st.tls = c.TLS()
	if !st.tls && o.tls && !loopback {
		return nil, usagef("%s offers no STLS: the agent will not send your password in the clear "+
			"(give -tls=false to send it anyway)", what)
	}
	login, how := c.Login, "USER/PASS"
	if caps.SASL("PLAIN") {
		login, how = c.Auth, "AUTH PLAIN"
	}
	if err := login(o.email, o.password); err != nil {
		if refused(err) {
			return nil, &stepError{"login as " + o.email + " failed", err}
		}
		return nil, lost(err)
	}
	st.auth = how
	return st, nil
}

// capa returns the server's capabilities; a server without CAPA (-ERR)
// has none worth knowing (RFC 2449 §5).
func capa(c *pop3client.Client) (pop3client.Caps, error) {
	lines, err := c.Capa()
	var pe *pop3client.Error
	if errors.As(err, &pe) {
		return pop3client.Caps{}, nil
	}
	if err != nil {
		return nil, err
	}
	return pop3client.ParseCaps(lines), nil
}

// printInfos prints LIST/UIDL lines, all or one.
func (e *env) printInfos(all func() ([]pop3client.MsgInfo, error), one func(int) (pop3client.MsgInfo, error),
	args []int, val func(pop3client.MsgInfo) string) error {
	if len(args) == 1 {
		m, err := one(args[0])
		if err == nil {
			fmt.Fprintf(e.stdout, "%d %s\n", m.Num, val(m))
		}
		return err
	}
	ms, err := all()
	if err != nil {
		return err
	}
	if len(ms) == 0 {
		fmt.Fprintln(e.stdout, "No messages.")
	}
	for _, m := range ms {
		fmt.Fprintf(e.stdout, "%d %s\n", m.Num, val(m))
	}
	return nil
}

// writeRaw prints a message as stored, with LF line endings for the terminal.
func (e *env) writeRaw(msg []byte) {
	s := strings.ReplaceAll(string(msg), "\r\n", "\n")
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	io.WriteString(e.stdout, s)
}
