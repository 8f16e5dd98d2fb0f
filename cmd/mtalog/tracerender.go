package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// tsLayout is how trace shows a step's time (UTC).
const tsLayout = "2006-01-02 15:04:05.000"

// writeTracesJSON writes one JSON document per trace, one per line.
func writeTracesJSON(w io.Writer, traces []*Trace) error {
	enc := json.NewEncoder(w)
	for _, t := range traces {
		if err := enc.Encode(t); err != nil {
			return err
		}
	}
	return nil
}

// writeTracesText writes each trace as a timeline, its bounces indented
// under it.
func writeTracesText(w io.Writer, traces []*Trace) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for i, t := range traces {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		writeTrace(tw, t, "")
	}
	return tw.Flush()
}

func writeTrace(w io.Writer, t *Trace, indent string) {
	from := t.From
	if from == "" {
		from = "<>"
	}
	head := fmt.Sprintf("%s%s %s", indent, t.Kind, safe(t.MsgID))
	if t.MessageID != "" {
		head += " " + safe(t.MessageID)
	}
	fmt.Fprintf(w, "%s\n%s  from %s to %s\n", head, indent, safe(from), safe(joinMax(t.Rcpt, 5)))
	for _, st := range t.Steps {
		fmt.Fprintf(w, "%s  %s\t%s\t%s\t%s\t%s\n", indent, st.TS.Format(tsLayout), safe(st.Host), safe(st.MsgID), st.Step,
			safe(stepText(&st)))
	}
	for _, b := range t.Bounces {
		fmt.Fprintln(w)
		writeTrace(w, b, indent+"    ")
	}
}

// safe escapes what a log line may carry from the outside (a Message-ID
// header, a remote server's reply) and a terminal would act on: control
// characters (C0, DEL, C1, a tab that would break the columns) and the
// bidirectional overrides, written as Go escapes.
func safe(s string) string {
	clean := true
	for _, r := range s {
		if unsafeRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unsafeRune(r) {
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	return r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f ||
		r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

// stepText is what a step says beyond its time, host, id and name.
func stepText(st *Step) string {
	var b strings.Builder
	add := func(format string, a ...any) {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, format, a...)
	}
	switch st.Step {
	case "accepted":
		add("client %s", st.Remote)
		if st.TLS {
			add("TLS")
		}
		if st.AuthUser != "" {
			add("auth %s", st.AuthUser)
		}
		add("%d bytes", st.Bytes)
		if st.Upstream != "" {
			add("upstream %s (%s link)", st.Upstream, st.Link)
		}
	case "delivered":
		add("%s into the mailbox of %s", joinMax(st.Rcpt, 3), st.User)
		if st.File != "" {
			add("file %s", st.File)
		}
	case "relayed", "deferred", "bounced":
		add("%s to %s", joinMax(st.Rcpt, 3), relayPeer(st))
		add("attempt %d", st.Attempt)
		if st.RemoteReply != "" {
			add("%q", st.RemoteReply)
		} else if st.Error != "" {
			add("%s", st.Error)
		}
	case "retry scheduled":
		add("attempt %d, next %s", st.Attempt, st.NextAttempt)
		add("%s: %s", joinMax(st.Rcpt, 3), st.Error)
	case "failed":
		add("%s: %d %s %s", joinMax(st.Rcpt, 3), st.SMTPCode, st.Enhanced, st.Error)
	case "bounce queued", "delay notice queued":
		add("%s to %s", st.BounceMsgID, joinMax(st.Rcpt, 3))
	case "done":
		add("attempt %d, %s in the queue", st.Attempt, time.Duration(st.DurationMS)*time.Millisecond)
	case "retrieved":
		add("%s by %s", st.Command, st.User)
		add("POP3 session %s", st.SessionID)
		add("%d bytes", st.Bytes)
	case "marked deleted":
		add("DELE by %s, POP3 session %s", st.User, st.SessionID)
	case "deleted":
		add("expunged at QUIT by %s, POP3 session %s", st.User, st.SessionID)
	default:
		if len(st.Rcpt) > 0 {
			add("%s", joinMax(st.Rcpt, 3))
		}
		if st.Error != "" {
			add("%s", st.Error)
		}
	}
	return b.String()
}

// relayPeer names the next MTA: its MX name and the address connected.
func relayPeer(st *Step) string {
	peer := cmpOr(st.MX, st.Domain, "?")
	if st.MXAddr != "" {
		peer += " [" + st.MXAddr + "]"
	}
	return peer
}

func cmpOr(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
