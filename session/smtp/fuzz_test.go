package smtp

import (
	"bytes"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"gomta/session/address"
	"gomta/session/limit"
)

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"MAIL FROM:<a@example.org> SIZE=100 BODY=8BITMIME",
		"MAIL FROM:<用户@例子.中国> SMTPUTF8 BODY=8BITMIME",
		"RCPT TO:<张三@xn--fsqu00a.xn--fiqs8s>",
		"mail from:<>",
		"RCPT TO:<Postmaster>",
		`RCPT TO:<"quoted \" local"@[IPv6:::1]>`,
		"RCPT TO:<@a.example,@b.example:u@c.example>",
		"RCPT TO:<u@[tag:x]> NOTIFY=NEVER",
		"EHLO [127.0.0.1]",
		"MAIL FROM:<a@b> SIZE=99999999999999999999999",
		"MAIL FROM: <\"a>b\"@c>",
		"GET / HTTP/1.1",
		"\x00\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		verb, arg := parseCommand(line)
		if verb != strings.ToUpper(verb) {
			t.Fatalf("verb %q not upper-cased", verb)
		}
		kw := map[string]string{"MAIL": "FROM", "RCPT": "TO"}[verb]
		if kw == "" {
			return
		}
		pa, err := parsePathArg(arg, kw)
		if err != nil {
			if pa.addr != "" && pa.params != nil {
				t.Fatalf("error %v with a result %+v", err, pa)
			}
			return
		}
		if verb == "MAIL" {
			parseMailParams(pa.params)
		}
		if pa.addr == "" || (kw == "TO" && strings.EqualFold(pa.addr, "postmaster")) {
			return
		}
		if len(pa.addr)+2 > address.MaxPath {
			t.Fatalf("accepted %q: path too long", pa.addr)
		}
		if err := address.CheckUTF8(pa.addr); err != nil {
			t.Fatalf("accepted %q, which is not a mailbox: %v", pa.addr, err)
		}
		at := strings.LastIndexByte(pa.addr, '@')
		if at > address.MaxLocalPart || strings.ContainsAny(pa.addr, " \r\n\x00<>") && pa.addr[0] != '"' {
			t.Fatalf("accepted %q", pa.addr)
		}
		for i := 0; i < len(pa.addr); i++ {
			if pa.addr[i] < 0x20 || pa.addr[i] == 0x7f {
				t.Fatalf("accepted %q with a control octet", pa.addr)
			}
		}
	})
}

func FuzzDataReader(f *testing.F) {
	for _, s := range []string{
		".\r\n",
		"a\r\n..b\r\n.\r\n",
		"a\n.\nb\r\n.\r\n",
		"a\r.\rb\r\n.\r\n",
		"a\r\n.\nMAIL FROM:<x@y>\r\n.\r\n",
		"a\n.\r\nb\r\n.\r\n",
		"a\r\n.\rb\r\n.\r\n",
		"\x00\r\n\x00.\r\n.\r\n",
		strings.Repeat("x", 1001) + "\r\n.\r\n",
		"no end\r\n",
		"Received: a\r\nreceived : b\r\n\tReceived: c\r\nRECEIVED: d\r\n\r\nReceived: e\r\n.\r\n",
	} {
		f.Add([]byte(s), uint8(0), uint8(0))
		f.Add([]byte(s), uint8(1), uint8(6))
	}
	f.Fuzz(func(t *testing.T, in []byte, buf, chunk uint8) {
		checkData(t, in, 16+int(buf), 1+int(chunk), 64+int64(chunk)*8)
	})
}

// eofConn is the server's end of a pipe that reads io.EOF once the client's
// input was read whole, like a TCP connection the client half-closed.
type eofConn struct {
	net.Conn
	left int
}

func (c *eofConn) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, io.EOF
	}
	n, err := c.Conn.Read(p[:min(len(p), c.left)])
	c.left -= n
	return n, err
}

// FuzzSession feeds arbitrary bytes to a whole session over net.Pipe, in one
// write or, when byLine, one line per write (a net.Pipe read never joins two
// writes, so the session sees no input pipelined after a command that ends a
// group, RFC 2920 §3.1, and runs the rest). The session must not panic (it
// would be recovered: the log tells), must end, and must answer only
// well-formed reply lines.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"EHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
		"HELO x\r\nMAIL FROM:<> SIZE=1\r\nRCPT TO:<Postmaster>\r\nDATA\r\na\n.\nb\r\n.\r\nNOOP\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n" + strings.Repeat("y", 2000) + "\r\n.\r\nRSET\r\n",
		"GET / HTTP/1.1\r\n\r\n",
		strings.Repeat("x", 600) + "\r\nNOOP\r\nVRFY a\r\nHELP\r\nEXPN b\r\n",
		"EHLO\r\nRSET x\r\nDATA\r\nRCPT TO:<a@b>\r\nFOO\r\n\r\n\n\r",
		"EHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\npartial",
		"EHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<1@e.f>\r\nRCPT TO:<2@e.f>\r\nRCPT TO:<3@e.f>\r\nRCPT TO:<4@e.f>\r\n",
		"EHLO x\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nAUTH PLAIN\r\nMAIL FROM:<a@b.c>\r\n",
		"EHLO x\r\nAUTH PLAIN\r\nAGFsaWNlAGd1ZXNz\r\nAUTH PLAIN\r\n*\r\nAUTH PLAIN =\r\nAUTH PLAIN !!\r\n",
		"EHLO x\r\nAUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\nAUTH LOGIN YWxpY2U=\r\n*\r\nAUTH CRAM-MD5\r\nAUTH\r\n",
		"EHLO x\r\nAUTH PLAIN AGFsaWNlAGd1ZXNz\r\nAUTH PLAIN AGFsaWNlAGd1ZXNz\r\nAUTH PLAIN AGFsaWNlAGd1ZXNz\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.c>\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nSTARTTLS\r\nRSET\r\n",
		"EHLO x\r\nSTARTTLS x\r\nSTARTTLS\r\nRSET\r\nMAIL FROM:<a@b.c>\r\n",
		"STARTTLS\r\nAUTH PLAIN\r\n" + strings.Repeat("QQ", 7000) + "\r\n",
		"EHLO x\r\nSTARTTLS\r\n\x16\x03\x01\x00\x05hello",
		"EHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nBDAT 5\r\nhi\r\nBDAT 6 LAST\r\nQUIT\r\nNOOP\r\n",
		"EHLO x\r\nBDAT 3\r\nabcMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nBDAT 2\r\na\rDATA\r\nBDAT 1 last\r\n\nRSET\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nBDAT 5000\r\n" + strings.Repeat("z", 5000) + "BDAT 0 LAST\r\nNOOP\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nBDAT 99\r\nshort",
		"EHLO x\r\nBDAT\r\nBDAT 1 FIRST\r\nBDAT -1\r\n",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	replyLine := regexp.MustCompile(`^[2-5][0-9][0-9]([ -].*)?$`)
	tlsCfg := serverTLS(f)
	f.Fuzz(func(t *testing.T, in []byte, byLine bool) {
		core, logs := observer.New(zap.DebugLevel)
		cfg := Config{MaxSize: 4096, MaxRcpts: 3, MaxErrors: 5, CmdTimeout: 5 * time.Second,
			DataTimeout: 5 * time.Second, Logger: zap.New(core),
			TLSConfig: tlsCfg, Auth: testAuth, AllowPlainAuth: allowAll,
			Limiter: limit.New(limit.Config{AuthFailures: 2})}
		cc, _, done := pipeSession(cfg, &fakeBackend{keep: 1}, func(c net.Conn) net.Conn { return &eofConn{c, len(in)} })
		defer cc.Close()
		go func() {
			defer func() { recover() }()
			if !byLine {
				cc.Write(in) // fails if the server closed first: fine
				return
			}
			for rest := in; len(rest) > 0; {
				n := bytes.IndexByte(rest, '\n') + 1
				if n == 0 {
					n = len(rest)
				}
				if _, err := cc.Write(rest[:n]); err != nil {
					return
				}
				rest = rest[n:]
			}
		}()
		out, _ := io.ReadAll(cc)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("session did not end")
		}
		if n := logs.FilterMessage("session panic").Len(); n > 0 {
			t.Fatalf("session panicked on %q: %v", in, logs.FilterMessage("session panic").All()[0].ContextMap())
		}
		// After "220 Ready to start TLS" the server speaks TLS (alerts): not checked.
		if i := bytes.Index(out, []byte("220 2.0.0 Ready to start TLS\r\n")); i >= 0 {
			out = out[:i+len("220 2.0.0 Ready to start TLS\r\n")]
		}
		if len(out) > 0 && !bytes.HasSuffix(out, []byte("\r\n")) {
			t.Fatalf("output does not end with CRLF: %q", out)
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(out), "\r\n"), "\r\n") {
			if len(out) > 0 && !replyLine.MatchString(line) {
				t.Fatalf("malformed reply line %q for input %q", line, in)
			}
		}
	})
}
