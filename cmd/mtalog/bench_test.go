package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchLines is the size of the generated log the summary benchmark reads:
// a busy day of a small site.
const benchLines = 1_000_000

// writeGenLog writes a generated log of n lines to a file in dir.
func writeGenLog(tb testing.TB, dir string, n int) (path string, lines, msgs int) {
	tb.Helper()
	path = filepath.Join(dir, "gen.log")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	lines, msgs, err = genLog(f, n, 1)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		tb.Fatal(err)
	}
	return path, lines, msgs
}

// BenchmarkSummary reads a generated million-line log into a summary, as
// `mtalog summary` does, and reports lines per second:
//
//	go test -run '^$' -bench Summary -benchtime 5x ./cmd/mtalog/
func BenchmarkSummary(b *testing.B) {
	path, lines, msgs := writeGenLog(b, b.TempDir(), benchLines)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		s, err := summarize([]string{path}, nil, window{}, 10)
		if err != nil {
			b.Fatal(err)
		}
		if s.Lines != int64(lines) || s.Received != int64(msgs) {
			b.Fatalf("read %d lines, %d messages; want %d, %d", s.Lines, s.Received, lines, msgs)
		}
	}
	b.ReportMetric(float64(lines)*float64(b.N)/time.Since(start).Seconds(), "lines/s")
}

// benchLine is a typical acceptance line.
var benchLine = []byte(`{"level":"info","ts":"2026-12-06T03:22:29.518723122Z","msg":"message accepted","host":"exmail.qq.com","proto":"smtp","session_id":"14ke7q8gtoepdrmt","remote":"127.0.0.1:39012","msg_id":"06h4inuv0pacgip9ee10","mail_from":"usr1@mail.sustech.edu.cn","rcpt":["usr@gmail.com","nobody@gmail.com"],"bytes":458,"message_id":"<m1@mail.sustech.edu.cn>","tls":true,"auth_user":"usr1@mail.sustech.edu.cn","duration_ms":7}`)

// BenchmarkParse compares mtalog's parser with encoding/json into a struct
// of the same fields (BenchmarkParse/encoding_json), the reason the parser
// is hand-written.
func BenchmarkParse(b *testing.B) {
	b.Run("mtalog", func(b *testing.B) {
		p, l := newParser(allFields), &Line{}
		b.SetBytes(int64(len(benchLine)))
		b.ReportAllocs()
		for b.Loop() {
			if err := p.parse(benchLine, l); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		type jsonLine struct {
			TS        time.Time `json:"ts"`
			Level     string    `json:"level"`
			Msg       string    `json:"msg"`
			Host      string    `json:"host"`
			Proto     string    `json:"proto"`
			SessionID string    `json:"session_id"`
			Remote    string    `json:"remote"`
			MsgID     string    `json:"msg_id"`
			MailFrom  string    `json:"mail_from"`
			Rcpt      []string  `json:"rcpt"`
			Bytes     int64     `json:"bytes"`
			MessageID string    `json:"message_id"`
			TLS       bool      `json:"tls"`
			AuthUser  string    `json:"auth_user"`
			Duration  int64     `json:"duration_ms"`
		}
		b.SetBytes(int64(len(benchLine)))
		b.ReportAllocs()
		for b.Loop() {
			var l jsonLine
			if err := json.Unmarshal(benchLine, &l); err != nil {
				b.Fatal(err)
			}
		}
	})
}
