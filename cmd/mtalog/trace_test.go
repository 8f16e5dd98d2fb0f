package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

// The handcrafted log (testdata/exmail.log and gmail.log, one file per
// host, following the log contract) and its messages.
const (
	idM1 = "06h5a1q0c0ffee000001" // usr1 → usr@gmail.com (relayed, confirmed) and nobody@gmail.com (bounced)
	idG1 = "06h5a1q2d0d0d0000002" // M1 on gmail.com: delivered, RETR, DELE, deleted
	idB1 = "06h5a1q4b0b0b0000003" // the bounce of M1 to usr1
	idM2 = "06h5a1q6aaaa00000004" // usr2 → usr@gmail.com: deferred twice, relayed at the third attempt
	idG2 = "06h5a1q8dddd00000005" // M2 on gmail.com
	idD2 = "06h5a1qaeeee00000006" // the delay notice of M2 to usr2
	idF1 = "06h5a1qcffff00000007" // a forged Received naming M1: claimed only
	idM3 = "06h5a1qe3333000000l8" // usr1 → usr2, local
)

var handcrafted = []string{"testdata/exmail.log", "testdata/gmail.log"}

// stepKeys are a trace's steps as "msg_id step" pairs.
func stepKeys(t *Trace) []string {
	var out []string
	for _, st := range t.Steps {
		out = append(out, st.MsgID+" "+st.Step)
	}
	return out
}

func TestTraceAcrossHosts(t *testing.T) {
	t.Parallel()
	traces, skipped, err := trace(handcrafted, criteria{MsgID: idM1}, window{})
	if err != nil {
		t.Fatal(err)
	}
	if skipped != 3 {
		t.Errorf("skipped %d lines, want 3", skipped)
	}
	if len(traces) != 1 {
		t.Fatalf("%d traces, want 1", len(traces))
	}
	tr := traces[0]
	want := []string{
		idM1 + " accepted", idG1 + " accepted", idM1 + " relayed", idM1 + " bounced", idM1 + " failed",
		idG1 + " delivered", idG1 + " done", idM1 + " bounce queued", idM1 + " done",
		idF1 + " accepted", idF1 + " delivered", idF1 + " done",
		idG1 + " retrieved", idF1 + " retrieved", idG1 + " marked deleted", idG1 + " deleted",
	}
	if got := stepKeys(tr); !reflect.DeepEqual(got, want) {
		t.Errorf("steps\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !reflect.DeepEqual(tr.Hops, []string{idM1, idG1, idF1}) {
		t.Errorf("hops %v", tr.Hops)
	}
	if tr.Host != "exmail.qq.com" || tr.From != "usr1@mail.sustech.edu.cn" || tr.MessageID != "<m1@mail.sustech.edu.cn>" ||
		!reflect.DeepEqual(tr.Rcpt, []string{"usr@gmail.com", "nobody@gmail.com"}) || tr.Bytes != 458 {
		t.Errorf("header %+v", tr)
	}
	links := map[string]string{}
	for _, st := range tr.Steps {
		if st.Step == "accepted" {
			links[st.MsgID] = st.Upstream + " " + st.Link
		}
	}
	wantLinks := map[string]string{idM1: " ", idG1: idM1 + " confirmed", idF1: idM1 + " claimed"}
	if !reflect.DeepEqual(links, wantLinks) {
		t.Errorf("links %v, want %v", links, wantLinks)
	}
	if len(tr.Bounces) != 1 {
		t.Fatalf("%d bounces, want 1", len(tr.Bounces))
	}
	b := tr.Bounces[0]
	if b.MsgID != idB1 || b.Kind != "bounce" || b.Host != "exmail.qq.com" || !reflect.DeepEqual(b.Rcpt, []string{"usr1@mail.sustech.edu.cn"}) ||
		!reflect.DeepEqual(stepKeys(b), []string{idB1 + " delivered", idB1 + " done"}) {
		t.Errorf("bounce %+v, steps %v", b, stepKeys(b))
	}
}

func TestTraceCriteria(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		crit  criteria
		roots []string
	}{
		{"msg_id of a later hop", criteria{MsgID: idG2}, []string{idG2}},
		{"Message-ID with brackets", criteria{MessageID: "<m2@mail.sustech.edu.cn>"}, []string{idM2}},
		{"Message-ID without", criteria{MessageID: "M2@mail.sustech.edu.cn"}, []string{idM2}},
		{"to", criteria{To: "USR@gmail.com"}, []string{idM1, idM2}},
		{"from", criteria{From: "usr2@mail.sustech.edu.cn"}, []string{idM2}},
		{"local only", criteria{To: "usr2@mail.sustech.edu.cn"}, []string{idM3}},
		{"forged, by its own id", criteria{MsgID: idF1}, []string{idF1}},
		{"nothing", criteria{From: "nobody@example.org"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			traces, _, err := trace(handcrafted, tc.crit, window{})
			if err != nil {
				t.Fatal(err)
			}
			var roots []string
			for _, tr := range traces {
				roots = append(roots, tr.MsgID)
			}
			if !reflect.DeepEqual(roots, tc.roots) {
				t.Errorf("roots %v, want %v", roots, tc.roots)
			}
		})
	}
}

func TestTraceDeferredWithDelayNotice(t *testing.T) {
	t.Parallel()
	traces, _, err := trace(handcrafted, criteria{MessageID: "<m2@mail.sustech.edu.cn>"}, window{})
	if err != nil || len(traces) != 1 {
		t.Fatalf("%d traces, %v", len(traces), err)
	}
	tr := traces[0]
	want := []string{idM2 + " accepted", idM2 + " deferred", idM2 + " retry scheduled", idM2 + " deferred", idM2 + " retry scheduled",
		idM2 + " delay notice queued", idG2 + " accepted", idM2 + " relayed", idM2 + " done", idG2 + " delivered", idG2 + " done"}
	if got := stepKeys(tr); !reflect.DeepEqual(got, want) {
		t.Errorf("steps %v\nwant %v", got, want)
	}
	first, second := tr.Steps[1], tr.Steps[3]
	if first.MXAddr != "" || !strings.Contains(first.Error, "connection refused") || first.Attempt != 1 {
		t.Errorf("first deferral %+v: want no mx_addr, the connect error", first)
	}
	if second.MXAddr != "127.0.0.1:2526" || second.SMTPCode != 421 || second.RemoteReply != "421 4.3.2 gmail.com service shutting down" {
		t.Errorf("second deferral %+v", second)
	}
	if tr.Steps[6].Link != linkConfirmed {
		t.Errorf("G2's link %q, want confirmed", tr.Steps[6].Link)
	}
	if len(tr.Bounces) != 1 || tr.Bounces[0].MsgID != idD2 || tr.Bounces[0].Kind != "delay notice" {
		t.Errorf("bounces %+v, want the delay notice %s", tr.Bounces, idD2)
	}
}

func TestTraceForgedByItsOwnID(t *testing.T) {
	t.Parallel()
	traces, _, err := trace(handcrafted, criteria{MsgID: idF1}, window{})
	if err != nil || len(traces) != 1 {
		t.Fatalf("%d traces, %v", len(traces), err)
	}
	acc := traces[0].Steps[0]
	if acc.Step != "accepted" || acc.Upstream != idM1 || acc.Link != linkClaimed || acc.Remote != "203.0.113.9:41000" {
		t.Errorf("accepted step %+v: want upstream %s claimed", acc, idM1)
	}
}

func TestTraceWindow(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	args := append([]string{"trace", "-until", "2026-12-06T09:00:01.120Z", idM1}, handcrafted...)
	if code := run(args, nil, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if n := strings.Count(out.String(), "  accepted  "); n != 1 || strings.Contains(out.String(), idG1) {
		t.Errorf("until 09:00:01.120 shows more than M1's acceptance:\n%s", out.String())
	}
	out.Reset()
	args = append([]string{"trace", "-since", "2026-12-06 09:07", idM1}, handcrafted...)
	if code := run(args, nil, &out, &errb); code != exitNoMatch {
		t.Errorf("since 09:07: exit %d, want %d (M1 is all before)", code, exitNoMatch)
	}
}

// jsonTrace is a trace as -json writes it, read back with encoding/json.
type jsonTrace struct {
	MsgID     string           `json:"msg_id"`
	Kind      string           `json:"kind"`
	Host      string           `json:"host"`
	MessageID string           `json:"message_id"`
	From      string           `json:"from"`
	Rcpt      []string         `json:"rcpt"`
	Bytes     int64            `json:"bytes"`
	Hops      []string         `json:"hops"`
	Steps     []map[string]any `json:"steps"`
	Bounces   []jsonTrace      `json:"bounces"`
}

func TestTraceJSON(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	args := append([]string{"trace", "-to", "usr@gmail.com", "-json"}, handcrafted...)
	if code := run(args, nil, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "3 lines skipped") {
		t.Errorf("stderr %q: want the skipped count", errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d documents, want 2 (M1, M2):\n%s", len(lines), out.String())
	}
	var m1 jsonTrace
	if err := json.Unmarshal([]byte(lines[0]), &m1); err != nil {
		t.Fatal(err)
	}
	if m1.MsgID != idM1 || m1.Kind != "message" || m1.Host != "exmail.qq.com" || m1.MessageID != "<m1@mail.sustech.edu.cn>" ||
		m1.From != "usr1@mail.sustech.edu.cn" || len(m1.Rcpt) != 2 || m1.Bytes != 458 || len(m1.Hops) != 3 || len(m1.Steps) != 16 {
		t.Errorf("M1 %+v", m1)
	}
	checks := []struct {
		i      int
		fields map[string]any
	}{
		{0, map[string]any{"step": "accepted", "ts": "2026-12-06T09:00:01.1Z", "host": "exmail.qq.com", "msg_id": idM1,
			"remote": "127.0.0.1:39012", "from": "usr1@mail.sustech.edu.cn", "tls": true, "auth_user": "usr1@mail.sustech.edu.cn", "bytes": 458.0}},
		{1, map[string]any{"step": "accepted", "host": "gmail.com", "msg_id": idG1, "upstream_msg_id": idM1, "link": "confirmed"}},
		{2, map[string]any{"step": "relayed", "rcpt": []any{"usr@gmail.com"}, "mx": "gmail-smtp-in.l.google.com", "mx_addr": "127.0.0.1:2526",
			"remote_reply": "250 2.0.0 OK queued as " + idG1, "smtp_code": 250.0, "attempt": 1.0}},
		{3, map[string]any{"step": "bounced", "level": "warn", "smtp_code": 550.0, "enhanced": "5.1.1"}},
		{5, map[string]any{"step": "delivered", "user": "usr@gmail.com", "file": "1796547601.M140000P4242Q1R" + idG1 + ".gmail.com,S=617"}},
		{7, map[string]any{"step": "bounce queued", "bounce_msg_id": idB1, "rcpt": []any{"usr1@mail.sustech.edu.cn"}}},
		{9, map[string]any{"step": "accepted", "msg_id": idF1, "upstream_msg_id": idM1, "link": "claimed"}},
		{12, map[string]any{"step": "retrieved", "command": "RETR", "user": "usr@gmail.com", "session_id": "ftea7l9uldailbu1", "bytes": 617.0}},
		{14, map[string]any{"step": "marked deleted", "msg_id": idG1, "session_id": "ftea7l9uldailbu1"}},
		{15, map[string]any{"step": "deleted", "msg_id": idG1, "user": "usr@gmail.com"}},
	}
	for _, c := range checks {
		for k, v := range c.fields {
			if got := m1.Steps[c.i][k]; !reflect.DeepEqual(got, v) {
				t.Errorf("step %d %s = %#v, want %#v", c.i, k, got, v)
			}
		}
	}
	if len(m1.Bounces) != 1 || m1.Bounces[0].MsgID != idB1 || m1.Bounces[0].From != "" || len(m1.Bounces[0].Steps) != 2 {
		t.Errorf("bounces %+v", m1.Bounces)
	}
}

func TestTraceExitStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"no match", append([]string{"trace", "-from", "nobody@example.org"}, handcrafted...), exitNoMatch},
		{"no criterion", []string{"trace"}, exitUsage},
		{"two criteria", append([]string{"trace", "-from", "a@b", "-to", "c@d"}, handcrafted...), exitUsage},
		{"no file", []string{"trace", idM1}, exitUsage},
		{"missing file", []string{"trace", idM1, "testdata/nonexistent.log"}, exitUsage},
		{"bad time", append([]string{"trace", "-since", "yesterday", idM1}, handcrafted...), exitUsage},
		{"unknown command", []string{"grep"}, exitUsage},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		if code := run(tc.args, nil, &out, &errb); code != tc.code {
			t.Errorf("%s: exit %d, want %d (stderr %q)", tc.name, code, tc.code, errb.String())
		}
	}
}

// TestTraceStdinGzip reads one host's log gzip'd from standard input (copied
// aside for the second pass) and the other's from its file.
func TestTraceStdinGzip(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(handcrafted[0])
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	var out, errb bytes.Buffer
	if code := run([]string{"trace", idM1, "-", handcrafted[1]}, &gz, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"relayed", "(confirmed link)", "(claimed link)", "retrieved", "bounce " + idB1} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
