package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestSMTPCountsAndRefusals(t *testing.T) {
	for _, pipelining := range []bool{false, true} {
		t.Run(fmt.Sprintf("pipelining=%v", pipelining), func(t *testing.T) {
			t.Parallel()
			be := &sinkBackend{refuse: "user3@"}
			addr, _ := startSMTP(t, be)
			acked := filepath.Join(t.TempDir(), "acked.json")
			args := []string{"smtp", "-addr", addr, "-c", "4", "-n", "40", "-size", "3000",
				"-to", "user%d@example.test", "-to-n", "5", "-reuse", "3", "-acked", acked, "-run-id", "T1"}
			if pipelining {
				args = append(args, "-pipelining")
			}
			var rep report
			code, stderr := runJSON(t, &rep, args...)
			if code != exitErrors {
				t.Errorf("exit %d, want %d (some recipients refused); stderr %s", code, exitErrors, stderr)
			}
			commits, rcpts, distinct := be.counts()
			// Messages 2, 7, 12, … go to user3 (seq mod 5 = 2 → user3): 8 of 40.
			if rep.OK != 32 || rep.Failed != 8 || int64(commits) != rep.OK || distinct != commits || rcpts != 32 {
				t.Errorf("ok %d failed %d; server commits %d rcpts %d distinct ids %d; want 32/8/32/32/32",
					rep.OK, rep.Failed, commits, rcpts, distinct)
			}
			if rep.RcptOK != 32 || rep.RcptFailed != 8 {
				t.Errorf("rcpts ok %d failed %d, want 32/8", rep.RcptOK, rep.RcptFailed)
			}
			if len(rep.Errors) != 1 || errCount(rep.Errors, "550") != 8 {
				t.Errorf("errors %+v, want only 550 ×8", rep.Errors)
			}
			if want := int64(32 * (3000 + 100)); rep.Bytes < int64(32*3000) || rep.Bytes > want+32*100 {
				t.Errorf("bytes %d, want about 32 × 3000 plus headers", rep.Bytes)
			}
			if steps := stepNames(rep.Latency); !containsAll(steps, "connect", "greeting", "ehlo", "mail", "rcpt", "data", "data-end", "quit", "message") {
				t.Errorf("latency steps %v lack some", steps)
			}
			f, err := readAcked(acked)
			if err != nil {
				t.Fatal(err)
			}
			if f.RunID != "T1" || f.count() != 32 || len(f.Acked["user3@example.test"]) != 0 || len(f.Acked["user1@example.test"]) != 8 {
				t.Errorf("acked file: run %q, %d ids, %v", f.RunID, f.count(), f.Acked)
			}
			for _, ids := range f.Acked {
				for _, id := range ids {
					if be.ids[id] != 1 {
						t.Errorf("acked %s, server committed it %d times", id, be.ids[id])
					}
				}
			}
		})
	}
}

func TestSMTPMultipleRecipients(t *testing.T) {
	t.Parallel()
	be := &sinkBackend{refuse: "user2@"}
	addr, _ := startSMTP(t, be)
	var rep report
	code, _ := runJSON(t, &rep, "smtp", "-addr", addr, "-c", "2", "-n", "10", "-rcpts", "3",
		"-to", "user%d@example.test", "-to-n", "4", "-pipelining")
	commits, rcpts, _ := be.counts()
	// 30 recipients spread over user1..user4: user2 gets every 4th, 7 or 8 of 30.
	// (seq*3+j) mod 4 = 1 for j in 0..2, seq in 0..9 → exactly 8 times.
	if code != exitErrors || rep.OK != 10 || rep.Partial != 8 || rep.RcptOK != 22 || rep.RcptFailed != 8 ||
		commits != 10 || rcpts != 22 || errCount(rep.Errors, "550") != 8 {
		t.Errorf("exit %d, report %+v; server commits %d rcpts %d", code, rep, commits, rcpts)
	}
}

func TestSMTPReuse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		c, n, reuse        string
		minConns, maxConns int64
	}{
		{"1", "30", "1", 30, 30},
		{"1", "30", "10", 3, 3},
		{"1", "30", "7", 5, 5},
		{"3", "30", "4", 8, 10}, // ceil(30/4) … plus one short connection per other worker
	}
	for _, tc := range cases {
		t.Run("c"+tc.c+"reuse"+tc.reuse, func(t *testing.T) {
			t.Parallel()
			be := &sinkBackend{}
			addr, l := startSMTP(t, be)
			var rep report
			code, stderr := runJSON(t, &rep, "smtp", "-addr", addr, "-c", tc.c, "-n", tc.n, "-reuse", tc.reuse, "-to", "a@example.test")
			if code != exitOK || rep.OK != 30 {
				t.Fatalf("exit %d ok %d; %s", code, rep.OK, stderr)
			}
			if n := l.n.Load(); n < tc.minConns || n > tc.maxConns || rep.Sessions != n {
				t.Errorf("server accepted %d connections, report says %d sessions; want %d..%d",
					n, rep.Sessions, tc.minConns, tc.maxConns)
			}
		})
	}
}

func TestSMTPRateAndDuration(t *testing.T) {
	t.Parallel()
	be := &sinkBackend{}
	addr, _ := startSMTP(t, be)
	var rep report
	// 10 messages at 40/s: the last may start at 9/40 s = 225 ms.
	code, _ := runJSON(t, &rep, "smtp", "-addr", addr, "-c", "4", "-n", "10", "-rate", "40", "-to", "a@example.test")
	if code != exitOK || rep.OK != 10 || rep.ElapsedS < 0.2 {
		t.Errorf("exit %d ok %d elapsed %.3fs; want 10 messages in at least 0.2s", code, rep.OK, rep.ElapsedS)
	}
	// -duration alone bounds the run; with -rate 50 for 0.3 s at most 16 are sent.
	code, _ = runJSON(t, &rep, "smtp", "-addr", addr, "-c", "2", "-duration", "300ms", "-rate", "50", "-to", "a@example.test")
	commits, _, _ := be.counts()
	if code != exitOK || rep.OK < 1 || rep.OK > 16 || int64(commits) != 10+rep.OK {
		t.Errorf("duration run: exit %d ok %d, server commits %d (10 before)", code, rep.OK, commits)
	}
}

func TestSMTPServerDown(t *testing.T) {
	t.Parallel()
	addr := closedPort(t)
	var rep report
	code, _ := runJSON(t, &rep, "smtp", "-addr", addr, "-c", "2", "-n", "5", "-to", "a@example.test")
	if code != exitErrors || rep.OK != 0 || rep.Failed != 5 || rep.SessionsFailed != 5 || errCount(rep.Errors, "refused") != 5 {
		t.Errorf("exit %d report %+v", code, rep)
	}
}

func TestHumanReport(t *testing.T) {
	t.Parallel()
	addr, _ := startSMTP(t, &sinkBackend{refuse: "user2@"})
	var out, errb bytes.Buffer
	code := run([]string{"smtp", "-addr", addr, "-n", "4", "-to", "user%d@x.test", "-to-n", "2", "-progress", "0"}, &out, &errb)
	s := out.String()
	for _, want := range []string{"messages", "ok 2", "failed 2", "latency (ms)", "p99", "data-end", "550", "no such user"} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if code != exitErrors {
		t.Errorf("exit %d", code)
	}
}

func stepNames(l []stepReport) []string {
	var out []string
	for _, s := range l {
		out = append(out, s.Step)
	}
	return out
}

func containsAll(have []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}
