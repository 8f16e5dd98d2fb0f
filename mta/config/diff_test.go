package config

import (
	"strings"
	"testing"
)

func mustParse(t *testing.T, s string) *Config {
	t.Helper()
	c, err := Parse("t.toml", []byte(s), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDiffAndKeepRunning: Diff names each change once, marks what needs a
// restart, never shows a password; KeepRunning leaves no restart change
// but keeps the others.
func TestDiffAndKeepRunning(t *testing.T) {
	t.Parallel()
	old := mustParse(t, `[server]
"a" = { smtp = 2025, pop = 2110 }
[accounts."a"]
"x@a.test" = "old-secret"
"gone@a.test" = "p"
[MX]
"b.test." = "mx.b.test."
[P]
"mx.b.test." = "2026"
`)
	next := mustParse(t, `[server]
"a" = { smtp = 3025, pop = 2110 }
"n" = { smtp = 4025, pop = 4110 }
[accounts."a"]
"x@a.test" = "new-secret"
"new@a.test" = "p"
[MX]
"b.test." = "mx.b.test."
[P]
"mx.b.test." = "127.0.0.2:25"
[gomta]
listen = "0.0.0.0"
max_errors = 0
`)
	var got []string
	for _, c := range Diff(old, next) {
		got = append(got, c.String())
	}
	want := []string{
		"listen: 127.0.0.1 -> 0.0.0.0 (needs a restart; not applied)",
		"max_errors: 10 -> 0",
		"server a: smtp 2025, pop 2110 -> smtp 3025, pop 2110 (needs a restart; not applied)",
		"accounts.a: (none) -> new@a.test",
		"accounts.a: x@a.test -> x@a.test (new password)",
		"accounts.a: gone@a.test -> (none)",
		"server n: (none) -> smtp 4025, pop 4110 (needs a restart; not applied)",
		"[P] mx.b.test: 127.0.0.1:2026 -> 127.0.0.2:25",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s := strings.Join(got, " "); strings.Contains(s, "secret") {
		t.Errorf("a password in the changes: %s", s)
	}
	next.KeepRunning(old)
	for _, c := range Diff(old, next) {
		if c.Restart {
			t.Errorf("after KeepRunning: %s", c)
		}
	}
	if next.Listen != "127.0.0.1" || next.Server("a").SMTPPort != 2025 || next.Server("n") != nil {
		t.Errorf("KeepRunning kept listen %s, port %d, host n %v", next.Listen, next.Server("a").SMTPPort, next.Server("n"))
	}
	if next.MaxErrors != 0 || next.Server("a").Accounts["new@a.test"] == "" {
		t.Error("KeepRunning undid a change that applies live")
	}
}

// TestProcessAndScheduleKeysNeedARestart: what no running part can take
// (each queue's schedule, the process's own listeners) is reported as
// needing a restart, not as applied.
func TestProcessAndScheduleKeysNeedARestart(t *testing.T) {
	for _, k := range []string{"retry", "retry_base", "retry_max", "max_queue_lifetime", "delay_warning",
		"metrics_listen", "control_socket", "listen", "data_dir"} {
		if !NeedsRestart(k) {
			t.Errorf("%s: a reload would claim to apply it", k)
		}
	}
	for _, k := range []string{"max_errors", "trusted_networks", "auth_failures"} {
		if NeedsRestart(k) {
			t.Errorf("%s: a live key reported as needing a restart", k)
		}
	}
}
