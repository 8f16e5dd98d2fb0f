package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"gomta/session/smtpclient"
)

// Prompts, as the course's agent prints them.
const (
	mainPrompt = "[smtp|pop|exit]>>> "
	popPrompt  = "[pop]>>> "
)

// errLeave ends the interactive agent (Ctrl-D, or input gone).
var errLeave = errors.New("leave")

// interactive runs the course's agent loop until exit, Ctrl-D or Ctrl-C.
func (e *env) interactive(o *options) int {
	interrupt := e.interrupt
	if interrupt == nil && e.notify != nil {
		c, stop := e.notify()
		defer stop()
		interrupt = c
	}
	in := e.newLineReader(interrupt)
	defer in.close()
	for {
		cmd, err := in.readLine(mainPrompt, true)
		switch {
		case errors.Is(err, errInterrupt):
			return exitSignal
		case err != nil:
			return e.endOfInput(err)
		}
		var werr error
		switch strings.ToLower(strings.TrimSpace(cmd)) {
		case "smtp":
			werr = e.smtpDialog(o, in)
		case "pop":
			werr = e.popDialog(o, in)
		case "exit", "quit":
			return exitOK
		case "":
			continue
		case "help", "?":
			fmt.Fprintln(e.stdout, "Commands: smtp (write and send a message), pop (read your mailbox), exit.")
		default:
			fmt.Fprintf(e.stdout, "Unknown command %q. Commands: smtp, pop, exit.\n", strings.TrimSpace(cmd))
		}
		switch {
		case errors.Is(werr, errInterrupt):
			return exitSignal
		case errors.Is(werr, errLeave):
			return exitOK
		case werr != nil:
			return e.endOfInput(werr)
		}
	}
}

// endOfInput is a clean leave at EOF, and a one-line error otherwise.
func (e *env) endOfInput(err error) int {
	if errors.Is(err, io.EOF) || errors.Is(err, errLeave) {
		return exitOK
	}
	fmt.Fprintln(e.stderr, "agent: "+sentence(err))
	return exitUsage
}

// smtpDialog asks for recipients, subject and content, then sends. Errors it
// returns end the agent (input gone, Ctrl-C); server trouble is printed.
func (e *env) smtpDialog(o *options, in lineReader) error {
	d := &draft{From: o.email, Date: e.now()}
	for len(d.To) < 1000 {
		line, err := in.readLine("To: ", false)
		if err != nil {
			return err
		}
		line = strings.TrimSpace(line)
		if line == "" {
			break
		}
		// Several addresses on one line, separated by commas, are welcome too.
		for _, one := range splitAddrList(line) {
			addr, hdr, perr := parseRecipient(one)
			if perr != nil {
				fmt.Fprintf(e.stdout, "%s; not added.\n", capitalize(perr.Error()))
				continue
			}
			d.To = append(d.To, addr)
			d.ToHeader = append(d.ToHeader, hdr)
		}
	}
	subject, err := in.readLine("Subject: ", false)
	if err != nil {
		return err
	}
	d.Subject = subject
	if d.Body, err = e.readContent(o, in); err != nil {
		return err
	}
	if len(d.To) == 0 {
		fmt.Fprintln(e.stdout, "No recipients: nothing sent.")
		return nil
	}
	msg, err := compose(d)
	if err != nil {
		fmt.Fprintf(e.stdout, "Cannot compose the message: %s.\n", sentence(err))
		return nil
	}
	st, rcptErrs, err := e.send(o, d.To, msg)
	e.printStatus(e.stdout, "the SMTP server "+o.smtpHost, st, o.email)
	e.printSendResult(e.stdout, d.To, st, rcptErrs, err)
	return nil
}

// readContent reads Content: — one line, or with -multiline every line until
// a line with a single ".".
func (e *env) readContent(o *options, in lineReader) (string, error) {
	if !o.multiline {
		return in.readLine("Content: ", false)
	}
	fmt.Fprintln(e.stdout, `Content (end with a line containing only "."):`)
	var lines []string
	for len(lines) < 100000 {
		line, err := in.readLine("", false)
		if errors.Is(err, io.EOF) && len(lines) > 0 {
			break // Ctrl-D ends the content too
		}
		if err != nil {
			return "", err
		}
		if line == "." {
			break
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n"), nil
}

// send submits one message to the -e account's SMTP server: EHLO, STARTTLS
// when offered (unless -tls=false), AUTH as -e/-p when offered, then the
// transaction. st says how the connection was protected; it is nil when
// the agent did not get that far.
func (e *env) send(o *options, rcpts []string, msg []byte) (st *connState, rcptErrs []error, err error) {
	addr, err := o.smtpAddr()
	if err != nil {
		return nil, nil, err
	}
	what := fmt.Sprintf("the SMTP server %s (%s)", o.smtpHost, addr)
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	conn, err := o.dial(ctx, addr)
	if err != nil {
		return nil, nil, &connError{"cannot reach " + what, err}
	}
	// -tls=false says the user accepts a password in the clear.
	c, err := smtpclient.NewClient(conn, smtpclient.Options{Timeout: o.timeout, InsecureAuth: !o.tls})
	if err != nil {
		if refused(err) {
			return nil, nil, err
		}
		return nil, nil, &connError{"cannot reach " + what, err}
	}
	defer c.Close()
	st, err = e.smtpSecure(o, c, what, addr, isLoopback(conn))
	if err != nil {
		return nil, nil, err
	}
	rcptErrs, err = c.Send(o.email, rcpts, bytes.NewReader(msg))
	if err != nil && !refused(err) {
		return st, rcptErrs, &connError{"lost " + what, err}
	}
	// The outcome is known before QUIT: a failing QUIT changes nothing.
	_ = c.Quit()
	return st, rcptErrs, err
}

// smtpSecure says EHLO, runs STARTTLS when offered and wanted, and logs in
// when the server offers AUTH and -p was given. A refused login stops here.
func (e *env) smtpSecure(o *options, c *smtpclient.Client, what, addr string, loopback bool) (*connState, error) {
	st := &connState{}
	var cfg *tls.Config
	if o.tls {
		host, _, _ := net.SplitHostPort(addr)
		cfg = e.tlsConfig(o, what, host, loopback, st)
	}
	if err := c.HelloTLS(cfg); err != nil {
		var ce *certError
		switch {
		case errors.As(err, &ce):
			return nil, ce
		case refused(err):
			return nil, &stepError{"STARTTLS with " + what + " failed", err}
		}
		return nil, &connError{"lost " + what, err}
	}
	st.tls = c.TLS()
	offered, _ := c.Extension("AUTH")
	switch {
	case o.password == "":
		st.noAuth = "no -p PASSWORD was given"
		return st, nil
	case !offered && !st.tls && !o.tls:
		st.noAuth = "the server offers no AUTH without TLS, and -tls=false was given"
		return st, nil
	case !offered && !st.tls:
		st.noAuth = "the server offers neither STARTTLS nor AUTH"
		return st, nil
	case !offered:
		st.noAuth = "the server does not offer AUTH"
		return st, nil
	}
	err := c.Auth(o.email, o.password)
	switch {
	case err == nil:
		st.auth = "AUTH"
		return st, nil
	case errors.Is(err, smtpclient.ErrNoAuth):
		st.noAuth = "the server offers no AUTH mechanism the agent speaks (PLAIN, LOGIN)"
		return st, nil
	case errors.Is(err, smtpclient.ErrInsecureAuth):
		return nil, usagef("%s offers no STARTTLS: the agent will not send your password in the clear "+
			"(give -tls=false to send it anyway)", what)
	case refused(err):
		return nil, &stepError{what + " refused the login as " + o.email, err}
	}
	return nil, &connError{"lost " + what, err}
}

// printStatus shows how the connection was protected (interactive output).
func (e *env) printStatus(w io.Writer, server string, st *connState, user string) {
	if st == nil {
		return
	}
	fmt.Fprintf(w, "Connected to %s %s.\n", server, st.describe(user))
	if n := st.note(); n != "" {
		fmt.Fprintln(w, n)
	}
}

// printSendResult says per recipient what happened. smtpclient.Send sets
// every entry of rcptErrs when the transaction failed as a whole, so an entry
// equal to err is "not sent" rather than a refusal of that recipient.
func (e *env) printSendResult(w io.Writer, rcpts []string, st *connState, rcptErrs []error, err error) {
	if rcptErrs == nil && err != nil {
		// Nothing was tried (no connection, no login): one sentence.
		fmt.Fprintf(w, "Message not sent: %s.\n", sentence(err))
		return
	}
	accepted := 0
	for i, r := range rcpts {
		var rerr error
		if i < len(rcptErrs) {
			rerr = rcptErrs[i]
		}
		switch {
		case rerr == nil && err == nil:
			accepted++
			fmt.Fprintf(w, "%s: accepted\n", r)
		case rerr != nil && rerr != err:
			fmt.Fprintf(w, "%s: refused: %s%s\n", r, serverWords(rerr), st.loginHint(rerr))
		default:
			fmt.Fprintf(w, "%s: not sent\n", r)
		}
	}
	switch {
	case errors.Is(err, smtpclient.ErrNoRecipients):
		fmt.Fprintln(w, "Message not sent: every recipient was refused.")
	case err != nil:
		fmt.Fprintf(w, "Message not sent: %s%s.\n", sentence(err), st.loginHint(err))
	case accepted == len(rcpts):
		fmt.Fprintf(w, "Message sent to %s.\n", plural(accepted, "recipient"))
	default:
		fmt.Fprintf(w, "Message sent to %d of %d recipients.\n", accepted, len(rcpts))
	}
}

// splitAddrList splits "a@b, Name <c@d>" at commas outside quotes and brackets.
func splitAddrList(s string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			quoted = !quoted
		case c == '<' && !quoted:
			depth++
		case c == '>' && !quoted && depth > 0:
			depth--
		case c == ',' && !quoted && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	out = append(out, s[start:])
	res := out[:0]
	for _, a := range out {
		if a = strings.TrimSpace(a); a != "" {
			res = append(res, a)
		}
	}
	return res
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
