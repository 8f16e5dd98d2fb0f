package queue

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"gomta/mta/mtatest"
)

func TestScheduleWaits(t *testing.T) {
	t.Parallel()
	const m = time.Minute
	tests := []struct {
		name string
		opt  Options
		want []time.Duration // wait(1), wait(2), ...
	}{
		{"exponential capped", Options{RetryBase: 5 * m, RetryMax: 4000 * time.Second},
			[]time.Duration{5 * m, 10 * m, 20 * m, 40 * m, 4000 * time.Second, 4000 * time.Second}},
		{"explicit list wins", Options{Retry: []time.Duration{time.Second, 3 * time.Second}, RetryBase: 5 * m, RetryMax: time.Hour},
			[]time.Duration{time.Second, 3 * time.Second, 3 * time.Second}},
		{"max below base", Options{RetryBase: 10 * m, RetryMax: m}, []time.Duration{10 * m, 10 * m}},
		{"huge max", Options{RetryBase: time.Hour, RetryMax: 1<<63 - 1},
			[]time.Duration{time.Hour, 2 * time.Hour, 4 * time.Hour}},
		{"none", Options{}, []time.Duration{m, m}},
	}
	for _, tt := range tests {
		s := newSchedule(tt.opt)
		for i, want := range tt.want {
			if got := s.wait(i + 1); got != want {
				t.Errorf("%s: wait(%d) = %v, want %v", tt.name, i+1, got, want)
			}
		}
	}
	// A wait far down an exponential schedule stays at the cap (no overflow).
	if got := newSchedule(Options{RetryBase: time.Second, RetryMax: time.Hour}).wait(200); got != time.Hour {
		t.Errorf("wait(200) = %v", got)
	}
}

func TestScheduleFinalAndNext(t *testing.T) {
	t.Parallel()
	recv := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newSchedule(Options{RetryBase: time.Hour, RetryMax: 8 * time.Hour, MaxLifetime: 5 * 24 * time.Hour})
	if s.final(recv, 50, recv.Add(5*24*time.Hour-time.Second)) {
		t.Error("final before the lifetime ends")
	}
	if !s.final(recv, 2, recv.Add(5*24*time.Hour)) {
		t.Error("not final when the lifetime ends")
	}
	// The last wait is cut short so that the final attempt is at the end.
	now := recv.Add(5*24*time.Hour - time.Hour)
	if got := s.next(recv, 30, now); !got.Equal(recv.Add(5 * 24 * time.Hour)) {
		t.Errorf("next %v, want the end of the lifetime", got)
	}
	if got := s.next(recv, 1, recv); !got.Equal(recv.Add(time.Hour)) {
		t.Errorf("next %v, want an hour on", got)
	}
	// An explicit list ends the schedule too, whichever comes first.
	l := newSchedule(Options{Retry: []time.Duration{time.Second}, MaxLifetime: time.Hour})
	if l.final(recv, 1, recv) || !l.final(recv, 2, recv.Add(time.Second)) {
		t.Error("explicit list: attempt 2 should be the final one")
	}
	if !s.expires(recv).Equal(recv.Add(5*24*time.Hour)) || !newSchedule(Options{}).expires(recv).IsZero() {
		t.Error("expires")
	}
}

// busyFar is a temporary failure as the delivery worker reports it.
func busyFar(m *Message) []Result {
	res := make([]Result, len(m.Rcpts))
	for i, r := range m.Rcpts {
		res[i] = Result{Rcpt: r, Err: errors.New("451 4.3.0 mailbox busy"),
			Failure: Failure{Code: 451, Enhanced: "4.3.0", Text: "mailbox busy", Remote: "mx.far.test"}}
	}
	return res
}

// TestLifetimeBouncesWith547: with an exponential schedule, a recipient
// failing temporarily is retried until the lifetime ends, the attempt then
// is final, and the bounce says 5.4.7 with the last reply kept.
func TestLifetimeBouncesWith547(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const life = 2 * time.Second // long enough that a loaded machine still makes several attempts
	q := open(t, dir, func(o *Options) {
		o.Retry, o.RetryBase, o.RetryMax, o.MaxLifetime = nil, 10*time.Millisecond, 40*time.Millisecond, life
	})
	h, ch := recorder(t, func(m *Message) []Result {
		if m.From == "" {
			return allDone(m)
		}
		return busyFar(m)
	})
	id := commit(t, q, "s@x.test", []string{"a@x.test"}, "x\r\n")
	stop := run(t, q, h)
	var last seen
	for n := 1; ; n++ {
		s := next(t, ch)
		if s.ID != id {
			t.Fatalf("attempt %d: %s before the final attempt of %s", n, s.ID, id)
		}
		if s.Attempt != n || !s.Expires.Equal(s.Received.Add(life)) {
			t.Fatalf("attempt %d: %+v", n, s.Message)
		}
		if s.Final {
			last = s
			break
		}
	}
	if last.Attempt < 3 {
		t.Errorf("final at attempt %d: the backoff did not retry", last.Attempt)
	}
	b := next(t, ch)
	if b.From != "" || !slices.Equal(b.Rcpts, []string{"s@x.test"}) ||
		!strings.Contains(b.Body, "a@x.test 451 4.3.0 mailbox busy status=5.4.7") {
		t.Fatalf("bounce: %+v", b)
	}
	mtatest.Eventually(t, "message and bounce done", func() bool { return q.Len() == 0 })
	stop()
	if len(ch) != 0 {
		t.Fatalf("%d attempts after the final one", len(ch))
	}
	assertEmptySpool(t, dir)
}

// TestDelayNoticeOnce: past DelayWarning, the sender gets one notice naming
// the pending recipients and their last reply, and never a second one: not
// at the later attempts, not after a restart.
func TestDelayNoticeOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mod := func(o *Options) {
		o.Retry, o.RetryBase, o.RetryMax, o.DelayWarning, o.MaxLifetime = nil, 5*time.Millisecond, 5*time.Millisecond, 50*time.Millisecond, time.Hour
	}
	notices := make(chan string, 10)
	attempts := make(chan int, 100)
	decide := func(m *Message) []Result {
		if m.From == "" {
			select {
			case notices <- m.ID:
			default:
				t.Errorf("too many notices")
			}
			return allDone(m)
		}
		attempts <- m.Attempt
		if m.Attempt >= 1000 {
			return allDone(m)
		}
		// b is delivered at once, a stays pending.
		res := busyFar(m)
		for i := range res {
			if res[i].Rcpt == "b@x.test" {
				res[i] = Result{Rcpt: "b@x.test"}
			}
		}
		return res
	}
	q := open(t, dir, mod)
	h, ch := recorder(t, decide)
	id := commit(t, q, "s@x.test", []string{"a@x.test", "b@x.test"}, "x\r\n")
	stop := run(t, q, h)
	var notice seen
	for notice.ID == "" {
		if s := next(t, ch); s.From == "" {
			notice = s
		}
	}
	if !slices.Equal(notice.Rcpts, []string{"s@x.test"}) || !strings.Contains(notice.Body, "Subject: delay of "+id) ||
		!strings.Contains(notice.Body, "a@x.test 451 4.3.0 mailbox busy") || strings.Contains(notice.Body, "b@x.test") {
		t.Fatalf("notice: %+v", notice)
	}
	// Five more failed attempts, then a restart and five more.
	seenAttempts := func(n int) {
		for range n {
			for s := next(t, ch); s.From == ""; s = next(t, ch) {
				t.Fatalf("a second notice: %+v", s)
			}
		}
	}
	seenAttempts(5)
	stop()
	if env := journalLive(t, dir)[id]; !env.DelayWarned || !slices.Equal(env.Rcpts, []string{"a@x.test"}) {
		t.Fatalf("envelope after the notice: %+v", env)
	}
	q2 := open(t, dir, mod)
	h2, ch2 := recorder(t, decide)
	run(t, q2, h2)
	ch = ch2
	seenAttempts(5)
	if len(notices) != 1 {
		t.Fatalf("%d notices", len(notices))
	}
}

// TestNoDelayNoticeToNullSender: a bounce that is delayed gets no notice.
func TestNoDelayNoticeToNullSender(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := open(t, dir, func(o *Options) {
		o.Retry, o.RetryBase, o.RetryMax, o.DelayWarning = nil, 5*time.Millisecond, 5*time.Millisecond, time.Millisecond
	})
	h, ch := recorder(t, func(m *Message) []Result {
		if m.Attempt < 4 {
			return busyFar(m)
		}
		return allDone(m)
	})
	id := commit(t, q, "", []string{"s@x.test"}, "x\r\n")
	stop := run(t, q, h)
	mtatest.Eventually(t, "the bounce delivered", func() bool { return q.Len() == 0 })
	stop()
	for len(ch) > 0 {
		if s := <-ch; s.ID != id {
			t.Fatalf("a message other than the bounce: %+v", s)
		}
	}
	assertEmptySpool(t, dir)
}
