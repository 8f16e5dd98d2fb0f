package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// genStart is when a generated log begins.
var genStart = time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)

// genLog writes a realistic log of one busy mtad with two mail hosts, of at
// least n lines, following the log contract: SMTP acceptances, local
// deliveries, relays (a few deferred, a few bounced with their DSN), queue
// lines, POP3 retrievals and deletions, refused commands and failed
// logins, with the daemon's field order and sizes. It returns the number
// of lines written and of messages accepted.
func genLog(w io.Writer, n int, seed uint64) (lines, msgs int, err error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	rng := rand.New(rand.NewPCG(seed, 42))
	g := &gen{w: bw, ts: genStart, rng: rng}
	for g.lines < n {
		g.message(msgs)
		msgs++
	}
	return g.lines, msgs, bw.Flush()
}

type gen struct {
	w     *bufio.Writer
	ts    time.Time
	rng   *rand.Rand
	lines int
}

var (
	genHosts   = []string{"exmail.qq.com", "gmail.com"}
	genDomains = []string{"mail.sustech.edu.cn", "gmail.com"}
	genUsers   = []string{"usr1", "usr2", "usr3", "alice", "bob", "carol", "dave", "erin"}
)

// line writes one line at the next instant, format being the fields after
// msg.
func (g *gen) line(level, msg, format string, a ...any) {
	g.ts = g.ts.Add(time.Duration(200+g.rng.IntN(2000)) * time.Microsecond)
	fmt.Fprintf(g.w, `{"level":%q,"ts":%q,"msg":%q,`, level, g.ts.Format(time.RFC3339Nano), msg)
	fmt.Fprintf(g.w, format, a...)
	g.w.WriteString("}\n")
	g.lines++
}

func (g *gen) id() string {
	const digits = "0123456789abcdefghijklmnopqrstuv"
	b := make([]byte, 20)
	for i := range b {
		b[i] = digits[g.rng.IntN(32)]
	}
	return string(b)
}

func (g *gen) message(i int) {
	g.ts = g.ts.Add(time.Duration(g.rng.IntN(800)) * time.Millisecond) // about 200,000 messages a day
	h := i % 2
	host, local := genHosts[h], genDomains[h]
	from := genUsers[g.rng.IntN(len(genUsers))] + "@" + local
	rdom := genDomains[g.rng.IntN(2)]
	rcpt := genUsers[g.rng.IntN(len(genUsers))] + "@" + rdom
	id, sid := g.id(), g.id()[:16]
	remote := fmt.Sprintf("10.%d.%d.%d:%d", g.rng.IntN(4), g.rng.IntN(256), g.rng.IntN(256), 30000+g.rng.IntN(30000))
	size := 600 + g.rng.IntN(40000)
	g.line("info", msgAccepted, `"host":%q,"proto":"smtp","session_id":%q,"remote":%q,"msg_id":%q,"mail_from":%q,"rcpt":[%q],"bytes":%d,"message_id":"<%s@%s>","tls":true,"auth_user":%q,"duration_ms":3`,
		host, sid, remote, id, from, rcpt, size, id, local, from)
	if i%50 == 7 {
		g.line("info", msgRefused, `"host":%q,"proto":"smtp","session_id":%q,"remote":%q,"smtp_code":550,"enhanced":"5.1.1","error":"no such user here"`, host, sid, remote)
	}
	g.line("info", msgSessionEnd, `"host":%q,"proto":"smtp","session_id":%q,"remote":%q,"duration_ms":12`, host, sid, remote)
	if rdom == local {
		g.line("info", msgDelivered, `"host":%q,"proto":"mailbox","msg_id":%q,"user":%q,"rcpt":%q,"file":"%d.M%dP4242Q%dR%s.%s,S=%d"`,
			host, id, rcpt, rcpt, g.ts.Unix(), g.ts.Nanosecond()/1000, i, id, host, size)
	} else {
		g.relay(host, id, rcpt, rdom, from)
	}
	g.line("info", msgDone, `"proto":"queue","host":%q,"msg_id":%q,"attempt":1,"duration_ms":21`, host, id)
	if i%10 == 3 {
		g.pop3(host, id, rcpt, size)
	}
	if i%200 == 11 {
		g.line("info", msgSMTPAuthFailed, `"host":%q,"proto":"smtp","session_id":%q,"remote":"198.51.100.7:40000"`, host, sid)
	}
}

func (g *gen) relay(host, id, rcpt, rdom, from string) {
	mx := "mx." + rdom
	switch r := g.rng.IntN(100); {
	case r < 3:
		g.line("warn", msgRelayBounced, `"host":%q,"proto":"relay","msg_id":%q,"rcpt":%q,"domain":%q,"mx":%q,"mx_addr":"127.0.0.1:2526","remote_reply":"550 5.1.1 no such user here","smtp_code":550,"enhanced":"5.1.1","attempt":1,"duration_ms":20`,
			host, id, rcpt, rdom, mx)
		g.line("info", msgFailed, `"proto":"queue","host":%q,"msg_id":%q,"rcpt":%q,"smtp_code":550,"enhanced":"5.1.1","error":"no such user here","attempt":1`, host, id, rcpt)
		g.line("info", msgBounceQueued, `"proto":"queue","host":%q,"msg_id":%q,"rcpt":%q,"bounce_msg_id":%q,"rcpts":1`, host, id, from, g.id())
	case r < 8:
		g.line("info", msgRelayDeferred, `"host":%q,"proto":"relay","msg_id":%q,"rcpt":%q,"domain":%q,"mx":%q,"error":"dial tcp 127.0.0.1:2526: connect: connection refused","attempt":1,"duration_ms":1`,
			host, id, rcpt, rdom, mx)
		g.line("info", msgRetry, `"proto":"queue","host":%q,"msg_id":%q,"attempt":1,"next_attempt":%q,"rcpt":[%q],"error":"connection refused"`,
			host, id, g.ts.Add(5*time.Minute).Format(time.RFC3339Nano), rcpt)
		fallthrough
	default:
		g.line("info", msgRelayDelivered, `"host":%q,"proto":"relay","msg_id":%q,"rcpt":%q,"domain":%q,"mx":%q,"mx_addr":"127.0.0.1:2526","remote_reply":"250 2.0.0 OK queued as %s","smtp_code":250,"enhanced":"2.0.0","attempt":1,"duration_ms":20`,
			host, id, rcpt, rdom, mx, g.id())
	}
}

func (g *gen) pop3(host, id, user string, size int) {
	sid := g.id()[:16]
	g.line("info", "login", `"proto":"pop3","host":%q,"session_id":%q,"remote":"10.0.0.9:50000","user":%q,"tls":true,"messages":1,"bytes":%d`, host, sid, user, size)
	g.line("info", msgRetrieved, `"proto":"pop3","host":%q,"session_id":%q,"user":%q,"command":"RETR","msg_id":%q,"bytes":%d`, host, sid, user, id, size)
	g.line("info", msgMarkedDeleted, `"proto":"pop3","host":%q,"session_id":%q,"user":%q,"msg_id":%q`, host, sid, user, id)
	g.line("info", msgDeleted, `"proto":"pop3","host":%q,"session_id":%q,"user":%q,"msg_id":%q`, host, sid, user, id)
	g.line("info", msgSessionEnd, `"proto":"pop3","host":%q,"session_id":%q,"remote":"10.0.0.9:50000","state":"UPDATE","retrieved":1,"deleted":1,"errors":0,"bytes":%d,"duration_ms":3`, host, sid, size)
}
