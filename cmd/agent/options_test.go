package main

import (
	"strings"
	"testing"
)

func TestResolveDefaultConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args              []string
		wantSMTP, wantPOP string
		wantErr           string
	}{
		{args: []string{"-e", "usr1@mail.sustech.edu.cn"}, wantSMTP: "127.0.0.1:1025", wantPOP: "127.0.0.1:3110"},
		{args: []string{"-e", "usr@GMAIL.com"}, wantSMTP: "127.0.0.1:2025", wantPOP: "127.0.0.1:2110"},
		{args: []string{"-e", "usr@gmail.com", "-s", "smtp.exmail.qq.com.", "-P", "127.0.0.1:9110"}, wantSMTP: "127.0.0.1:1025", wantPOP: "127.0.0.1:9110"},
		{args: []string{"-e", "x@elsewhere.test"}, wantErr: "no [agent] entry for elsewhere.test"},
		{args: []string{"-e", "x@elsewhere.test", "-s", "nohost.test", "-P", "pop.gmail.com"}, wantErr: "nohost.test has no [P] record", wantPOP: "127.0.0.1:2110"},
	}
	for _, tc := range tests {
		o, _, err := parseGlobal(tc.args)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		s, serr := o.smtpAddr()
		p, perr := o.popAddr()
		if tc.wantErr != "" {
			if serr == nil || !strings.Contains(serr.Error(), tc.wantErr) {
				t.Errorf("%v: smtp error %v, want %q", tc.args, serr, tc.wantErr)
			}
		} else if serr != nil || s != tc.wantSMTP {
			t.Errorf("%v: smtp %q, %v; want %q", tc.args, s, serr, tc.wantSMTP)
		}
		if tc.wantPOP != "" && (perr != nil || p != tc.wantPOP) {
			t.Errorf("%v: pop %q, %v; want %q", tc.args, p, perr, tc.wantPOP)
		}
	}
}

func TestResolveConfigFiles(t *testing.T) {
	t.Parallel()
	cfg := writeFile(t, "config.toml", `
[agent]
"example.test" = { smtp = "smtp.example.test", pop = "pop.example.test" }
[server]
"mx.example.test" = { smtp = 4025, pop = 4110 }
[accounts."mx.example.test"]
"a@example.test" = "x"
`)
	fdns := writeFile(t, "fdns.toml", `
[P]
"smtp.example.test." = "4025"
"pop.example.test." = "mail.example.net:4110"
`)
	o, rest, err := parseGlobal([]string{"-e", "a@example.test", "-config", cfg, "-fdns", fdns, "pop", "stat"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rest, " ") != "pop stat" {
		t.Errorf("rest = %q", rest)
	}
	if s, err := o.smtpAddr(); err != nil || s != "127.0.0.1:4025" {
		t.Errorf("smtp = %q, %v", s, err)
	}
	if p, err := o.popAddr(); err != nil || p != "mail.example.net:4110" {
		t.Errorf("pop = %q, %v", p, err)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{nil, "-e EMAIL is required"},
		{[]string{"-e", "nobody"}, `"nobody" is not an address`},
		{[]string{"-e", "a@gmail.com"}, "-p PASSWORD is required"},
		{[]string{"-e", "a@gmail.com", "-p", "x", "-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"-e", "a@gmail.com", "-p", "x", "fly"}, `unknown command "fly"`},
		{[]string{"-e", "a@gmail.com", "-config", "/nonexistent/c.toml"}, "config: open /nonexistent/c.toml"},
		{[]string{"-e", "a@gmail.com", "send", "-subject", "s", "-body", "b"}, "at least one -to"},
		{[]string{"-e", "a@gmail.com", "send", "-to", "b@gmail.com", "-subject", "s"}, "-body TEXT or -body-file FILE is required"},
		{[]string{"-e", "a@gmail.com", "send", "-to", "b@gmail.com", "-body", "x", "-body-file", "f"}, "not both"},
		{[]string{"-e", "a@gmail.com", "send", "-to", "not an address", "-body", "x"}, `"not an address" is not an email address`},
		{[]string{"-e", "a@gmail.com", "send", "-to", "b@gmail.com", "-body-file", "/nonexistent/b.txt"}, "/nonexistent/b.txt does not exist"},
		{[]string{"-e", "a@gmail.com", "-p", "x", "pop"}, "pop: want stat"},
		{[]string{"-e", "a@gmail.com", "-p", "x", "pop", "retr"}, "Usage: retr N"},
		{[]string{"-e", "a@gmail.com", "-p", "x", "pop", "retr", "one"}, `"one" is not a message number`},
		{[]string{"-e", "a@gmail.com", "-p", "x", "pop", "stat", "-xml"}, "flag provided but not defined: -xml"},
	}
	for _, tc := range tests {
		out, errOut, code := runAgent(t, "", tc.args...)
		if code != exitUsage {
			t.Errorf("%q: exit %d, want %d", tc.args, code, exitUsage)
		}
		if !strings.HasPrefix(errOut, "agent: ") || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%q: stderr %q, want one line with %q", tc.args, errOut, tc.want)
		}
		if out != "" {
			t.Errorf("%q: stdout %q, want nothing", tc.args, out)
		}
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	out, errOut, code := runAgent(t, "", "-h")
	if code != exitOK || !strings.Contains(out, "usage:") || errOut != "" {
		t.Errorf("-h: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestSplitAddrList(t *testing.T) {
	t.Parallel()
	got := splitAddrList(`a@b.c, "Doe, J" <j@d.e>,, <x,y@z>`)
	want := []string{"a@b.c", `"Doe, J" <j@d.e>`, "<x,y@z>"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
}
