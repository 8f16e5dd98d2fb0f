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

// TestDefaultRetrySchedule: the config holds the one copy of the retry
// schedule (the queue has none of its own): about 8 hours from acceptance
// to the final attempt.
func TestDefaultRetrySchedule(t *testing.T) {
	s := DefaultSettings()
	got := s.RetryWaits()
	want := []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute,
		10 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour}
	if !slices.Equal(got, want) {
		t.Errorf("default retry %v, want %v", got, want)
	}
}
