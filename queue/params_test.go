package queue

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gomta/mta/mtatest"
)

// TestParamsSurviveRestart checks that DSN parameters are stored with the
// envelope (journal and the copy on the body) and handed to delivery after
// a restart, only for recipients of the envelope.
func TestParamsSurviveRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q1 := open(t, dir, nil)
	d, err := q1.NewMessage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(d, "Subject: x\r\n\r\nbody\r\n")
	d.SetParams(Params{Ret: "HDRS", EnvID: "e+2B1", Rcpt: map[string]RcptParams{
		"a@x.test":    {Notify: "SUCCESS", ORCPT: "rfc822;A@x.test"},
		"gone@x.test": {Notify: "NEVER"},
	}})
	if err := d.Commit(context.Background(), "s@x.test", []string{"a@x.test", "b@x.test"}); err != nil {
		t.Fatal(err)
	}
	want := Params{Ret: "HDRS", EnvID: "e+2B1", Rcpt: map[string]RcptParams{
		"a@x.test": {Notify: "SUCCESS", ORCPT: "rfc822;A@x.test"}}}
	if env := journalLive(t, dir)[d.ID()]; !reflect.DeepEqual(env.Params, want) {
		t.Errorf("journal params %+v, want %+v", env.Params, want)
	}
	copyData, err := getXattr(q1.bodyPath(d.ID()), envXattr)
	if err == nil { // a file system without extended attributes keeps no copy
		var env envelope
		if err := json.Unmarshal(copyData, &env); err != nil || !reflect.DeepEqual(env.Params, want) {
			t.Errorf("envelope copy params %+v (%v), want %+v", env.Params, err, want)
		}
	}

	q2 := open(t, dir, nil)
	h, ch := recorder(t, nil)
	run(t, q2, h)
	if s := next(t, ch); !reflect.DeepEqual(s.DSN, want) {
		t.Errorf("delivery saw %+v, want %+v", s.DSN, want)
	}
	mtatest.Eventually(t, "spool empty", func() bool { return q2.Len() == 0 })
}

// TestOldRecordLoads checks that an envelope written before DSN parameters
// existed loads with none, and that one without parameters is written as
// before.
func TestOldRecordLoads(t *testing.T) {
	t.Parallel()
	old := `{"id":"X1","from":"s@x.test","rcpts":["a@x.test"],"received":"2026-01-02T03:04:05Z","size":4,"attempts":1,"next_attempt":"2026-01-02T03:04:05Z"}`
	var env envelope
	if err := json.Unmarshal([]byte(old), &env); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(env.Params, Params{}) || !env.Notifies("a@x.test", "FAILURE") ||
		!env.Notifies("a@x.test", "DELAY") || env.Notifies("a@x.test", "SUCCESS") {
		t.Errorf("old record: %+v", env.Params)
	}
	data, err := json.Marshal(&env)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ret", "envid", "rcpt_params", "succeeded"} {
		if strings.Contains(string(data), `"`+k+`"`) {
			t.Errorf("record without parameters has %q: %s", k, data)
		}
	}
}

func TestNotifies(t *testing.T) {
	t.Parallel()
	p := Params{Rcpt: map[string]RcptParams{"n": {Notify: "NEVER"}, "s": {Notify: "SUCCESS,DELAY"}}}
	for _, c := range []struct {
		rcpt, event string
		want        bool
	}{
		{"n", "FAILURE", false}, {"n", "SUCCESS", false}, {"s", "SUCCESS", true}, {"s", "FAILURE", false},
		{"s", "DELAY", true}, {"other", "FAILURE", true}, {"other", "DELAY", true}, {"other", "SUCCESS", false},
	} {
		if got := p.Notifies(c.rcpt, c.event); got != c.want {
			t.Errorf("Notifies(%s, %s) = %v", c.rcpt, c.event, got)
		}
	}
}

// TestNotifyHonoured checks that a recipient with NOTIFY=NEVER gets no
// bounce (and is not retried), one with NOTIFY=SUCCESS and a Notice gets a
// success notice through the queue, and the others get their bounce.
func TestNotifyHonoured(t *testing.T) {
	t.Parallel()
	q := open(t, t.TempDir(), nil)
	d, err := q.NewMessage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(d, "Subject: x\r\n\r\nbody\r\n")
	d.SetParams(Params{Rcpt: map[string]RcptParams{
		"never@x.test": {Notify: "NEVER"},
		"succ@x.test":  {Notify: "SUCCESS"},
		"hush@x.test":  {Notify: "DELAY"},
	}})
	rcpts := []string{"never@x.test", "succ@x.test", "hush@x.test", "fail@x.test", "plain@x.test"}
	if err := d.Commit(context.Background(), "s@x.test", rcpts); err != nil {
		t.Fatal(err)
	}
	perm := Result{Err: errors.New("550 no"), Permanent: true}
	h, ch := recorder(t, func(m *Message) []Result {
		if m.From == "" {
			return allDone(m)
		}
		res := make([]Result, len(m.Rcpts))
		for i, r := range m.Rcpts {
			switch r {
			case "succ@x.test", "plain@x.test":
				res[i] = Result{Rcpt: r, Notice: "delivered"}
			default:
				res[i] = perm
				res[i].Rcpt = r
			}
		}
		return res
	})
	run(t, q, h)
	if s := next(t, ch); s.ID != d.ID() {
		t.Fatalf("first attempt of %s", s.ID)
	}
	got := map[string]string{}
	for range 2 {
		s := next(t, ch)
		if s.From != "" || !slices.Equal(s.Rcpts, []string{"s@x.test"}) {
			t.Fatalf("report %+v", s.Message)
		}
		subject, _, _ := strings.Cut(s.Body, "\r\n")
		got[strings.Fields(subject)[1]] = s.Body
	}
	if b := got["bounce"]; !strings.Contains(b, "fail@x.test") || strings.Contains(b, "never@") || strings.Contains(b, "hush@") {
		t.Errorf("bounce:\n%s", b)
	}
	if b := got["success"]; !strings.Contains(b, "succ@x.test delivered") || strings.Contains(b, "plain@") {
		t.Errorf("success notice:\n%s", b)
	}
	mtatest.Eventually(t, "spool empty", func() bool { return q.Len() == 0 })
}

// TestDelayNoticeOnlyWhereAsked: the delay notice names the pending
// recipients that asked for it (NOTIFY with DELAY, or no NOTIFY), not one
// with NOTIFY=FAILURE.
func TestDelayNoticeOnlyWhereAsked(t *testing.T) {
	t.Parallel()
	q := open(t, t.TempDir(), func(o *Options) {
		o.Retry, o.RetryBase, o.RetryMax, o.DelayWarning = nil, 5*time.Millisecond, 5*time.Millisecond, 20*time.Millisecond
	})
	d, err := q.NewMessage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(d, "x\r\n")
	d.SetParams(Params{Rcpt: map[string]RcptParams{"f@x.test": {Notify: "FAILURE"}, "d@x.test": {Notify: "SUCCESS,DELAY"}}})
	if err := d.Commit(context.Background(), "s@x.test", []string{"f@x.test", "d@x.test", "p@x.test"}); err != nil {
		t.Fatal(err)
	}
	var warned atomic.Bool
	h, ch := recorder(t, func(m *Message) []Result {
		if m.From == "" {
			warned.Store(true)
			return allDone(m)
		}
		if warned.Load() {
			return allDone(m)
		}
		return busyFar(m)
	})
	run(t, q, h)
	for {
		s := next(t, ch)
		if s.From != "" {
			continue
		}
		if !strings.Contains(s.Body, "d@x.test") || !strings.Contains(s.Body, "p@x.test") || strings.Contains(s.Body, "f@x.test") {
			t.Errorf("delay notice:\n%s", s.Body)
		}
		break
	}
	mtatest.Eventually(t, "spool empty", func() bool { return q.Len() == 0 })
}
