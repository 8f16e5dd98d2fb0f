package config

import (
	"slices"
	"strings"
	"testing"
)

const dnsServer = `
[server]
"a" = { smtp = 2025, pop = 2110 }
[accounts."a"]
"u@a.test" = "p"
`

func TestDNSSettings(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("t.toml", []byte(dnsServer), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RelayPort != 25 || cfg.DNSServers != nil || cfg.Resolver != "fdns" {
		t.Fatalf("defaults: relay_port %d dns_servers %v resolver %s", cfg.RelayPort, cfg.DNSServers, cfg.Resolver)
	}
	conf := dnsServer + `[gomta]
resolver = "dns"
dns_servers = ["127.0.0.1:5353", "192.0.2.53", "::1", "[2001:db8::53]:5300"]
relay_port = 2525
`
	cfg, err = Parse("t.toml", []byte(conf), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.1:5353", "192.0.2.53:53", "[::1]:53", "[2001:db8::53]:5300"}
	if !slices.Equal(cfg.DNSServers, want) || cfg.RelayPort != 2525 {
		t.Fatalf("dns_servers %v relay_port %d, want %v 2525", cfg.DNSServers, cfg.RelayPort, want)
	}
}

func TestDNSSettingsProblems(t *testing.T) {
	t.Parallel()
	conf := dnsServer + `[gomta]
dns_servers = ["ns.example:53", "127.0.0.1:0", "1.2.3.4:x"]
relay_port = 70000
`
	_, err := Parse("t.toml", []byte(conf), "", nil)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`dns_servers is set but resolver is not "dns"`, `dns_servers "ns.example:53"`,
		`dns_servers "127.0.0.1:0"`, `dns_servers "1.2.3.4:x"`, "relay_port 70000"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

// TestIPv6PValues: a [P] value may name an IPv6 address in brackets; one
// without brackets is ambiguous and rejected.
func TestIPv6PValues(t *testing.T) {
	t.Parallel()
	fdns := "[P]\n\"mx.v6.test.\" = \"[::1]:2025\"\n\"mx2.v6.test.\" = \"[2001:db8::25]:25\"\n"
	cfg, err := Parse("t.toml", []byte(dnsServer), "fdns", []byte(fdns))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.P["mx.v6.test"] != "[::1]:2025" || cfg.P["mx2.v6.test"] != "[2001:db8::25]:25" {
		t.Fatalf("P = %v", cfg.P)
	}
	if a, err := cfg.ResolveHost("MX.v6.test."); err != nil || a != "[::1]:2025" {
		t.Fatalf("ResolveHost: %q %v", a, err)
	}
	_, err = Parse("t.toml", []byte(dnsServer), "fdns", []byte("[P]\n\"mx.v6.test.\" = \"::1:2025\"\n"))
	if err == nil || !strings.Contains(err.Error(), `"::1:2025": want a port or host:port`) {
		t.Fatalf("unbracketed IPv6: %v", err)
	}
}
