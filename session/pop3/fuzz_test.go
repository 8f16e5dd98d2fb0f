package pop3_test

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"gomta/session/limit"
	"gomta/session/pop3"
)

// FuzzSession feeds arbitrary bytes to a whole session over net.Pipe. The
// session must never panic, must greet, must end once the client hangs up and
// release the maildrop, and may remove messages only if the input contained
// a QUIT.
func FuzzSession(f *testing.F) {
	fuzzTLS := newCert(f).server
	for _, s := range []string{
		"USER alice\r\nPASS secret\r\nSTAT\r\nLIST\r\nRETR 1\r\nTOP 1 2\r\nUIDL\r\nDELE 1\r\nRSET\r\nDELE 2\r\nQUIT\r\n",
		"USER alice\r\nPASS secret\r\nDELE 1\r\n",
		"user alice\npass secret\nretr 2\nlist 3\nquit\n",
		"CAPA\r\nPASS x\r\nUSER\r\nNOOP\r\nQUIT\r\n",
		"UTF8\r\nUSER \xe5\xbc\xa0\r\nUSER \xff\r\nUTF8 x\r\nQUIT\r\n",
		"USER alice\r\nPASS secret\r\n" + strings.Repeat("A", 300) + "\r\nSTAT\r\n",
		"GET / HTTP/1.1\r\n\r\n",
		"\x00\xff\r\n\r\n.\r\n",
		"USER alice\r\nPASS secret\r\nTOP 1 0\r\nTOP 9 9\r\nLIST -1\r\nQUIT x\r\nQUIT\r\n",
		"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nSTAT\r\nRETR 1\r\nQUIT\r\n",
		"AUTH PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\nDELE 1\r\n",
		"AUTH PLAIN\r\n*\r\nAUTH PLAIN =\r\nAUTH PLAIN !!\r\nAUTH LOGIN\r\nAUTH\r\n",
		"AUTH PLAIN\r\n" + strings.Repeat("QUFB", 400) + "\r\nAUTH PLAIN",
		"AUTH PLAIN Ym9iAGFsaWNlAHNlY3JldA==\r\nAUTH PLAIN AGFsaWNlAA==\r\n",
		"STLS\r\nUSER alice\r\nPASS secret\r\n",
		"STLS\r\n\x16\x03\x01\x00\x05hello",
		"CAPA\r\nSTLS x\r\nSTLS\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		be := newBackend()
		srv := pop3.NewServer(pop3.Config{Hostname: host, MaxErrors: 20, IdleTimeout: ioWait, Logger: zap.NewNop(),
			TLSConfig: fuzzTLS, Limiter: limit.New(limit.Config{AuthFailures: 5})}, be)
		client, server := net.Pipe()
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			srv.ServeConn(server)
		}()
		out := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(client)
			out <- b
		}()
		client.SetWriteDeadline(time.Now().Add(ioWait))
		client.Write(data) // may fail once the server has closed: fine
		client.Close()
		select {
		case <-ended:
		case <-time.After(ioWait):
			t.Fatal("session did not end after the client hung up")
		}
		replies := <-out
		if !bytes.HasPrefix(replies, []byte("+OK "+host+" POP3 server ready\r\n")) {
			t.Fatalf("no greeting: %q", replies)
		}
		if !bytes.Contains(bytes.ToUpper(data), []byte("QUIT")) {
			if got := be.Messages("alice"); len(got) != 2 {
				t.Fatalf("messages removed without QUIT: %d left", len(got))
			}
		}
		if be.Locked("alice") {
			t.Fatal("maildrop left locked")
		}
	})
}
