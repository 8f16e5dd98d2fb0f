package pop3

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseCommand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line string
		ok   bool
		want cmd
	}{
		{"STAT", true, cmd{Verb: "STAT"}},
		{"stat", true, cmd{Verb: "STAT"}},
		{"List 1", true, cmd{Verb: "LIST", Arg: "1", Args: []string{"1"}}},
		{"TOP 1 10", true, cmd{Verb: "TOP", Arg: "1 10", Args: []string{"1", "10"}}},
		{"USER Alice", true, cmd{Verb: "USER", Arg: "Alice", Args: []string{"Alice"}}},
		{"PASS  two  spaces ", true, cmd{Verb: "PASS", Arg: " two  spaces ", Args: []string{"two", "spaces"}}},
		{"PASS pässwörd", true, cmd{Verb: "PASS", Arg: "pässwörd", Args: []string{"pässwörd"}}},
		{"", false, cmd{}},
		{" STAT", false, cmd{}},
		{"STAT\x00", false, cmd{}},
		{"USER a\tb", false, cmd{}},
		{"NOOP\x7f", false, cmd{}},
	} {
		got, ok := parseCommand([]byte(tc.line))
		if ok != tc.ok || got.Verb != tc.want.Verb || got.Arg != tc.want.Arg || !slices.Equal(got.Args, tc.want.Args) {
			t.Errorf("parseCommand(%q) = %+v, %v; want %+v, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

func TestIsHTTP(t *testing.T) {
	t.Parallel()
	for line, want := range map[string]bool{
		"GET / HTTP/1.1":       true,
		"POST /x HTTP/1.0":     true,
		"GET something":        false,
		"USER GET / HTTP/1.1":  false,
		"CONNECT a:1 HTTP/1.1": true,
	} {
		if got := isHTTP([]byte(line)); got != want {
			t.Errorf("isHTTP(%q) = %v", line, got)
		}
	}
}

func TestCopyTop(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("z", 10000)
	for _, tc := range []struct {
		msg   string
		lines int
		want  string
	}{
		{"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n", 0, "A: 1\r\nB: 2\r\n\r\n"},
		{"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n", 1, "A: 1\r\nB: 2\r\n\r\nl1\r\n"},
		{"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n", 5, "A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n"},
		{"A: 1\n\nl1\nl2\n", 1, "A: 1\n\nl1\n"},                                                        // bare LF
		{"A: 1\r\nB: 2\r\n", 3, "A: 1\r\nB: 2\r\n"},                                                    // no body
		{"A: 1\r\n\r\nl1", 3, "A: 1\r\n\r\nl1"},                                                        // no final CRLF
		{"A: " + long + "\r\n\r\n" + long + "\r\nx\r\n", 1, "A: " + long + "\r\n\r\n" + long + "\r\n"}, // long lines
		{"A: 1\r\n\r\n\r\n\r\nl3\r\n", 2, "A: 1\r\n\r\n\r\n\r\n"},                                      // empty body lines count
		{"", 3, ""},
	} {
		var b bytes.Buffer
		n, err := copyTop(&b, strings.NewReader(tc.msg), tc.lines)
		if err != nil || b.String() != tc.want || n != int64(len(tc.want)) {
			t.Errorf("copyTop(%.20q, %d) = %.40q, %d, %v; want %.40q", tc.msg, tc.lines, b.String(), n, err, tc.want)
		}
	}
}

func TestParseNumber(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]int{"0": 0, "1": 1, "007": 7, "999999999": 999999999,
		"": -1, "-1": -1, "+1": -1, "1x": -1, "1000000000": -1, " 1": -1, "١": -1} {
		n, ok := parseNumber(s)
		if (want < 0 && ok) || (want >= 0 && (!ok || n != want)) {
			t.Errorf("parseNumber(%q) = %d, %v; want %d", s, n, ok, want)
		}
	}
}

// FuzzCommand checks the parser's invariants on arbitrary lines: it never
// panics; an accepted line has an upper-case verb without spaces or control
// characters, and its arguments are the fields of Arg.
func FuzzCommand(f *testing.F) {
	for _, s := range []string{"STAT", "user alice", "PASS a b  c", "TOP 1 10", "LIST", "RETR 99999999999",
		"", " ", "\x00", "GET / HTTP/1.1", "UIDL\xff", "capa", "DELE -1", "QUIT "} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		c, ok := parseCommand(line)
		if !ok {
			return
		}
		if c.Verb == "" || strings.ContainsAny(c.Verb, " \r\n\x00") {
			t.Fatalf("bad verb %q from %q", c.Verb, line)
		}
		if utf8.ValidString(c.Verb) && c.Verb != strings.ToUpper(c.Verb) {
			t.Fatalf("verb %q not upper-cased", c.Verb)
		}
		if !slices.Equal(c.Args, strings.Fields(c.Arg)) {
			t.Fatalf("args %q do not match arg %q", c.Args, c.Arg)
		}
		if len(c.Verb) > len(line) && utf8.Valid(line) {
			// Upper-casing may grow invalid UTF-8 (replacement chars), never valid ASCII.
			if !bytes.ContainsFunc(line, func(r rune) bool { return r > 127 }) {
				t.Fatalf("verb %q longer than line %q", c.Verb, line)
			}
		}
		for _, b := range line {
			if b < 0x20 || b == 0x7f {
				t.Fatalf("accepted control character in %q", line)
			}
		}
	})
}
