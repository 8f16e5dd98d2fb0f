package smtpclient

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
)

// benchServer is a minimal allocation-free SMTP responder, so that the
// benchmark's allocation count is the client's.
func benchServer(b *testing.B, pipelining bool) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	ehlo := "250 bench\r\n"
	if pipelining {
		ehlo = "250-bench\r\n250 PIPELINING\r\n"
	}
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r, w := bufio.NewReader(conn), bufio.NewWriter(conn)
		w.WriteString("220 bench\r\n")
		w.Flush()
		inData := false
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			switch {
			case inData:
				if bytes.Equal(line, []byte(".\r\n")) {
					inData = false
					w.WriteString("250 2.0.0 ok\r\n")
				}
			case bytes.HasPrefix(line, []byte("EHLO")):
				w.WriteString(ehlo)
			case bytes.HasPrefix(line, []byte("DATA")):
				inData = true
				w.WriteString("354 go\r\n")
			case bytes.HasPrefix(line, []byte("QUIT")):
				w.WriteString("221 bye\r\n")
				w.Flush()
				return
			default:
				w.WriteString("250 2.1.0 ok\r\n")
			}
			if r.Buffered() == 0 {
				w.Flush()
			}
		}
	}()
	return ln.Addr().String()
}

func BenchmarkSend(b *testing.B) {
	body := []byte(strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n", 64))
	rcpts := []string{"a@b.test", "c@b.test"}
	for _, pl := range []bool{false, true} {
		name := "stepwise"
		if pl {
			name = "pipelined"
		}
		b.Run(name, func(b *testing.B) {
			c, err := Dial(context.Background(), benchServer(b, pl), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Quit()
			rd := bytes.NewReader(body)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				rd.Reset(body)
				if _, err := c.Send("me@a.test", rcpts, rd); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
