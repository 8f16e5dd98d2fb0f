package config

import (
	"strings"
	"testing"
)

// TestDanglingNamesAllReported: with resolver = "fdns" a mail exchanger
// without a [P] entry bounces all mail for its domain, and an [agent] host
// without one cannot be reached; both are config problems, listed with every
// other problem in one error.
func TestDanglingNamesAllReported(t *testing.T) {
	t.Parallel()
	bad := `
[agent]
"a.test" = { smtp = "smtp.a.test", pop = "pop.nowhere.test" }
"b.test" = { smtp = "127.0.0.1:2525", pop = "pop.b.test" }
[server]
"a" = { smtp = 2025, pop = 2110 }
[accounts."a"]
"x@a.test" = "p"
[MX]
"a.test." = "mx.a.test."
"c.test." = "mx.nowhere.test."
[P]
"mx.a.test." = "2025"
"smtp.a.test." = "2025"
"pop.b.test." = "2110"
[gomta]
max_errors = -1
`
	_, err := Parse("bad.toml", []byte(bad), "fdns.toml", []byte("[MX]\n\"d.test.\" = \"mx.d.test.\"\n"))
	if err == nil {
		t.Fatal("config with dangling names accepted")
	}
	for _, want := range []string{
		`[MX] "c.test" = "mx.nowhere.test": the mail exchanger has no [P] entry`,
		`[MX] "d.test" = "mx.d.test": the mail exchanger has no [P] entry`,
		`[agent] "a.test" pop = "pop.nowhere.test" has no [P] entry`,
		"max_errors",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	for _, fine := range []string{`"mx.a.test" has`, `smtp.a.test" has`, "127.0.0.1:2525", `pop.b.test" has`} {
		if strings.Contains(err.Error(), fine) {
			t.Errorf("error mentions %q, which resolves:\n%v", fine, err)
		}
	}
}

// TestDNSResolverAllowsMXWithoutP: with real DNS as the fallback, an MX host
// without [P] entry is dialled on port 25, so it is no problem.
func TestDNSResolverAllowsMXWithoutP(t *testing.T) {
	t.Parallel()
	cfg := "[server]\n\"a\" = { smtp = 2025, pop = 2110 }\n[accounts.\"a\"]\n\"x@a.test\" = \"p\"\n" +
		"[MX]\n\"c.test.\" = \"mx.c.test.\"\n[gomta]\nresolver = \"dns\"\n"
	if _, err := Parse("dns.toml", []byte(cfg), "", nil); err != nil {
		t.Fatal(err)
	}
}
func TestPostmasterAccount(t *testing.T) {
	t.Parallel()
	base := "[server]\n\"a\" = { smtp = 2025, pop = 2110 }\n[accounts.\"a\"]\n"
	for _, c := range []struct{ name, conf, want string }{
		{"first account in file order", `"zed@a.test" = "p"` + "\n" + `"amy@a.test" = "p"` + "\n", "zed@a.test"},
		{"account named postmaster", `"zed@a.test" = "p"` + "\n" + `"PostMaster@a.test" = "p"` + "\n", "PostMaster@a.test"},
		{"setting, any case", `"zed@a.test" = "p"` + "\n" + `"amy@a.test" = "p"` + "\n" +
			"[gomta.postmaster]\n\"a\" = \"AMY@A.test\"\n", "amy@a.test"},
	} {
		cfg, err := Parse(c.name, []byte(base+c.conf), "", nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := cfg.Server("a").Postmaster; got != c.want {
			t.Errorf("%s: postmaster %q, want %q", c.name, got, c.want)
		}
	}
}

// TestControlSocket: the control socket is control.sock in data_dir unless
// control_socket names one, and a path longer than a Unix socket takes is
// a config problem (listen(2) would fail at start with a vaguer error).
func TestControlSocket(t *testing.T) {
	t.Parallel()
	base := "[server]\n\"a\" = { smtp = 2025, pop = 2110 }\n[accounts.\"a\"]\n\"x@a.test\" = \"p\"\n[gomta]\n"
	cfg, err := Parse("c.toml", []byte(base+"data_dir = \"/srv/mail\"\n"), "", nil)
	if err != nil || cfg.ControlPath() != "/srv/mail/control.sock" {
		t.Fatalf("default control socket: %v %v", cfg, err)
	}
	cfg, err = Parse("c.toml", []byte(base+"control_socket = \"/run/gomta/ctl.sock\"\n"), "", nil)
	if err != nil || cfg.ControlPath() != "/run/gomta/ctl.sock" {
		t.Fatalf("control_socket: %v %v", cfg, err)
	}
	long := "/" + strings.Repeat("d", 120) + "/ctl.sock"
	_, err = Parse("c.toml", []byte(base+"control_socket = \""+long+"\"\n"), "", nil)
	if err == nil || !strings.Contains(err.Error(), "a Unix socket path takes at most 107") {
		t.Fatalf("a control socket path of %d octets: %v", len(long), err)
	}
}

// TestRelayConcurrencyAndBackoff: the relay's per-destination settings have
// their defaults, are read from [gomta], and must be positive.
func TestRelayConcurrencyAndBackoff(t *testing.T) {
	t.Parallel()
	base := "[server]\n\"a\" = { smtp = 2025, pop = 2110 }\n[accounts.\"a\"]\n\"x@a.test\" = \"p\"\n"
	c, err := Parse("a.toml", []byte(base), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.RelayConcurrency != 20 || c.RelayBackoff.String() != "30s" {
		t.Fatalf("defaults %d %v", c.RelayConcurrency, c.RelayBackoff)
	}
	c, err = Parse("a.toml", []byte(base+"[gomta]\nrelay_concurrency = 3\nrelay_backoff = \"2s\"\n"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.RelayConcurrency != 3 || c.RelayBackoff.String() != "2s" {
		t.Fatalf("read %d %v", c.RelayConcurrency, c.RelayBackoff)
	}
	_, err = Parse("a.toml", []byte(base+"[gomta]\nrelay_concurrency = 0\nrelay_backoff = \"0s\"\n"), "", nil)
	for _, want := range []string{"relay_concurrency must be positive", "relay_backoff must be positive"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}
