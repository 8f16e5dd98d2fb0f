package mailbox

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

const testMsgID = "06h4q2c1k8v0m3a5bcde" // the queue's shape: 20 of [0-9a-v]

func TestUniqueNameCarriesTheMsgID(t *testing.T) {
	t.Parallel()
	now := time.Unix(1780000000, 123456000)
	for _, c := range []struct{ msgID, want string }{
		{testMsgID, testMsgID},
		{"m1", ""},                   // not the queue's shape: random R
		{"06H4Q2C1K8V0M3A5BCDE", ""}, // upper case is not base32hex as the queue writes it
		{"06h4q2c1k8v0m3a5bcd/", ""}, // never a path separator in a name
		{"", ""},
	} {
		name := uniqueName(now, 42, 7, c.msgID, "host", 99)
		if got := msgIDOf(name); got != c.want {
			t.Errorf("msgID %q: name %q carries %q, want %q", c.msgID, name, got, c.want)
		}
		if !strings.HasPrefix(name, "1780000000.M123456P42Q7R") || !strings.HasSuffix(name, ".host,S=99") {
			t.Errorf("msgID %q: name %q is not <sec>.M<usec>P<pid>Q<n>R<...>.<host>,S=<size>", c.msgID, name)
		}
		if size, ok := sizeField(name); !ok || size != 99 {
			t.Errorf("name %q: size %d %v", name, size, ok)
		}
	}
	for _, base := range []string{
		"1780000000.M1P2Q3R0123abcd.host,S=9",               // random R of an older version
		"1780000000.M1P2Q3.host",                            // no R
		"1780000000." + testMsgID + ".host",                 // no R field, the id elsewhere
		"1780000000.M1P2Q3R" + testMsgID + "x.host,S=9",     // one character too many
		"1780000000.M1P2Q3V12I34R" + testMsgID + ".h\\072x", // other fields before R
	} {
		want := ""
		if strings.HasPrefix(base, "1780000000.M1P2Q3V12I34R") {
			want = testMsgID
		}
		if got := msgIDOf(base); got != want {
			t.Errorf("msgIDOf(%q) = %q, want %q", base, got, want)
		}
	}
}

// TestDeliveredMessageNamesItsMsgID: the delivered file's name carries the
// msg_id, the delivery is logged at info with the file name, and a POP3
// session's listing gives the msg_id back.
func TestDeliveredMessageNamesItsMsgID(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	s := startStore(t, zap.New(core), user1)
	src := spool(t, t.TempDir(), "m", msgBody(2))
	d := Delivery{User: user1, Rcpt: "USR1@mail.sustech.edu.cn", MsgID: testMsgID, BodyPath: src}
	if err := s.Deliver(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	files := names(t, filepath.Join(s.root, user1, dirNew))
	if len(files) != 1 || msgIDOf(files[0]) != testMsgID {
		t.Fatalf("new/ = %v, want one file named with %s", files, testMsgID)
	}
	lines := logs.FilterMessage("message delivered").All()
	if len(lines) != 1 {
		t.Fatalf("%d message delivered lines at info", len(lines))
	}
	f := lines[0].ContextMap()
	if f["msg_id"] != testMsgID || f["user"] != user1 || f["rcpt"] != d.Rcpt || f["file"] != files[0] {
		t.Errorf("fields %v, file %s", f, files[0])
	}
	ss := mustOpen(t, s, user1)
	if l := ss.List(); len(l) != 1 || l[0].MsgID != testMsgID {
		t.Errorf("listing %+v, want msg_id %s", l, testMsgID)
	}
	ss.Close()
}
