package main

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseOddLines(t *testing.T) {
	t.Parallel()
	ts := time.Date(2026, 12, 6, 3, 22, 29, 518723122, time.UTC).UnixNano()
	tests := []struct {
		name string
		line string
		err  error
		want Line
	}{
		{"acceptance", `{"level":"info","ts":"2026-12-06T03:22:29.518723122Z","msg":"message accepted","host":"exmail.qq.com","proto":"smtp","msg_id":"06h4inuv0pacgip9ee10","rcpt":["a@x","b@y"],"bytes":458,"tls":true,"message_id":"<m1@x>"}`,
			nil, Line{TS: ts, Level: "info", Msg: "message accepted", Host: "exmail.qq.com", Proto: "smtp", MsgID: "06h4inuv0pacgip9ee10",
				Rcpt: []string{"a@x", "b@y"}, Bytes: 458, TLS: true, MessageID: "<m1@x>"}},
		{"rcpt as one string", `{"ts":"2026-12-06T03:22:29.518723122Z","msg":"relay delivered","rcpt":"a@x","smtp_code":250,"attempt":2}`,
			nil, Line{TS: ts, Msg: "relay delivered", Rcpt: []string{"a@x"}, SMTPCode: 250, Attempt: 2}},
		{"escapes", `{"ts":"2026-12-06T03:22:29.518723122Z","msg":"relay deferred","error":"say \"hi\"\n\u00e9\ud83d\ude00 \/"}`,
			nil, Line{TS: ts, Msg: "relay deferred", Error: "say \"hi\"\né😀 /"}},
		{"nested values skipped", `{"ts":"2026-12-06T03:22:29.518723122Z","msg":"config loaded","servers":[{"name":"a","ports":[1,2]},{"x":"}]"}],"n":null,"f":-1.5e3,"host":"h"}`,
			nil, Line{TS: ts, Msg: "config loaded", Host: "h"}},
		{"epoch seconds", `{"level":"info","ts":1733455349.5,"msg":"message done"}`,
			nil, Line{TS: 1733455349_500000000, Level: "info", Msg: "message done"}},
		{"time with offset", `{"ts":"2026-12-06T11:22:29.518723122+08:00","msg":"x"}`, nil, Line{TS: ts, Msg: "x"}},
		{"spaces around", " { \"ts\" : \"2026-12-06T03:22:29.518723122Z\" , \"msg\" : \"x\" } \r", nil, Line{TS: ts, Msg: "x"}},
		{"wrong types ignored", `{"ts":"2026-12-06T03:22:29.518723122Z","msg":"x","bytes":"12","host":7,"rcpt":{"a":1},"tls":"yes"}`,
			nil, Line{TS: ts, Msg: "x"}},
		{"not JSON", `2026-12-06T03:22:29.518Z	INFO	message accepted	{"msg_id": "x"}`, errNotJSON, Line{}},
		{"plain text", `panic: runtime error: index out of range`, errNotJSON, Line{}},
		{"truncated in a string", `{"ts":"2026-12-06T03:22:29.518723122Z","msg":"message acc`, errNotJSON, Line{}},
		{"truncated after a value", `{"ts":"2026-12-06T03:22:29.518723122Z","msg":"x","bytes":45`, errNotJSON, Line{}},
		{"truncated in a nested value", `{"ts":"2026-12-06T03:22:29.518723122Z","msg":"x","servers":[{"name":"a"`, errNotJSON, Line{}},
		{"two objects", `{"ts":"2026-12-06T03:22:29.518723122Z","msg":"x"}{"ts":"2026-12-06T03:22:29.518723122Z","msg":"y"}`, errNotJSON, Line{}},
		{"array", `["ts","msg"]`, errNotJSON, Line{}},
		{"empty", ``, errNotJSON, Line{}},
		{"empty object", `{}`, errNotGomta, Line{}},
		{"missing ts", `{"level":"info","msg":"message accepted","msg_id":"x"}`, errNotGomta, Line{}},
		{"bad ts", `{"ts":"yesterday","msg":"x"}`, errNotGomta, Line{}},
		{"other program's JSON", `{"time":"2026-12-06T03:22:29Z","level":"INFO","message":"GET /"}`, errNotGomta, Line{}},
		{"missing msg", `{"ts":"2026-12-06T03:22:29.518723122Z","level":"info"}`, errNotGomta, Line{}},
	}
	p := newParser(allFields)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := Line{Rcpt: []string{"left over"}, Host: "left over"}
			err := p.parse([]byte(tc.line), &l)
			if err != tc.err {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if len(l.Rcpt) == 0 {
				l.Rcpt = nil
			}
			if !reflect.DeepEqual(l, tc.want) {
				t.Errorf("got  %+v\nwant %+v", l, tc.want)
			}
		})
	}
}

// TestReaderMergesAndSkips reads two sources, one gzip'd under a plain
// name, with odd lines among the good ones: the good lines come in time
// order, the others are counted.
func TestReaderMergesAndSkips(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := strings.Join([]string{
		`{"ts":"2026-12-06T03:00:01Z","msg":"a1"}`,
		`not json`,
		`{"ts":"2026-12-06T03:00:04Z","msg":"a2"}`,
		``,
		`{"ts":"2026-12-06T03:00:05Z","msg":"a3"`, // cut short
		`{"ts":"2026-12-06T03:00:06Z","msg":"a4"}`,
	}, "\n") // no final newline
	b := strings.Join([]string{
		`{"time":"2026-12-06T03:00:00Z","message":"other program"}`,
		`{"ts":"2026-12-06T03:00:02Z","msg":"b1"}`,
		`{"ts":"2026-12-06T03:00:04Z","msg":"b2"}`,
		`{"ts":"2026-12-06T03:00:09Z","msg":"b3"}`,
	}, "\n") + "\n"
	pa := filepath.Join(dir, "a.log")
	if err := os.WriteFile(pa, []byte(a), 0o644); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(b))
	zw.Close()
	pb := filepath.Join(dir, "b.log") // gzip detected by content, not name
	if err := os.WriteFile(pb, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	since, _ := parseWhen("2026-12-06T03:00:02Z", time.Now())
	until, _ := parseWhen("2026-12-06T03:00:09Z", time.Now())
	for _, tc := range []struct {
		win  window
		want string
	}{
		{window{}, "a1 b1 a2 b2 a4 b3"},
		{window{since: since, until: until}, "b1 a2 b2 a4"},
	} {
		r, err := openAll([]string{pa, pb}, nil, tc.win, allFields)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for l := r.Next(); l != nil; l = r.Next() {
			got = append(got, l.Msg)
		}
		r.Close()
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("window %v: lines %q, want %q", tc.win, g, tc.want)
		}
		if r.Skipped != 3 {
			t.Errorf("skipped %d, want 3 (not json, cut short, other program)", r.Skipped)
		}
	}
}

func TestLongLineSkipped(t *testing.T) {
	t.Parallel()
	long := `{"ts":"2026-12-06T03:00:01Z","msg":"long","x":"` + strings.Repeat("x", maxLine) + `"}`
	mid := `{"ts":"2026-12-06T03:00:02Z","msg":"mid","x":"` + strings.Repeat("y", readBuf*2) + `"}`
	in := long + "\n" + mid + "\n" + `{"ts":"2026-12-06T03:00:03Z","msg":"short"}` + "\n"
	r, err := openAll([]string{"-"}, strings.NewReader(in), window{}, allFields)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []string
	for l := r.Next(); l != nil; l = r.Next() {
		got = append(got, l.Msg)
	}
	if strings.Join(got, " ") != "mid short" || r.Skipped != 1 {
		t.Errorf("lines %q, skipped %d; want [mid short], 1", got, r.Skipped)
	}
}
