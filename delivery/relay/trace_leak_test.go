package relay

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gomta/delivery/mailbox"
	"gomta/queue"
	"gomta/session/smtpclient/smtpclienttest"
)

// TestRelayRewindKeepsTraceOut relays a spool file that starts with its
// trace fields (a message queued for one local account, then routed out)
// through the real relay, which scans the body and rewinds it before
// sending: the next hop must get neither our Return-Path nor our
// Delivered-To.
func TestRelayRewindKeepsTraceOut(t *testing.T) {
	fields, _ := mailbox.TraceFields("s@far.test", "bob")
	p := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(p, append(fields, body...), 0o440); err != nil {
		t.Fatal(err)
	}
	m := &queue.Message{ID: "m1", BodyPath: p, Trace: queue.Trace{Len: int64(len(fields)), To: "bob"}}
	srv := smtpclienttest.Start(t, smtpclienttest.Config{Ext: []string{"PIPELINING", "SIZE 0"}})
	res := NewResolver(map[string]string{"B.Test.": "MX.B.Test."}, map[string]string{"mx.b.test.": srv.Port()}, false)
	rl, _ := newRelay(t, res)
	j := job("m1", "b.test", func() (io.ReadCloser, error) { return m.Open() }, "ann@b.test")
	errs := rl.Deliver(context.Background(), j).Errs
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	raw := string(srv.Messages()[0].Raw)
	if strings.Contains(raw, "Delivered-To") || strings.Contains(raw, "Return-Path") {
		t.Fatalf("trace fields relayed onward:\n%s", raw)
	}
}
