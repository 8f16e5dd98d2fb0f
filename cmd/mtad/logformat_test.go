package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// callerRef is what a caller annotation looks like: a Go file and line.
var callerRef = regexp.MustCompile(`\.go:\d+`)

// TestLogFormats writes one line in each format: console lines carry no
// source file:line, JSON lines are one object each with ts in RFC 3339.
func TestLogFormats(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"json", "console"} {
		var buf bytes.Buffer
		log, _, stop, err := newLogger(format, "info", &buf)
		if err != nil {
			t.Fatal(err)
		}
		log.Info("message accepted", zap.String("msg_id", "06h4abc"), zap.Strings("rcpt", []string{"a@b", "c@d"}))
		log.Warn("relay bounced", zap.String("msg_id", "06h4abc"))
		stop()
		out := buf.String()
		if callerRef.MatchString(out) {
			t.Errorf("%s: a line names its source file:\n%s", format, out)
		}
		if !strings.Contains(out, "message accepted") || !strings.Contains(out, "06h4abc") {
			t.Errorf("%s: the line is missing:\n%s", format, out)
		}
		if format != "json" {
			continue
		}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var rec struct {
				TS  string `json:"ts"`
				Msg string `json:"msg"`
			}
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatalf("not one JSON object per line: %q: %v", l, err)
			}
			if _, err := time.Parse(time.RFC3339Nano, rec.TS); err != nil {
				t.Errorf("ts %q: %v", rec.TS, err)
			}
		}
	}
	if _, _, _, err := newLogger("logfmt", "info", &bytes.Buffer{}); err == nil {
		t.Error("-log-format logfmt accepted")
	}
}

// TestConsoleLogOfARealRun starts mtad with -log-format console and checks
// that its lines name no source file:line.
func TestConsoleLogOfARealRun(t *testing.T) {
	t.Parallel()
	c := newCourse(t)
	c.extraArgs = []string{"-log-format", "console"}
	c.qq = c.startOne("exmail.qq.com", c.qqSMTP, c.qqPOP)
	c.qq.WaitLog(t, "mtad started")
	c.qq.Stop(t)
	out := c.qq.Log.String()
	if !strings.Contains(out, "mail host ready") {
		t.Fatalf("no console line of the run:\n%s", out)
	}
	if m := callerRef.FindString(out); m != "" {
		t.Errorf("a console line names its source (%s):\n%s", m, out)
	}
}
