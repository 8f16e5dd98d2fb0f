package jsq

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"gomta/queue"
)

// TestNotices: a delay notice goes once past DelayWarning, and a success
// notice to a sender whose recipient asked NOTIFY=SUCCESS; both from <>.
func TestNotices(t *testing.T) {
	for _, tc := range []struct {
		name    string
		delay   time.Duration
		notify  string
		decide  func(m *queue.Message) []queue.Result
		subject string
	}{
		{"delay", time.Millisecond, "", func(m *queue.Message) []queue.Result { return results(m, errTemp, false) }, "Subject: delay of "},
		{"success", 0, "SUCCESS", func(m *queue.Message) []queue.Result {
			return []queue.Result{{Rcpt: m.Rcpts[0], Notice: "delivered"}}
		}, "Subject: success of "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := server(t)
			q := openQ(t, s.JS, "n1", func(o *Options) {
				o.DelayWarning = tc.delay
				o.Retry = slices.Repeat([]time.Duration{time.Hour}, 3)
			})
			h := newHandler(func(m *queue.Message) []queue.Result {
				if m.From == "" {
					return results(m, nil, false)
				}
				return tc.decide(m)
			})
			ctx := context.Background()
			w, err := q.NewMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = w.Write([]byte("Subject: x\r\n\r\nx\r\n"))
			w.SetParams(queue.Params{Rcpt: map[string]queue.RcptParams{"b@example.org": {Notify: tc.notify}}})
			if err := w.Commit(ctx, "a@example.org", []string{"b@example.org"}); err != nil {
				t.Fatal(err)
			}
			run(t, q, h)
			if got := h.next(t); got.ID != w.ID() || got.DSN.Rcpt["b@example.org"].Notify != tc.notify {
				t.Fatalf("attempt %s with DSN %+v", got.ID, got.DSN)
			}
			n := h.next(t)
			if n.From != "" || !slices.Equal(n.Rcpts, []string{"a@example.org"}) || !strings.HasPrefix(string(n.Body), tc.subject+w.ID()) {
				t.Fatalf("notice from %q to %v: %q", n.From, n.Rcpts, n.Body)
			}
		})
	}
}
