package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gomta/mta/mtatest"
	"gomta/session/smtp"
)

// stallBackend holds the reply to the first message's final dot for stall.
type stallBackend struct {
	sinkBackend
	stall   time.Duration
	stalled atomic.Bool
}

func (b *stallBackend) NewMessage(ctx context.Context, p *smtp.Peer) (smtp.MessageWriter, error) {
	m, _ := b.sinkBackend.NewMessage(ctx, p)
	return &stallMessage{MessageWriter: m, be: b}, nil
}

type stallMessage struct {
	smtp.MessageWriter
	be *stallBackend
}

func (m *stallMessage) Commit(ctx context.Context, from string, rcpts []string) error {
	if m.be.stalled.CompareAndSwap(false, true) {
		time.Sleep(m.be.stall)
	}
	return m.MessageWriter.Commit(ctx, from, rcpts)
}

// TestOpenLoopCorrectsCoordinatedOmission: one worker, 50 msg/s for a
// second, and the server holds the first reply for 300 ms. The messages
// intended during the stall wait for the worker: their corrected latency
// includes that wait (it exceeds their service time by at least the time
// from their intended send to the end of the stall), while their service
// time does not. Only lower bounds are asserted, never speed.
func TestOpenLoopCorrectsCoordinatedOmission(t *testing.T) {
	t.Parallel()
	const stall = 300 * time.Millisecond
	be := &stallBackend{stall: stall}
	addr, _ := startSMTP(t, be)
	cfg := &smtpConfig{
		common: common{addr: addr, conc: 1, timeout: time.Minute, cmdTimeout: defaultCmdTimeout},
		size:   200, rcpts: 1, from: "load@localhost", to: "user@example.test", toN: 1, reuse: 1000,
		helo: "load", runID: "CO", rates: rateList{50},
		open: openConfig{on: true, step: time.Second, slo: 100 * time.Millisecond, sched: stepSchedule([]float64{50}, time.Second)},
	}
	res := loadOpen(cfg, addr, io.Discard)
	recs := slices.Clone(res.records)
	slices.SortFunc(recs, func(a, b sendRecord) int { return int(a.intended - b.intended) })
	if len(recs) != 50 {
		t.Fatalf("%d records, want 50", len(recs))
	}
	first := recs[0]
	if !first.ok || first.service() < stall {
		t.Fatalf("first message: ok %v, service %v, want ≥ %v (the stall)", first.ok, first.service(), stall)
	}
	waited := 0
	for _, r := range recs[1:] {
		if !r.ok {
			t.Fatalf("message at %v failed", r.intended)
		}
		if r.start < first.end {
			t.Fatalf("message intended at %v started at %v, before the stalled one ended (%v): one worker", r.intended, r.start, first.end)
		}
		if r.intended < first.end {
			waited++
			if wait := r.corrected() - r.service(); wait < first.end-r.intended {
				t.Errorf("message intended at %v: corrected %v − service %v = %v, want ≥ %v (its wait)",
					r.intended, r.corrected(), r.service(), wait, first.end-r.intended)
			}
		}
	}
	if waited < 14 { // intended at 20, 40, …, 280 ms: all before the stall ended
		t.Errorf("%d messages waited for the stall, want ≥ 14", waited)
	}
	rep := res.report()
	s := rep.OpenLoop.Steps[0]
	// Ten messages (intended at 20..200 ms) waited ≥ 100 ms: 11 of 50 ≥ 100 ms, so p90 corrected is.
	if s.Corrected.P90 < 100 || s.Sent != 50 || s.OK != 50 || s.Errors != 0 || s.Sustained {
		t.Errorf("step %+v: want corrected p90 ≥ 100 ms, 50 sent and ok, not sustained", s)
	}
	checkCorrectedNotBelowService(t, rep.OpenLoop.Steps)
}

func checkCorrectedNotBelowService(t *testing.T, steps []openStep) {
	t.Helper()
	for _, s := range steps {
		c, v := s.Corrected, s.Service
		if c.P50 < v.P50 || c.P90 < v.P90 || c.P99 < v.P99 || c.P999 < v.P999 || c.Max < v.Max {
			t.Errorf("step %g: corrected %+v below service %+v", s.Rate, c, v)
		}
	}
}

// TestOpenLoopAgainstMtad: two one-second steps (50 and 100 msg/s) into a
// real mtad deliver every message exactly once; the JSON has both latency
// sets per step, and the HTML report is well formed with a chart each.
func TestOpenLoopAgainstMtad(t *testing.T) {
	t.Parallel()
	path, p := mtatest.Course(t, "")
	mtatest.StartDaemon(t, []string{"-config", path, "-n", "exmail.qq.com", "-data", t.TempDir()}, p[0], p[1])
	dir := t.TempDir()
	acked, jsonFile, htmlFile := filepath.Join(dir, "acked.txt"), filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html")
	const user = "usr1@mail.sustech.edu.cn"
	var out, errb bytes.Buffer
	code := run([]string{"smtp", "-open", "-rate", "50,100", "-step", "1s", "-c", "8", "-reuse", "10",
		"-addr", mtatest.Addr(p[0]), "-from", "usr2@mail.sustech.edu.cn", "-to", user,
		"-acked", acked, "-json", jsonFile, "-html", htmlFile, "-progress", "0"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "max sustained rate:") {
		t.Errorf("text report lacks the open-loop table:\n%s", out.String())
	}
	var rep report
	data, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.OpenLoop == nil || rep.MaxSustainedRate == nil || len(rep.OpenLoop.Steps) != 2 {
		t.Fatalf("JSON lacks the open-loop section:\n%s", data)
	}
	for i, s := range rep.OpenLoop.Steps {
		if want := []int64{50, 100}[i]; s.Scheduled != want || s.Sent != want || s.OK != want || s.Errors != 0 {
			t.Errorf("step %d: %+v, want %d scheduled, sent and ok", i, s, want)
		}
		if s.Corrected.Max <= 0 || s.Service.Max <= 0 {
			t.Errorf("step %d lacks a latency set: %+v", i, s)
		}
	}
	checkCorrectedNotBelowService(t, rep.OpenLoop.Steps)
	for _, k := range []string{`"max_sustained_rate"`, `"achieved_rate"`, `"corrected"`, `"service"`, `"p999"`, `"sustained"`} {
		if !bytes.Contains(data, []byte(k)) {
			t.Errorf("JSON lacks %s", k)
		}
	}
	mtatest.WaitMailbox(t, mtatest.Addr(p[1]), user, "pass1", 150)
	var v verifyReport
	if code, stderr := runJSON(t, &v, "verify", "-acked", acked, "-pop", mtatest.Addr(p[1]), "-pass", "pass1"); code != exitOK ||
		v.Acked != 150 || v.Delivered != 150 || v.Lost != 0 || v.Duplicated != 0 {
		t.Errorf("verify: exit %d %+v %s", code, v, stderr)
	}
	page, err := os.ReadFile(htmlFile)
	if err != nil {
		t.Fatal(err)
	}
	checkHTML(t, string(page), 4)
}

// checkHTML checks the report's structure: a whole document, no external
// resource, and want SVG charts each well-formed XML.
func checkHTML(t *testing.T, page string, want int) {
	t.Helper()
	if !strings.HasPrefix(page, "<!DOCTYPE html>") || !strings.HasSuffix(strings.TrimSpace(page), "</html>") {
		t.Errorf("not a whole HTML document")
	}
	for _, bad := range []string{"<script", "<link", "src=", "@import"} {
		if strings.Contains(page, bad) {
			t.Errorf("HTML holds %q: must be self-contained", bad)
		}
	}
	for _, tag := range []string{"table", "tr", "figure"} {
		if o, c := strings.Count(page, "<"+tag+">")+strings.Count(page, "<"+tag+" "), strings.Count(page, "</"+tag+">"); o != c {
			t.Errorf("<%s> opened %d times, closed %d", tag, o, c)
		}
	}
	n := 0
	for rest := page; ; n++ {
		i := strings.Index(rest, "<svg")
		if i < 0 {
			break
		}
		j := strings.Index(rest[i:], "</svg>")
		if j < 0 {
			t.Fatalf("unterminated <svg>")
		}
		part := rest[i : i+j+len("</svg>")]
		d := xml.NewDecoder(strings.NewReader(part))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("SVG %d is not well-formed: %v\n%s", n, err, part)
			}
		}
		rest = rest[i+j:]
	}
	if n != want {
		t.Errorf("%d SVG charts, want %d", n, want)
	}
}

func TestScheduleSteps(t *testing.T) {
	t.Parallel()
	s := stepSchedule([]float64{50, 100}, 2*time.Second)
	if s.total() != 300 || s.length() != 4*time.Second || s[1].offset != 2*time.Second || s[1].count != 200 {
		t.Fatalf("schedule %+v: total %d, length %v", s, s.total(), s.length())
	}
	if got := s[1].at(10); got != 100*time.Millisecond {
		t.Errorf("message 10 at 100 msg/s intended at %v, want 100ms", got)
	}
}

func TestScheduleRamp(t *testing.T) {
	t.Parallel()
	s := rampSchedule(100, 300, 10*time.Second, 10)
	// Arrivals: the area under the rate, (100+300)/2 × 10 s.
	if n := s.total(); n < 1990 || n > 2000 || len(s) != 10 || s.length() != 10*time.Second {
		t.Fatalf("ramp: %d messages over %v in %d segments", n, s.length(), len(s))
	}
	for _, g := range s {
		prev := time.Duration(-1)
		for k := range g.count {
			at := g.at(k)
			if at <= prev || at > g.dur {
				t.Fatalf("segment %+v: message %d at %v after %v", g, k, at, prev)
			}
			prev = at
		}
		// A rising rate: the second half holds more messages than the first.
		half := int64(0)
		for k := range g.count {
			if g.at(k) < g.dur/2 {
				half++
			}
		}
		if half*2 > g.count+1 {
			t.Errorf("segment %g→%g: %d of %d in the first half", g.from, g.to, half, g.count)
		}
	}
}

func TestOpenFlags(t *testing.T) {
	t.Parallel()
	fs := newFlagSet("smtp", "", io.Discard)
	var cfg smtpConfig
	cfg.register(fs)
	if _, done := parseFlags(fs, []string{"-json", "out.json", "-to", "a@b", "-open", "-rate", "250, 500", "-step", "2s"}); done {
		t.Fatal("flags refused")
	}
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	if cfg.jsonFile != "out.json" || cfg.json || !slices.Equal(cfg.rates, rateList{250, 500}) || cfg.open.sched.total() != 1500 {
		t.Errorf("json %v file %q rates %v total %d", cfg.json, cfg.jsonFile, cfg.rates, cfg.open.sched.total())
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-rate", "1,2"}, "one value without -open"},
		{[]string{"-open"}, "-open needs -rate"},
		{[]string{"-open", "-rate", "1", "-ramp", "1:2"}, "not both"},
		{[]string{"-open", "-ramp", "1-2"}, "want FROM:TO"},
		{[]string{"-open", "-rate", "0,5"}, "must be positive"},
		{[]string{"-open", "-rate", "5", "-duration", "1s"}, "does not apply"},
		{[]string{"-open", "-rate", "5", "-step", "1m", "-timeout", "30s"}, "must exceed"},
		{[]string{"-html", "x.html"}, "need -open"},
		{[]string{"-rate", "x"}, "bad rate"},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"smtp", "-to", "a@b"}, tc.args...), &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

// TestOpenLoopRamp: a ramp is reported in ten segments of rising rate,
// every scheduled message is sent once, and the HTML draws it.
func TestOpenLoopRamp(t *testing.T) {
	t.Parallel()
	be := &sinkBackend{}
	addr, _ := startSMTP(t, be)
	dir := t.TempDir()
	jsonFile, htmlFile := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html")
	var out, errb bytes.Buffer
	code := run([]string{"smtp", "-open", "-ramp", "20:60", "-step", "1s", "-c", "4", "-pipelining",
		"-addr", addr, "-to", "u%d@example.test", "-to-n", "3", "-json", jsonFile, "-html", htmlFile, "-progress", "0"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	data, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	o := rep.OpenLoop
	if o == nil || o.Ramp != "20:60" || len(o.Steps) != rampSegments {
		t.Fatalf("open-loop section %+v", o)
	}
	var sent int64
	for i, s := range o.Steps {
		if s.Sent != s.Scheduled || s.OK != s.Sent || (i > 0 && s.Rate <= o.Steps[i-1].Rate) {
			t.Errorf("segment %d: %+v", i, s)
		}
		sent += s.Sent
	}
	if commits, _, distinct := be.counts(); int64(commits) != sent || distinct != commits || sent < 35 {
		t.Errorf("sent %d, server commits %d (%d distinct)", sent, commits, distinct)
	}
	checkCorrectedNotBelowService(t, o.Steps)
	page, err := os.ReadFile(htmlFile)
	if err != nil {
		t.Fatal(err)
	}
	checkHTML(t, string(page), 4)
	if !strings.Contains(string(page), "ramp 20:60") {
		t.Errorf("HTML does not name the ramp")
	}
}

func TestJSONFileArgs(t *testing.T) {
	t.Parallel()
	fs := newFlagSet("smtp", "", io.Discard)
	var cfg smtpConfig
	cfg.register(fs)
	for _, tc := range []struct{ in, want []string }{
		{[]string{"-json"}, []string{"-json"}},
		{[]string{"-json", "-c", "2"}, []string{"-json", "-c", "2"}},
		{[]string{"-json", "r.json", "-c", "2"}, []string{"-json=r.json", "-c", "2"}},
		{[]string{"--json", "false"}, []string{"--json", "false"}},
		{[]string{"--", "-json", "x"}, []string{"--", "-json", "x"}},
	} {
		if got := jsonFileArgs(fs, tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("%q → %q, want %q", tc.in, got, tc.want)
		}
	}
}
