package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// traceOpts are trace's flags and operand.
type traceOpts struct {
	JSON bool
	Crit criteria
	Win  window
}

func runTrace(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("trace", stderr)
	var o traceOpts
	var wf windowFlags
	fs.BoolVar(&o.JSON, "json", false, "one JSON document per message (one per line)")
	fs.StringVar(&o.Crit.MessageID, "message-id", "", "messages with this Message-ID header `ID`")
	fs.StringVar(&o.Crit.From, "from", "", "messages from envelope sender `ADDR`")
	fs.StringVar(&o.Crit.To, "to", "", "messages to envelope recipient `ADDR`")
	wf.register(fs)
	operands, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	if o.Win, err = wf.window(time.Now()); err != nil {
		return usageError(stderr, "trace", err)
	}
	set := 0
	for _, v := range []string{o.Crit.MessageID, o.Crit.From, o.Crit.To} {
		if v != "" {
			set++
		}
	}
	if set == 0 && len(operands) > 0 {
		o.Crit.MsgID, operands = operands[0], operands[1:]
		set++
	}
	if set != 1 {
		return usageError(stderr, "trace", errors.New("give one of MSGID, -message-id, -from, -to"))
	}
	if err := checkFiles(operands); err != nil {
		return usageError(stderr, "trace", err)
	}
	files, cleanup, err := rereadable(operands, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "mtalog trace: %v\n", err)
		return exitUsage
	}
	defer cleanup()
	traces, skipped, err := trace(files, o.Crit, o.Win)
	if err != nil {
		fmt.Fprintf(stderr, "mtalog trace: %v\n", err)
		return exitUsage
	}
	reportSkipped(stderr, skipped)
	if o.JSON {
		err = writeTracesJSON(stdout, traces)
	} else {
		err = writeTracesText(stdout, traces)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mtalog trace: %v\n", err)
		return exitUsage
	}
	if len(traces) == 0 {
		fmt.Fprintln(stderr, "mtalog trace: no message matched")
		return exitNoMatch
	}
	return exitOK
}

// rereadable returns files with standard input ("-") replaced by a
// temporary copy, since trace reads its files twice, and the function that
// removes the copy.
func rereadable(files []string, stdin io.Reader) ([]string, func(), error) {
	out := append([]string(nil), files...)
	cleanup := func() {}
	for i, f := range out {
		if f != "-" {
			continue
		}
		tmp, err := os.CreateTemp("", "mtalog-stdin-*")
		if err != nil {
			return nil, cleanup, err
		}
		cleanup = func() { os.Remove(tmp.Name()) }
		_, err = io.Copy(tmp, stdin)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			cleanup()
			return nil, func() {}, fmt.Errorf("standard input: %w", err)
		}
		out[i] = tmp.Name()
	}
	return out, cleanup, nil
}

// maxHops bounds the extra passes of trace's first scan: far more hops than
// a message makes (RFC 5321 §6.3 allows a hundred Received: fields, but a
// trace through one site's logs sees a handful).
const maxHops = 16

// trace follows the messages crit selects through files (read twice:
// files must be re-readable) and returns one Trace per message, in the
// order they were accepted, and how many lines were skipped.
func trace(files []string, crit criteria, win window) ([]*Trace, int64, error) {
	sel := newSelection(crit)
	skipped, err := eachLine(files, win, sel.scan)
	// A hop's lines may come before its parent's (clocks of two hosts
	// apart, a file not in time order, a delivery logged before its
	// acceptance): scan again until the selection stops growing, at most
	// once per hop a message can make.
	for pass := 0; err == nil && len(sel.order) > 0 && pass < maxHops; pass++ {
		n := len(sel.order)
		if _, err = eachLine(files, win, sel.scan); len(sel.order) == n {
			break
		}
	}
	if err != nil || len(sel.order) == 0 {
		return nil, skipped, err
	}
	c := newCollector(sel)
	if _, err := eachLine(files, win, c.add); err != nil {
		return nil, skipped, err
	}
	return c.finish(), skipped, nil
}

// eachLine calls fn with every line of files in time order.
func eachLine(files []string, win window, fn func(*Line)) (int64, error) {
	r, err := openAll(files, nil, win, allFields)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	for l := r.Next(); l != nil; l = r.Next() {
		fn(l)
	}
	return r.Skipped, r.Err()
}

// collector is trace's second pass: it gathers the steps of the selected
// messages into their traces.
type collector struct {
	sel     *selection
	roots   []*Trace
	byHead  map[string]*Trace   // lineage head (a root, a bounce) → its trace
	replies map[string][]string // msg_id → its relay delivered lines' remote_reply
}

func newCollector(sel *selection) *collector {
	c := &collector{sel: sel, byHead: map[string]*Trace{}, replies: map[string][]string{}}
	for _, id := range sel.order {
		r := sel.rel[id]
		switch r.kind {
		case relRoot:
			t := &Trace{MsgID: id, Kind: "message"}
			c.byHead[id] = t
			c.roots = append(c.roots, t)
		case relBounce, relDelay:
			t := &Trace{MsgID: id, Kind: "bounce", From: ""}
			if r.kind == relDelay {
				t.Kind = "delay notice"
			}
			c.byHead[id] = t
			p := c.byHead[c.head(r.parent)]
			p.Bounces = append(p.Bounces, t)
		}
	}
	return c
}

// head is the first hop of id's lineage: follows hops back to a root or a
// bounce.
func (c *collector) head(id string) string {
	for {
		r := c.sel.rel[id]
		if r.kind != relHop {
			return id
		}
		id = r.parent
	}
}

func (c *collector) add(l *Line) {
	if !c.sel.has(l.MsgID) {
		return
	}
	if l.Msg == msgRelayDelivered && l.RemoteReply != "" {
		c.replies[l.MsgID] = append(c.replies[l.MsgID], l.RemoteReply)
	}
	st, ok := stepOf(l)
	if !ok {
		return
	}
	t := c.byHead[c.head(l.MsgID)]
	t.Steps = append(t.Steps, st)
	switch {
	case l.Msg == msgAccepted && l.MsgID == t.MsgID && t.Host == "":
		t.Host, t.MessageID, t.From, t.Bytes = l.Host, l.MessageID, l.MailFrom, l.Bytes
		t.Rcpt = append([]string(nil), l.Rcpt...)
	case l.Msg == msgBounceQueued || l.Msg == msgDelayQueued:
		if b := c.byHead[l.BounceMsgID]; b != nil && b.Host == "" {
			b.Host, b.Rcpt = l.Host, append([]string(nil), l.Rcpt...)
		}
	}
}

// finish sets every hop's link strength and lists each trace's hops.
func (c *collector) finish() []*Trace {
	var walk func(t *Trace)
	walk = func(t *Trace) {
		seen := map[string]bool{}
		for i := range t.Steps {
			st := &t.Steps[i]
			if !seen[st.MsgID] {
				seen[st.MsgID] = true
				t.Hops = append(t.Hops, st.MsgID)
			}
			if st.Step != "accepted" {
				continue
			}
			r := c.sel.rel[st.MsgID]
			if st.Upstream == "" && r.kind == relHop {
				// The sending hop names it; the receiver did not say.
				st.Upstream, st.Link = r.parent, linkNamed
				continue
			}
			if st.Upstream == "" {
				continue
			}
			st.Link = c.link(st.Upstream, st.MsgID)
		}
		for _, b := range t.Bounces {
			walk(b)
		}
	}
	for _, t := range c.roots {
		walk(t)
	}
	return c.roots
}

// link is linkConfirmed when one of upstream's relay replies names id (the
// sending hop says the receiver queued it as id), linkClaimed otherwise.
func (c *collector) link(upstream, id string) string {
	for _, r := range c.replies[upstream] {
		if namesID(r, id) {
			return linkConfirmed
		}
	}
	return linkClaimed
}
