package main

import (
	"strings"
	"time"
)

// criteria select the messages trace follows; one of them is set.
type criteria struct {
	MsgID     string // any line of this message
	MessageID string // the Message-ID header, angle brackets optional
	From      string // the envelope sender
	To        string // one of the envelope recipients
}

// matches reports whether an acceptance line is a message the criteria
// select.
func (c criteria) matches(l *Line) bool {
	switch {
	case c.MsgID != "":
		return l.MsgID == c.MsgID
	case c.MessageID != "":
		return l.MessageID != "" && strings.EqualFold(trimAngle(l.MessageID), trimAngle(c.MessageID))
	case c.From != "":
		return strings.EqualFold(l.MailFrom, c.From)
	case c.To != "":
		for _, r := range l.Rcpt {
			if strings.EqualFold(r, c.To) {
				return true
			}
		}
	}
	return false
}

func trimAngle(s string) string {
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "<"), ">")
}

// relation is how a followed message came to be followed.
type relation int

const (
	relRoot   relation = iota // it matched the criteria
	relHop                    // the next hop of parent (same message, next host)
	relBounce                 // the bounce parent caused
	relDelay                  // the delay notice parent caused
)

type rel struct {
	kind   relation
	parent string
}

// selection is the first pass's result: every message to follow and how
// it is linked, in the order they were found (a parent before its
// children, the log being read in time order).
type selection struct {
	crit  criteria
	rel   map[string]rel
	order []string
}

func newSelection(c criteria) *selection { return &selection{crit: c, rel: map[string]rel{}} }

func (s *selection) has(id string) bool { _, ok := s.rel[id]; return ok }

func (s *selection) add(id string, r rel) {
	if id == "" || s.has(id) {
		return
	}
	s.rel[id] = r
	s.order = append(s.order, id)
}

// scan looks at one line of the first pass: a message that matches, or a
// message linked to one already followed (its next hop as the receiving
// host claims it or as the sending host's reply names it, its bounce or
// delay notice), joins the selection.
func (s *selection) scan(l *Line) {
	switch l.Msg {
	case msgAccepted:
		if up := l.UpstreamMsgID; up != "" && s.has(up) {
			s.add(l.MsgID, rel{relHop, up})
		} else if s.crit.matches(l) {
			s.add(l.MsgID, rel{kind: relRoot})
		}
	case msgRelayDelivered:
		if s.has(l.MsgID) {
			s.add(queuedAs(l.RemoteReply), rel{relHop, l.MsgID})
		}
	case msgBounceQueued:
		if s.has(l.MsgID) {
			s.add(l.BounceMsgID, rel{relBounce, l.MsgID})
		}
	case msgDelayQueued:
		if s.has(l.MsgID) {
			s.add(l.BounceMsgID, rel{relDelay, l.MsgID})
		}
	}
	if s.crit.MsgID != "" && l.MsgID == s.crit.MsgID {
		s.add(l.MsgID, rel{kind: relRoot})
	}
}

// queuedAs is the queue id a reply names ("250 2.0.0 OK queued as ID", as
// gomta and Postfix answer the end of DATA), or "".
func queuedAs(reply string) string {
	const marker = "queued as "
	i := strings.Index(strings.ToLower(reply), marker)
	if i < 0 {
		return ""
	}
	f := strings.Fields(reply[i+len(marker):])
	if len(f) == 0 {
		return ""
	}
	return strings.Trim(f[0], "<>()[],;.")
}

// namesID reports whether reply names id as one of its words.
func namesID(reply, id string) bool {
	for _, w := range strings.Fields(reply) {
		if strings.Trim(w, "<>()[],;.:") == id {
			return true
		}
	}
	return false
}

// Trace is one followed message: every hop's steps in time order, and the
// bounces and delay notices it caused as traces of their own.
type Trace struct {
	MsgID     string   `json:"msg_id"`
	Kind      string   `json:"kind"` // message, bounce or delay notice
	Host      string   `json:"host,omitempty"`
	MessageID string   `json:"message_id,omitempty"`
	From      string   `json:"from"`
	Rcpt      []string `json:"rcpt"`
	Bytes     int64    `json:"bytes,omitempty"`
	Hops      []string `json:"hops"` // the msg_id on each host, the first one first
	Steps     []Step   `json:"steps"`
	Bounces   []*Trace `json:"bounces,omitempty"`
}

// Step is one event in a message's life, on one host.
type Step struct {
	TS          time.Time `json:"ts"`
	Step        string    `json:"step"`
	Host        string    `json:"host,omitempty"`
	MsgID       string    `json:"msg_id"`
	Level       string    `json:"level,omitempty"`
	Remote      string    `json:"remote,omitempty"`
	From        *string   `json:"from,omitempty"` // set on accepted only: "" is the null sender
	Rcpt        []string  `json:"rcpt,omitempty"`
	Bytes       int64     `json:"bytes,omitempty"`
	MessageID   string    `json:"message_id,omitempty"`
	TLS         bool      `json:"tls,omitempty"`
	AuthUser    string    `json:"auth_user,omitempty"`
	Upstream    string    `json:"upstream_msg_id,omitempty"`
	Link        string    `json:"link,omitempty"` // confirmed or claimed, with Upstream
	User        string    `json:"user,omitempty"`
	File        string    `json:"file,omitempty"`
	SessionID   string    `json:"session_id,omitempty"`
	Command     string    `json:"command,omitempty"`
	Domain      string    `json:"domain,omitempty"`
	MX          string    `json:"mx,omitempty"`
	MXAddr      string    `json:"mx_addr,omitempty"`
	RemoteReply string    `json:"remote_reply,omitempty"`
	SMTPCode    int       `json:"smtp_code,omitempty"`
	Enhanced    string    `json:"enhanced,omitempty"`
	Error       string    `json:"error,omitempty"`
	Attempt     int       `json:"attempt,omitempty"`
	NextAttempt string    `json:"next_attempt,omitempty"`
	BounceMsgID string    `json:"bounce_msg_id,omitempty"`
	DurationMS  int64     `json:"duration_ms,omitempty"`
}

// Link strengths.
const (
	// linkConfirmed: both hops agree, the receiver's upstream_msg_id names
	// the sender and the sender's reply names the receiver.
	linkConfirmed = "confirmed"
	// linkClaimed: only the receiving hop says so (any client can write a
	// Received: header).
	linkClaimed = "claimed"
	// linkNamed: only the sending hop's reply names the receiver (a far
	// side that is not gomta, or one whose reply names another message).
	linkNamed = "named by the sender only"
)

// stepNames are the steps trace shows, by log message.
var stepNames = map[string]string{
	msgAccepted: "accepted", msgDelivered: "delivered", msgRelayDelivered: "relayed",
	msgRelayDeferred: "deferred", msgRelayBounced: "bounced", msgRetry: "retry scheduled",
	msgFailed: "failed", msgBounceQueued: "bounce queued", msgDelayQueued: "delay notice queued",
	msgDone: "done", msgRetrieved: "retrieved", msgMarkedDeleted: "marked deleted", msgDeleted: "deleted",
}

func stepOf(l *Line) (Step, bool) {
	name, ok := stepNames[l.Msg]
	if !ok {
		// Other lines about the message are shown when they report a
		// problem; the rest (attempt started, debug) is noise here.
		if l.Level != "warn" && l.Level != "error" {
			return Step{}, false
		}
		name = l.Msg
	}
	st := Step{TS: time.Unix(0, l.TS).UTC(), Step: name, Host: l.Host, MsgID: l.MsgID, Level: l.Level,
		Remote: l.Remote, Bytes: l.Bytes, MessageID: l.MessageID, TLS: l.TLS, AuthUser: l.AuthUser,
		Upstream: l.UpstreamMsgID, User: l.User, File: l.File, SessionID: l.SessionID, Command: l.Command,
		Domain: l.Domain, MX: l.MX, MXAddr: l.MXAddr, RemoteReply: l.RemoteReply, SMTPCode: l.SMTPCode,
		Enhanced: l.Enhanced, Error: l.Error, Attempt: l.Attempt, NextAttempt: l.NextAttempt,
		BounceMsgID: l.BounceMsgID, DurationMS: l.DurationMS}
	if len(l.Rcpt) > 0 {
		st.Rcpt = append([]string(nil), l.Rcpt...)
	}
	if l.Msg == msgAccepted {
		from := l.MailFrom
		st.From = &from
	}
	return st, true
}
