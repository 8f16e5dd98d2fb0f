package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
	rcptErrs, err := e.send(o, d.To, msg)
	e.printSendResult(e.stdout, d.To, rcptErrs, err)
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

// send submits one message to the -e account's SMTP server.
func (e *env) send(o *options, rcpts []string, msg []byte) (rcptErrs []error, err error) {
	addr, err := o.smtpAddr()
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("the SMTP server %s (%s)", o.smtpHost, addr)
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	c, err := smtpclient.Dial(ctx, addr, smtpclient.Options{Timeout: o.timeout})
	if err != nil {
		if refused(err) {
			return nil, err
		}
		return nil, &connError{"cannot reach " + what, err}
	}
	defer c.Close()
	if err := c.Hello(); err != nil {
		if refused(err) {
			return nil, err
		}
		return nil, &connError{"lost " + what, err}
	}
	rcptErrs, err = c.Send(o.email, rcpts, bytes.NewReader(msg))
	if err != nil && !refused(err) {
		return rcptErrs, &connError{"lost " + what, err}
	}
	// The outcome is known before QUIT: a failing QUIT changes nothing.
	_ = c.Quit()
	return rcptErrs, err
}

// printSendResult says per recipient what happened. smtpclient.Send sets
// every entry of rcptErrs when the transaction failed as a whole, so an entry
// equal to err is "not sent" rather than a refusal of that recipient.
func (e *env) printSendResult(w io.Writer, rcpts []string, rcptErrs []error, err error) {
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
			fmt.Fprintf(w, "%s: refused: %s\n", r, serverWords(rerr))
		default:
			fmt.Fprintf(w, "%s: not sent\n", r)
		}
	}
	switch {
	case errors.Is(err, smtpclient.ErrNoRecipients):
		fmt.Fprintln(w, "Message not sent: every recipient was refused.")
	case err != nil:
		fmt.Fprintf(w, "Message not sent: %s.\n", sentence(err))
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
