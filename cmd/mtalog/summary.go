package main

import (
	"cmp"
	"net"
	"slices"
	"strings"
	"time"
)

// Summary is what `mtalog summary` reports, as pflogsumm does for Postfix.
// Counts are per mail host: a message relayed from one gomta host to
// another is received once on each.
type Summary struct {
	First   time.Time `json:"first,omitzero"` // the first line's time
	Last    time.Time `json:"last,omitzero"`  // the last line's time
	Lines   int64     `json:"lines"`          // gomta lines read in the window
	Skipped int64     `json:"skipped"`        // lines that are not gomta JSON

	Received       int64 `json:"received"`        // message accepted
	ReceivedBytes  int64 `json:"received_bytes"`  // their size
	DeliveredLocal int64 `json:"delivered_local"` // recipients written into a mailbox
	Relayed        int64 `json:"relayed"`         // recipients the next MTA took
	Deferred       int64 `json:"deferred"`        // relay attempts deferred, per recipient
	Bounced        int64 `json:"bounced"`         // recipients failed for good (the queue's decision)
	BouncesSent    int64 `json:"bounces_sent"`    // DSNs queued for failed recipients
	DelayNotices   int64 `json:"delay_notices"`   // DSNs queued for late recipients
	Refused        int64 `json:"refused"`         // SMTP commands refused

	RefusedBy  []Refusal    `json:"refused_by"`
	Delay      DelayStats   `json:"delay"`
	Domains    []DomainRow  `json:"domains"`
	Senders    []Count      `json:"top_senders"`
	Recipients []Count      `json:"top_recipients"`
	Hourly     []HourRow    `json:"hourly"`
	Clients    []ClientRow  `json:"clients"`
	Hosts      []HostRow    `json:"hosts"`
	Delays     []DelayRange `json:"delay_ranges"`
}

// Refusal is one kind of refused SMTP command: its reply and how often.
type Refusal struct {
	Code     int    `json:"smtp_code"`
	Enhanced string `json:"enhanced"`
	Reason   string `json:"reason"`
	Count    int64  `json:"count"`
}

// DomainRow is one domain's traffic: as the sender's domain of received
// mail, and as the recipient's domain of deliveries.
type DomainRow struct {
	Domain        string `json:"domain"`
	Received      int64  `json:"received"`
	ReceivedBytes int64  `json:"received_bytes"`
	Delivered     int64  `json:"delivered"` // locally or relayed
	Deferred      int64  `json:"deferred"`
	Bounced       int64  `json:"bounced"`
}

// Count is an address and its number of messages.
type Count struct {
	Key   string `json:"address"`
	Count int64  `json:"count"`
}

// HourRow is one hour (UTC) of traffic.
type HourRow struct {
	Hour      time.Time `json:"hour"`
	Received  int64     `json:"received"`
	Delivered int64     `json:"delivered"`
}

// ClientRow is one client address (without its port): sessions and
// failed logins.
type ClientRow struct {
	Addr         string `json:"addr"`
	SMTP         int64  `json:"smtp_sessions"`
	POP3         int64  `json:"pop3_sessions"`
	AuthFailures int64  `json:"auth_failures"`
}

// HostRow is one mail host's traffic.
type HostRow struct {
	Host      string `json:"host"`
	Received  int64  `json:"received"`
	Delivered int64  `json:"delivered_local"`
	Relayed   int64  `json:"relayed"`
	Deferred  int64  `json:"deferred"`
	Bounced   int64  `json:"bounced"`
}

// summer accumulates a Summary line by line. Its memory is the messages
// accepted and not yet done (for their delays), plus one entry per
// distinct domain, address, client, host and hour: never the lines.
type summer struct {
	s        Summary
	open     map[string]int64 // msg_id → accepted at (ns), until message done
	refused  map[Refusal]int64
	domains  map[string]*DomainRow
	senders  map[string]int64
	rcpts    map[string]int64
	hours    map[int64]*HourRow
	clients  map[string]*ClientRow
	hosts    map[string]*HostRow
	delays   histogram
	minTS    int64
	maxTS    int64
	seenLine bool
}

func newSummer() *summer {
	return &summer{open: map[string]int64{}, refused: map[Refusal]int64{}, domains: map[string]*DomainRow{},
		senders: map[string]int64{}, rcpts: map[string]int64{}, hours: map[int64]*HourRow{},
		clients: map[string]*ClientRow{}, hosts: map[string]*HostRow{}}
}

// add counts one line.
func (m *summer) add(l *Line) {
	m.s.Lines++
	if !m.seenLine || l.TS < m.minTS {
		m.minTS = l.TS
	}
	if !m.seenLine || l.TS > m.maxTS {
		m.maxTS = l.TS
	}
	m.seenLine = true
	switch l.Msg {
	case msgAccepted:
		m.accepted(l)
	case msgDelivered:
		m.s.DeliveredLocal++
		m.host(l.Host).Delivered++
		m.delivered(l)
	case msgRelayDelivered:
		m.s.Relayed++
		m.host(l.Host).Relayed++
		m.delivered(l)
	case msgRelayDeferred:
		m.s.Deferred++
		m.host(l.Host).Deferred++
		for _, r := range l.Rcpt {
			m.domain(domainOf(r)).Deferred++
		}
	case msgFailed:
		m.s.Bounced++
		m.host(l.Host).Bounced++
		for _, r := range l.Rcpt {
			m.domain(domainOf(r)).Bounced++
		}
	case msgBounceQueued:
		m.s.BouncesSent++
	case msgDelayQueued:
		m.s.DelayNotices++
	case msgDone:
		delete(m.open, l.MsgID)
	case msgRefused:
		m.s.Refused++
		m.refused[Refusal{Code: l.SMTPCode, Enhanced: l.Enhanced, Reason: l.Error}]++
	case msgSessionEnd:
		c := m.client(l.Remote)
		switch l.Proto {
		case "smtp":
			c.SMTP++
		case "pop3":
			c.POP3++
		}
	case msgSMTPAuthFailed, msgSMTPLockedOut, msgPOP3LoginFailed, msgPOP3LockedOut:
		m.client(l.Remote).AuthFailures++
	}
}

func (m *summer) accepted(l *Line) {
	m.s.Received++
	m.s.ReceivedBytes += l.Bytes
	m.host(l.Host).Received++
	m.hour(l.TS).Received++
	d := m.domain(domainOf(l.MailFrom))
	d.Received++
	d.ReceivedBytes += l.Bytes
	m.senders[senderKey(l.MailFrom)]++
	for _, r := range l.Rcpt {
		m.rcpts[strings.ToLower(r)]++
	}
	if l.MsgID != "" {
		m.open[l.MsgID] = l.TS
	}
}

// delivered counts one recipient delivered (into a mailbox or to the next
// MTA), with its delay from the message's acceptance on this host.
func (m *summer) delivered(l *Line) {
	m.hour(l.TS).Delivered++
	for _, r := range l.Rcpt {
		m.domain(domainOf(r)).Delivered++
	}
	if at, ok := m.open[l.MsgID]; ok && l.TS >= at {
		m.delays.add(l.TS - at)
	}
}

func (m *summer) host(h string) *HostRow {
	r := m.hosts[h]
	if r == nil {
		r = &HostRow{Host: h}
		m.hosts[h] = r
	}
	return r
}

func (m *summer) domain(d string) *DomainRow {
	r := m.domains[d]
	if r == nil {
		r = &DomainRow{Domain: d}
		m.domains[d] = r
	}
	return r
}

func (m *summer) hour(ts int64) *HourRow {
	h := ts - ts%int64(time.Hour)
	r := m.hours[h]
	if r == nil {
		r = &HourRow{Hour: time.Unix(0, h).UTC()}
		m.hours[h] = r
	}
	return r
}

func (m *summer) client(remote string) *ClientRow {
	addr := remote
	if host, _, err := net.SplitHostPort(remote); err == nil {
		addr = host
	}
	if addr == "" {
		addr = "(unknown)"
	}
	r := m.clients[addr]
	if r == nil {
		r = &ClientRow{Addr: addr}
		m.clients[addr] = r
	}
	return r
}

// domainOf is the domain of an address, lower-cased; "<>" for the null
// sender.
func domainOf(addr string) string {
	if addr == "" || addr == "<>" {
		return "<>"
	}
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(addr[i+1:])
	}
	return "(none)"
}

func senderKey(from string) string {
	if from == "" {
		return "<>"
	}
	return strings.ToLower(from)
}

// result is the summary with every table sorted, top lists cut to top.
func (m *summer) result(top int, skipped int64) Summary {
	s := m.s
	s.Skipped = skipped
	if m.seenLine {
		s.First, s.Last = time.Unix(0, m.minTS).UTC(), time.Unix(0, m.maxTS).UTC()
	}
	for r, n := range m.refused {
		r.Count = n
		s.RefusedBy = append(s.RefusedBy, r)
	}
	slices.SortFunc(s.RefusedBy, func(a, b Refusal) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Code, b.Code), strings.Compare(a.Reason, b.Reason))
	})
	s.Domains = sortedRows(m.domains, func(a, b *DomainRow) int {
		return cmp.Or(cmp.Compare(b.Received+b.Delivered, a.Received+a.Delivered), strings.Compare(a.Domain, b.Domain))
	})
	s.Senders, s.Recipients = topCounts(m.senders, top), topCounts(m.rcpts, top)
	s.Hourly = sortedRows(m.hours, func(a, b *HourRow) int { return a.Hour.Compare(b.Hour) })
	s.Clients = sortedRows(m.clients, func(a, b *ClientRow) int {
		return cmp.Or(cmp.Compare(b.AuthFailures, a.AuthFailures), cmp.Compare(b.SMTP+b.POP3, a.SMTP+a.POP3), strings.Compare(a.Addr, b.Addr))
	})
	s.Hosts = sortedRows(m.hosts, func(a, b *HostRow) int { return strings.Compare(a.Host, b.Host) })
	s.Delay = m.delays.stats()
	s.Delays = m.delays.ranges()
	return s
}

func sortedRows[K comparable, R any](m map[K]*R, less func(a, b *R) int) []R {
	ptrs := make([]*R, 0, len(m))
	for _, r := range m {
		ptrs = append(ptrs, r)
	}
	slices.SortFunc(ptrs, less)
	rows := make([]R, len(ptrs))
	for i, p := range ptrs {
		rows[i] = *p
	}
	return rows
}

func topCounts(m map[string]int64, top int) []Count {
	out := make([]Count, 0, len(m))
	for k, n := range m {
		out = append(out, Count{k, n})
	}
	slices.SortFunc(out, func(a, b Count) int { return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Key, b.Key)) })
	if top >= 0 && len(out) > top {
		out = out[:top]
	}
	return out
}
