package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gomta/mta/mtatest"
)

// TestConfigLoggedOnce: mtad logs its effective configuration in one line at
// start (flags applied, accounts by address), and no password of the config
// appears anywhere in its log.
func TestConfigLoggedOnce(t *testing.T) {
	t.Parallel()
	p := mtatest.FreePorts(t, 2)
	dir := t.TempDir()
	const secret = "Pw-never-logged-7f3a"
	conf := fmt.Sprintf(`
[server]
"mx.cfglog.test" = { smtp = %d, pop = %d }
[accounts."mx.cfglog.test"]
"ann@cfglog.test" = %q
[gomta]
max_errors = 7
retry = ["2s", "1m"]
`, p[0], p[1], secret)
	file := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	d := mtatest.StartDaemon(t, []string{"-config", file, "-data", data}, p[0], p[1])
	d.WaitLog(t, `"msg":"mtad started"`)
	d.Stop(t)
	out := d.Log.String()
	if strings.Contains(out, secret) {
		t.Errorf("a password is in the log:\n%s", out)
	}
	var lines []map[string]any
	for _, l := range strings.Split(out, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "config loaded" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("%d config lines, want 1:\n%s", len(lines), out)
	}
	c := lines[0]
	for k, want := range map[string]any{"file": file, "data_dir": data, "max_errors": 7.0, "resolver": "fdns",
		"retry": []any{"2s", "1m0s"}} {
		if got := c[k]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("config line %s = %v, want %v", k, got, want)
		}
	}
	servers, _ := c["servers"].([]any)
	if len(servers) != 1 {
		t.Fatalf("config line servers = %v", c["servers"])
	}
	s, _ := servers[0].(map[string]any)
	if fmt.Sprint(s["accounts"]) != "[ann@cfglog.test]" || s["name"] != "mx.cfglog.test" {
		t.Errorf("config line server = %v", s)
	}
}

// TestHelpListsEveryFlagWithDefault: mtad -h exits 0 and names each flag
// with its default, the empty ones too.
func TestHelpListsEveryFlagWithDefault(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	if code := realMain([]string{"-h"}, &out); code != 0 {
		t.Fatalf("mtad -h: exit %d", code)
	}
	for _, f := range []string{"config", "fdns", "n", "s", "p", "data", "log-format", "log-level", "pprof", "gen-cert"} {
		i := strings.Index(out.String(), "  -"+f+" ")
		if i < 0 {
			t.Errorf("-%s missing from:\n%s", f, out.String())
			continue
		}
		entry, _, _ := strings.Cut(out.String()[i+3:], "\n  -")
		if !strings.Contains(entry, "default") {
			t.Errorf("-%s has no default: %q", f, entry)
		}
	}
}
