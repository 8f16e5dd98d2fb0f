package config

import (
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadCourseFilesUnchanged(t *testing.T) {
	cfg, err := Load("../../configs/cs305-config.toml", "../../configs/cs305-fdns.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Servers) != 2 {
		t.Fatalf("servers: %d", len(cfg.Servers))
	}
	qq := cfg.Server("exmail.qq.com")
	if qq == nil || qq.SMTPPort != 1025 || qq.POPPort != 3110 || qq.Accounts["usr1@mail.sustech.edu.cn"] != "pass1" {
		t.Fatalf("exmail.qq.com: %+v", qq)
	}
	if strings.Join(qq.Domains, ",") != "mail.sustech.edu.cn" {
		t.Errorf("domains: %v", qq.Domains)
	}
	if cfg.MX["gmail.com"] != "gmail-smtp-in.l.google.com" {
		t.Errorf("MX: %v", cfg.MX)
	}
	addr, err := cfg.ResolveHost("smtp.gmail.com.")
	if err != nil || addr != "127.0.0.1:2025" {
		t.Errorf("ResolveHost: %q %v", addr, err)
	}
	if a := cfg.Agents["mail.sustech.edu.cn"]; a.SMTP != "smtp.exmail.qq.com" || a.POP != "pop.exmail.qq.com" {
		t.Errorf("agent: %+v", a)
	}
	if cfg.DataDir != "./var" || cfg.Resolver != "fdns" || time.Duration(cfg.CommandTimeout) != 5*time.Minute {
		t.Errorf("defaults not applied: %+v", cfg.Settings)
	}
}

func TestBuiltInDefault(t *testing.T) {
	cfg, err := Load("", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Servers) != 2 || cfg.P["mxbiz1.qq.com"] != "127.0.0.1:1025" {
		t.Fatalf("default: %d servers, P=%v", len(cfg.Servers), cfg.P)
	}
}

func TestConfigProblemsAllReported(t *testing.T) {
	bad := `
[server]
"a" = { smtp = 0, pop = "x" }
"b" = { smtp = 2000, pop = 2000 }
[accounts."a"]
"nobody" = "p"
"ok@a.test" = ""
[accounts."ghost"]
"g@g.test" = "p"
[P]
"h." = "not a port"
[gomta]
resolver = "bogus"
listen = "localhost"
trusted_networks = ["300.0.0.0/8"]
max_queue = -5
typo_key = 1
`
	_, err := Parse("bad.toml", []byte(bad), "", nil)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`smtp: "0" is not a port`, `pop: "x" is not a port`, "port 2000 is used twice",
		`"nobody" is not an address`, "empty password", `[accounts."ghost"] names no server`,
		`"h" = "not a port"`, `resolver "bogus"`, `listen "localhost"`, "300.0.0.0/8", "max_queue", "unknown setting gomta.typo_key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestFdnsOverridesAndHostPort(t *testing.T) {
	fdns := "[MX]\n\"Example.ORG.\" = \"MX.example.org.\"\n[P]\n\"mx.example.org.\" = \"10.1.2.3:2525\"\n\"mxbiz1.qq.com.\" = 3025\n"
	cfg, err := Parse("default", mustRead(t, "../../configs/default.toml"), "fdns", []byte(fdns))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MX["example.org"] != "mx.example.org" || cfg.P["mxbiz1.qq.com"] != "127.0.0.1:3025" {
		t.Errorf("merge: MX=%v P=%v", cfg.MX, cfg.P)
	}
	if a, _ := cfg.ResolveHost("MX.Example.org."); a != "10.1.2.3:2525" {
		t.Errorf("host:port record: %q", a)
	}
}

func TestTrusted(t *testing.T) {
	cfg, err := Load("", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ip   string
		want bool
	}{{"127.0.0.1", true}, {"127.9.9.9", true}, {"::1", true}, {"::ffff:127.0.0.1", true}, {"192.0.2.1", false}, {"2001:db8::1", false}} {
		if got := cfg.Trusted(&net.TCPAddr{IP: net.ParseIP(c.ip), Port: 1}); got != c.want {
			t.Errorf("Trusted(%s) = %v", c.ip, got)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRetrySchedule: the config holds the one copy of the retry defaults
// (the queue has none of its own): Postfix's 300 s doubling to 4000 s for 5
// days, a delay notice after 4 hours; an explicit retry list, even [],
// wins over retry_base and retry_max.
func TestRetrySchedule(t *testing.T) {
	t.Parallel()
	base := "[server]\n\"a\" = { smtp = 2025, pop = 2110 }\n[accounts.\"a\"]\n\"x@a.test\" = \"p\"\n[gomta]\n"
	for _, tt := range []struct {
		gomta         string
		waits         []time.Duration
		base, maxWait time.Duration
		life, warn    time.Duration
	}{
		{"", nil, 5 * time.Minute, 4000 * time.Second, 5 * 24 * time.Hour, 4 * time.Hour},
		{"retry_base = \"1m\"\nretry_max = \"2h\"\nmax_queue_lifetime = \"2d12h\"\ndelay_warning = \"0s\"\n",
			nil, time.Minute, 2 * time.Hour, 60 * time.Hour, 0},
		{"retry = [\"1s\", \"1m\"]\nretry_base = \"1m\"\n", []time.Duration{time.Second, time.Minute}, 0, 0, 5 * 24 * time.Hour, 4 * time.Hour},
		{"retry = []\n", []time.Duration{}, 0, 0, 5 * 24 * time.Hour, 4 * time.Hour},
	} {
		cfg, err := Parse("t.toml", []byte(base+tt.gomta), "", nil)
		if err != nil {
			t.Fatalf("%q: %v", tt.gomta, err)
		}
		waits := cfg.RetryWaits()
		b, m := cfg.RetryBackoff()
		if !slices.Equal(waits, tt.waits) || (waits == nil) != (tt.waits == nil) || b != tt.base || m != tt.maxWait ||
			time.Duration(cfg.MaxQueueLifetime) != tt.life || time.Duration(cfg.DelayWarning) != tt.warn {
			t.Errorf("%q: waits %v base %v max %v lifetime %v warning %v", tt.gomta, waits, b, m, cfg.MaxQueueLifetime, cfg.DelayWarning)
		}
	}
}

func TestDurationDays(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"5d": 120 * time.Hour, "1d12h": 36 * time.Hour, "90s": 90 * time.Second, "0": 0} {
		var d Duration
		if err := d.UnmarshalText([]byte(in)); err != nil || time.Duration(d) != want {
			t.Errorf("%q: %v %v, want %v", in, time.Duration(d), err, want)
		}
	}
	for _, bad := range []string{"d", "-1d", "1.5d", "xd", "1d-30h", "-5s", "5days"} {
		var d Duration
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q accepted as %v", bad, time.Duration(d))
		}
	}
}

// TestRetrySettingsValidated: every bad retry setting is reported at once.
func TestRetrySettingsValidated(t *testing.T) {
	t.Parallel()
	cfg := "[server]\n\"a\" = { smtp = 2025, pop = 2110 }\n[accounts.\"a\"]\n\"x@a.test\" = \"p\"\n[gomta]\n" +
		"max_queue_lifetime = \"0s\"\nretry_base = \"0s\"\nretry_max = \"0s\"\ndelay_warning = \"1h\"\n"
	_, err := Parse("bad.toml", []byte(cfg), "", nil)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"max_queue_lifetime must be positive", "retry_base must be positive",
		"delay_warning must be shorter than max_queue_lifetime"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	cfg = strings.Replace(cfg, "retry_base = \"0s\"", "retry_base = \"1h\"", 1)
	if _, err := Parse("bad.toml", []byte(cfg), "", nil); err == nil || !strings.Contains(err.Error(), "retry_max must not be below retry_base") {
		t.Errorf("retry_max below retry_base: %v", err)
	}
}

// TestUTF8Accounts checks that accounts with UTF-8 names, in the course's
// file format, are read as written and that their domains are folded to the
// A-label form in which domains are compared.
func TestUTF8Accounts(t *testing.T) {
	const file = `
[server]
"mail.sustech.edu.cn" = { smtp = 3025, pop = 3110 }
[accounts."mail.sustech.edu.cn"]
"张三@mail.sustech.edu.cn" = "密码"
"postmaster@例子.中国" = "pw"
`
	const fdns = "[MX]\n\"例子.中国.\" = \"邮件.例子.中国.\"\n[P]\n\"邮件.例子.中国.\" = \"2525\"\n"
	cfg, err := Parse("utf8", []byte(file), "fdns", []byte(fdns))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Servers[0]
	if s.Accounts["张三@mail.sustech.edu.cn"] != "密码" {
		t.Errorf("accounts %q", s.Accounts)
	}
	if want := []string{"mail.sustech.edu.cn", "xn--fsqu00a.xn--fiqs8s"}; strings.Join(s.Domains, " ") != strings.Join(want, " ") {
		t.Errorf("domains %q, want %q", s.Domains, want)
	}
	if s.Postmaster != "postmaster@例子.中国" {
		t.Errorf("postmaster %q", s.Postmaster)
	}
	// The fake DNS tables are keyed by the folded names that the relay asks for.
	if a, _ := cfg.ResolveHost(cfg.MX["xn--fsqu00a.xn--fiqs8s"]); a != "127.0.0.1:2525" {
		t.Errorf("MX %q, host %q", cfg.MX, a)
	}
}
