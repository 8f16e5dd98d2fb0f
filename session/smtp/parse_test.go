package smtp

import (
	"strings"
	"testing"

	"gomta/session/reply"
)

func TestParseCommand(t *testing.T) {
	t.Parallel()
	tests := []struct{ line, verb, arg string }{
		{"NOOP", "NOOP", ""},
		{"noop", "NOOP", ""},
		{"MaIl FROM:<A@B.c>", "MAIL", "FROM:<A@B.c>"},
		{"EHLO  [127.0.0.1]  ", "EHLO", "[127.0.0.1]"},
		{"", "", ""},
		{" NOOP", "", "NOOP"},
	}
	for _, tc := range tests {
		verb, arg := parseCommand(tc.line)
		if verb != tc.verb || arg != tc.arg {
			t.Errorf("parseCommand(%q) = %q, %q; want %q, %q", tc.line, verb, arg, tc.verb, tc.arg)
		}
	}
}

func TestParsePathArg(t *testing.T) {
	t.Parallel()
	local64 := strings.Repeat("l", 64)
	label63 := strings.Repeat("d", 63)
	domain252 := strings.Join([]string{label63, label63, label63, strings.Repeat("e", 60)}, ".") // 252: <a@...> is 256 octets
	tests := []struct {
		arg, kw string
		addr    string
		params  string
		err     string // "" for success
	}{
		{"FROM:<a@example.org>", "FROM", "a@example.org", "", ""},
		{"from:<A.B@Example.ORG>", "FROM", "A.B@Example.ORG", "", ""},
		{"FROM: <a@example.org>", "FROM", "a@example.org", "", ""},
		{"FROM:<>", "FROM", "", "", ""},
		{"FROM:<> SIZE=10 BODY=8BITMIME", "FROM", "", "SIZE=10 BODY=8BITMIME", ""},
		{"FROM:<a@b>  SIZE=10", "FROM", "a@b", "SIZE=10", ""},
		{`FROM:<"john doe"@example.org>`, "FROM", `"john doe"@example.org`, "", ""},
		{`FROM:<"a>b@c"@example.org>`, "FROM", `"a>b@c"@example.org`, "", ""},
		{`FROM:<"a\"b"@example.org>`, "FROM", `"a\"b"@example.org`, "", ""},
		{`FROM:<"a\`, "FROM", "", "", "address must be enclosed in <>"},
		{`FROM:<"a"b@example.org>`, "FROM", "", "", "unterminated quoted local part"},
		{`FROM:<"a` + "\x01" + `"@example.org>`, "FROM", "", "", "invalid character in quoted local part"},
		{"FROM:<!#$%&'*+-/=?^_`{|}~@example.org>", "FROM", "!#$%&'*+-/=?^_`{|}~@example.org", "", ""},
		{"TO:<user@[192.0.2.1]>", "TO", "user@[192.0.2.1]", "", ""},
		{"TO:<user@[IPv6:2001:db8::1]>", "TO", "user@[IPv6:2001:db8::1]", "", ""},
		{"TO:<user@[x-tag:stuff]>", "TO", "user@[x-tag:stuff]", "", ""},
		{"TO:<@relay.example,@other.example:user@example.org>", "TO", "user@example.org", "", ""},
		{"TO:<Postmaster>", "TO", "Postmaster", "", ""},
		{"FROM:<Postmaster>", "FROM", "", "", "missing @domain"},
		{"TO:<" + local64 + "@example.org>", "TO", local64 + "@example.org", "", ""},
		{"TO:<" + local64 + "l@example.org>", "TO", "", "", "local part too long"},
		{"TO:<a@" + domain252 + ">", "TO", "a@" + domain252, "", ""},
		{"TO:<a@" + domain252 + "a>", "TO", "", "", "path too long"},
		{"TO:<a@" + label63 + "d.org>", "TO", "", "", "domain label too long"},
		{"TO:a@example.org", "TO", "", "", "address must be enclosed in <>"},
		{"TO:<a@example.org", "TO", "", "", "address must be enclosed in <>"},
		{"TO<a@example.org>", "TO", "", "", `expected "FROM:" or "TO:"`},
		{"FROM:<a@example.org>", "TO", "", "", `expected "FROM:" or "TO:"`},
		{"TO:<a@example.org>junk", "TO", "", "", "junk after address"},
		{"TO:<a>", "TO", "", "", "missing @domain"},
		{"TO:<@example.org>", "TO", "", "", "source route without ':'"},
		{`TO:<""@example.org>`, "TO", `""@example.org`, "", ""},
		{"TO:<a@@example.org>", "TO", "", "", "invalid character in local part"},
		{"TO:<a@>", "TO", "", "", "empty domain"},
		{"TO:<a..b@example.org>", "TO", "", "", "empty atom in local part"},
		{"TO:<.a@example.org>", "TO", "", "", "empty atom in local part"},
		{"TO:<a b@example.org>", "TO", "", "", "invalid character in local part"},
		{"TO:<a@example..org>", "TO", "", "", "empty label in domain"},
		{"TO:<a@example.org.>", "TO", "", "", "empty label in domain"},
		{"TO:<a@exa_mple.org>", "TO", "", "", "invalid character in domain"},
		{"TO:<a@example-.org>", "TO", "", "", "domain label must start and end with a letter or digit"},
		{"TO:<a@[300.1.1.1]>", "TO", "", "", "bad IPv4 address literal"},
		{"TO:<a@[IPv6:1.2.3.4]>", "TO", "", "", "bad IPv6 address literal"},
		{"TO:<a@[IPv6:fe80::1%eth0]>", "TO", "", "", "bad IPv6 address literal"},
		{"TO:<a@[1.2.3.4>", "TO", "", "", "bad address literal"},
		{"TO:<a@[:x]>", "TO", "", "", "bad address literal"},
		// UTF-8 parses; whether the transaction may use it is the session's
		// check (553 5.6.7 without SMTPUTF8).
		{"TO:<rené@example.org>", "TO", "rené@example.org", "", ""},
		{"TO:<a@exämple.org>", "TO", "a@exämple.org", "", ""},
		{"TO:<a@exä_mple.org>", "TO", "", "", "invalid internationalized domain"},
		{"TO:<a\xff@example.org>", "TO", "", "", "invalid UTF-8 in address"},
		{"TO:<@relay:user@example.org>", "TO", "user@example.org", "", ""},
		{"TO:<@relay user@example.org>", "TO", "", "", "source route without ':'"},
		{"TO:<@-bad:user@example.org>", "TO", "", "", "bad source route"},
	}
	for _, tc := range tests {
		pa, err := parsePathArg(tc.arg, tc.kw)
		switch {
		case tc.err != "":
			if err == nil || err.Error() != tc.err {
				t.Errorf("parsePathArg(%q) error %v, want %q", tc.arg, err, tc.err)
			}
		case err != nil:
			t.Errorf("parsePathArg(%q): %v", tc.arg, err)
		case pa.addr != tc.addr || strings.Join(pa.params, " ") != tc.params:
			t.Errorf("parsePathArg(%q) = %q %q, want %q %q", tc.arg, pa.addr, pa.params, tc.addr, tc.params)
		}
	}
}

func TestParseMailParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		params   string
		size     int64
		eightBit bool
		code     int // 0 for success
	}{
		{"", 0, false, 0},
		{"SIZE=0", 0, false, 0},
		{"size=12345 body=8bitmime", 12345, true, 0},
		{"BODY=7BIT", 0, false, 0},
		{"SIZE=99999999999999999999", 1<<63 - 1, false, 0},
		{"SIZE=999999999999999999999", 0, false, reply.CodeSyntaxParam},
		{"SIZE=", 0, false, reply.CodeSyntaxParam},
		{"SIZE", 0, false, reply.CodeSyntaxParam},
		{"SIZE=-1", 0, false, reply.CodeSyntaxParam},
		{"SIZE=1 size=2", 0, false, reply.CodeSyntaxParam},
		{"BODY=BINARYMIME", 0, false, reply.CodeSyntaxParam},
		{"SMTPUTF8", 0, false, 0},
		{"SMTPUTF8=1", 0, false, reply.CodeSyntaxParam},
		{"SMTPUTF8 smtputf8", 0, false, reply.CodeSyntaxParam},
		{"AUTH=<>", 0, false, reply.CodeBadParams},
	}
	for _, tc := range tests {
		mp, r := parseMailParams(strings.Fields(tc.params))
		switch {
		case tc.code != 0:
			if r == nil || r.Code != tc.code {
				t.Errorf("parseMailParams(%q) = %v, want code %d", tc.params, r, tc.code)
			}
		case r != nil:
			t.Errorf("parseMailParams(%q): %v", tc.params, r)
		case mp.size != tc.size || mp.eightBit != tc.eightBit:
			t.Errorf("parseMailParams(%q) = %+v", tc.params, mp)
		}
	}
}
