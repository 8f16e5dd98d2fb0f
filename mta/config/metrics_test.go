package config

import (
	"strings"
	"testing"
)

func TestCheckMetricsListen(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		addr    string
		ok      bool
		beyond  bool   // reachable from other machines
		mention string // in the error
	}{
		{"127.0.0.1:9100", true, false, ""},
		{"[::1]:9100", true, false, ""},
		{"127.0.0.2:9100", true, false, ""},
		{"192.0.2.10:9100", true, true, ""}, // an address of the machine, chosen
		{"0.0.0.0:9100", true, true, ""},    // every address, written out
		{"[::]:9100", true, true, ""},
		{":9100", false, true, "0.0.0.0:9100"},
		{"localhost:9100", false, true, "not a name"},
		{"127.0.0.1", false, true, "IP:PORT"},
		{"127.0.0.1:0", false, true, "not a port"},
		{"127.0.0.1:http", false, true, "not a port"},
	} {
		err := CheckMetricsListen(c.addr)
		if (err == nil) != c.ok {
			t.Errorf("CheckMetricsListen(%q) = %v, want ok %v", c.addr, err, c.ok)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), c.mention) {
			t.Errorf("CheckMetricsListen(%q) = %v, want it to mention %q", c.addr, err, c.mention)
		}
		if c.ok && MetricsBeyondLoopback(c.addr) != c.beyond {
			t.Errorf("MetricsBeyondLoopback(%q) = %v, want %v", c.addr, !c.beyond, c.beyond)
		}
	}
}

// metrics_listen is off by default, and a bad one is reported with every
// other problem of the file.
func TestMetricsListenSetting(t *testing.T) {
	t.Parallel()
	base := "[server]\n\"a\" = { smtp = 2025, pop = 2110 }\n[accounts.\"a\"]\n\"x@a.test\" = \"p\"\n"
	cfg, err := Parse("ok.toml", []byte(base), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MetricsListen != "" {
		t.Errorf("metrics_listen defaults to %q, want off", cfg.MetricsListen)
	}
	cfg, err = Parse("on.toml", []byte(base+"[gomta]\nmetrics_listen = \"127.0.0.1:9100\"\n"), "", nil)
	if err != nil || cfg.MetricsListen != "127.0.0.1:9100" {
		t.Fatalf("metrics_listen = %q, %v", cfg.MetricsListen, err)
	}
	_, err = Parse("bad.toml", []byte(base+"[gomta]\nmetrics_listen = \":9100\"\nmax_errors = -1\n"), "", nil)
	if err == nil || !strings.Contains(err.Error(), "metrics_listen") || !strings.Contains(err.Error(), "max_errors") {
		t.Errorf("bad metrics_listen: %v, want it listed with the other problem", err)
	}
}
