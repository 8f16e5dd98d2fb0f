package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gomta/session/pop3client"
	"gomta/session/smtpclient"
)

// maxAttachment bounds one -attach or -body-file read into memory.
const maxAttachment = 64 << 20

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// parseInterleaved parses flags that may come before, between or after the
// positional arguments (Go's flag package stops at the first positional).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for range len(args) + 1 { // bounded: each round consumes at least one argument
		if err := fs.Parse(args); err != nil {
			return nil, usagef("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	return pos, nil
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// scriptSend is `agent … send -to A [-to B] -subject S (-body T | -body-file F) [-attach F]…`.
func (e *env) scriptSend(o *options, args []string) int {
	d, err := e.sendDraft(o, args)
	if err != nil {
		return e.fail(err)
	}
	msg, err := compose(d)
	if err != nil {
		return e.fail(err)
	}
	st, rcptErrs, err := e.send(o, d.To, msg)
	if rcptErrs == nil && err != nil {
		return e.fail(err) // nothing was tried (no connection, login refused): one sentence
	}
	return e.sendReport(st, d.To, rcptErrs, err)
}

// sendDraft reads send's flags into the message to compose.
func (e *env) sendDraft(o *options, args []string) (*draft, error) {
	fs := newFlagSet("send")
	var to, attach listFlag
	var subject, body, bodyFile string
	fs.Var(&to, "to", "")
	fs.Var(&attach, "attach", "")
	fs.StringVar(&subject, "subject", "", "")
	fs.StringVar(&body, "body", "", "")
	fs.StringVar(&bodyFile, "body-file", "", "")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case len(pos) > 0:
		return nil, usagef("send: unexpected argument %q", pos[0])
	case len(to) == 0:
		return nil, usagef("send: at least one -to ADDRESS is required")
	case set["body"] && set["body-file"]:
		return nil, usagef("send: give -body or -body-file, not both")
	case !set["body"] && !set["body-file"]:
		return nil, usagef("send: -body TEXT or -body-file FILE is required")
	}
	d := &draft{From: o.email, Subject: subject, Body: body, Date: e.now()}
	for _, t := range to {
		for _, one := range splitAddrList(t) {
			addr, hdr, err := parseRecipient(one)
			if err != nil {
				return nil, usagef("send: -to %s", err)
			}
			d.To = append(d.To, addr)
			d.ToHeader = append(d.ToHeader, hdr)
		}
	}
	if len(d.To) == 0 {
		return nil, usagef("send: at least one -to ADDRESS is required")
	}
	if set["body-file"] {
		b, err := e.readInput(bodyFile)
		if err != nil {
			return nil, usagef("send: -body-file: %s", err)
		}
		d.Body = string(b)
	}
	for _, path := range attach {
		b, err := e.readInput(path)
		if err != nil {
			return nil, usagef("send: -attach: %s", err)
		}
		d.Attachments = append(d.Attachments, attachment{Name: filepath.Base(path), Data: b})
	}
	return d, nil
}

// sendReport prints one line per recipient of a transaction that was tried
// and returns the exit status.
func (e *env) sendReport(st *connState, to []string, rcptErrs []error, err error) int {
	status := exitOK
	for i, r := range to {
		var rerr error
		if i < len(rcptErrs) {
			rerr = rcptErrs[i]
		}
		switch {
		case rcptErrs == nil:
		case rerr == nil && err == nil:
			fmt.Fprintf(e.stdout, "%s: accepted\n", r)
		case rerr != nil && rerr != err:
			fmt.Fprintf(e.stderr, "agent: %s: refused: %s%s\n", r, serverWords(rerr), st.loginHint(rerr))
			status = exitRefused
		}
	}
	switch {
	case err == nil:
		return status
	case errors.Is(err, smtpclient.ErrNoRecipients):
		return exitRefused // every refusal already has its line
	case refused(err) && st.loginHint(err) != "":
		fmt.Fprintf(e.stderr, "agent: message not sent: %s%s\n", sentence(err), st.loginHint(err))
		return exitRefused
	case refused(err):
		return e.fail(&stepError{"message not sent", err})
	default:
		return e.fail(err)
	}
}

// readInput reads a file ("-" = stdin), bounded.
func (e *env) readInput(path string) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		r = e.stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			if os.IsNotExist(err) {
				return nil, fmt.Errorf("%s does not exist", path)
			}
			return nil, fmt.Errorf("cannot open %s", path)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxAttachment+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s", path)
	}
	if len(b) > maxAttachment {
		return nil, fmt.Errorf("%s is larger than %d MiB", path, maxAttachment>>20)
	}
	return b, nil
}

// popJSONMessage is retr's -json output.
type popJSONMessage struct {
	Num         int         `json:"num"`
	From        string      `json:"from"`
	To          string      `json:"to"`
	Cc          string      `json:"cc,omitempty"`
	Date        string      `json:"date"`
	Subject     string      `json:"subject"`
	Body        string      `json:"body"`
	Attachments []shownPart `json:"attachments,omitempty"`
	Raw         string      `json:"raw"`
}

// scriptPop is `agent … pop stat|list [N]|uidl [N]|retr N [-raw]|top N L|dele N [-json]`.
func (e *env) scriptPop(o *options, args []string) int {
	fs := newFlagSet("pop")
	var asJSON, raw bool
	fs.BoolVar(&asJSON, "json", false, "")
	fs.BoolVar(&raw, "raw", false, "")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return e.fail(err)
	}
	if len(pos) == 0 {
		return e.fail(usagef("pop: want stat, list, uidl, retr N, top N L or dele N"))
	}
	verb := strings.ToLower(pos[0])
	limits := map[string][2]int{"stat": {0, 0}, "list": {0, 1}, "uidl": {0, 1}, "retr": {1, 1}, "top": {2, 2}, "dele": {1, 1}}
	lim, ok := limits[verb]
	if !ok {
		return e.fail(usagef("pop: unknown command %q: want stat, list, uidl, retr N, top N L or dele N", pos[0]))
	}
	nums, _, perr := popArgs(verb, pos[1:], lim[0], lim[1])
	if perr != nil {
		return e.fail(usagef("pop: %s", strings.TrimSuffix(perr.Error(), ".")))
	}
	c, err := e.popLogin(o, nil)
	if err != nil {
		return e.fail(err)
	}
	defer c.Close()
	out, err := e.popOnce(c, verb, nums, asJSON, raw)
	if err != nil {
		c.Quit()
		if refused(err) {
			return e.fail(&stepError{verb + " failed", err})
		}
		return e.fail(&connError{"lost the POP3 server " + o.popHost, err})
	}
	// QUIT commits a DELE (RFC 1939 §6): only then is the deletion done.
	if err := c.Quit(); err != nil {
		if refused(err) {
			return e.fail(&stepError{"quit failed", err})
		}
		return e.fail(&connError{"lost the POP3 server " + o.popHost, err})
	}
	io.WriteString(e.stdout, out)
	return exitOK
}

// popOnce runs one command and renders its output.
func (e *env) popOnce(c *pop3client.Client, verb string, nums []int, asJSON, raw bool) (string, error) {
	var v any
	var text string
	switch verb {
	case "stat":
		n, size, err := c.Stat()
		if err != nil {
			return "", err
		}
		v = map[string]any{"count": n, "size": size}
		text = fmt.Sprintf("%d messages (%d bytes)\n", n, size)
	case "list", "uidl":
		var err error
		if v, text, err = popList(c, verb, nums); err != nil {
			return "", err
		}
	case "retr", "top":
		var err error
		if v, text, err = popRetr(c, verb, nums, raw); err != nil {
			return "", err
		}
	case "dele":
		if err := c.Dele(nums[0]); err != nil {
			return "", err
		}
		v = map[string]any{"num": nums[0], "deleted": true}
		text = "Message " + strconv.Itoa(nums[0]) + " deleted.\n"
	}
	if !asJSON {
		return text, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b) + "\n", nil
}

// popList runs LIST or UIDL, of one message when nums names one.
func popList(c *pop3client.Client, verb string, nums []int) (v any, text string, err error) {
	var ms []pop3client.MsgInfo
	switch {
	case verb == "list" && len(nums) == 1:
		var m pop3client.MsgInfo
		m, err = c.ListOne(nums[0])
		ms = []pop3client.MsgInfo{m}
	case verb == "list":
		ms, err = c.List()
	case len(nums) == 1:
		var m pop3client.MsgInfo
		m, err = c.UidlOne(nums[0])
		ms = []pop3client.MsgInfo{m}
	default:
		ms, err = c.Uidl()
	}
	if err != nil {
		return nil, "", err
	}
	type listJSON struct {
		Num  int    `json:"num"`
		Size int64  `json:"size,omitempty"`
		UID  string `json:"uid,omitempty"`
	}
	l := make([]listJSON, 0, len(ms))
	var b strings.Builder
	for _, m := range ms {
		if verb == "list" {
			l = append(l, listJSON{Num: m.Num, Size: m.Size})
			fmt.Fprintf(&b, "%d %d\n", m.Num, m.Size)
		} else {
			l = append(l, listJSON{Num: m.Num, UID: m.UID})
			fmt.Fprintf(&b, "%d %s\n", m.Num, m.UID)
		}
	}
	return l, b.String(), nil
}

// popRetr runs RETR or TOP; the text is the decoded message, or the message
// as sent for TOP and with raw.
func popRetr(c *pop3client.Client, verb string, nums []int, raw bool) (v any, text string, err error) {
	var msg []byte
	if verb == "retr" {
		msg, err = c.Retr(nums[0])
	} else {
		msg, err = c.Top(nums[0], nums[1])
	}
	if err != nil {
		return nil, "", err
	}
	s := decodeMessage(msg)
	v = popJSONMessage{Num: nums[0], From: s.From, To: s.To, Cc: s.Cc, Date: s.Date, Subject: s.Subject,
		Body: s.Body, Attachments: s.Attachments, Raw: string(msg)}
	if raw || verb == "top" {
		return v, strings.ReplaceAll(string(msg), "\r\n", "\n"), nil
	}
	return v, s.String() + "\n", nil
}
