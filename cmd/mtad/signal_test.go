package main

import (
	"fmt"
	"net/smtp"
	"strings"
	"syscall"
	"testing"

	"gomta/mta/mtatest"
)

// TestSIGHUPIsLoggedAndIgnored: SIGHUP (reload, not implemented yet) must not
// kill mtad: it says so in the log and keeps serving, and a message sent
// after it is delivered.
func TestSIGHUPIsLoggedAndIgnored(t *testing.T) {
	cfg, p := writeConfig(t, "")
	d := startDaemon(t, []string{"-config", cfg, "-data", t.TempDir()}, p...)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	exited := false
	mtatest.Eventually(t, "the SIGHUP log line (or mtad's exit)", func() bool {
		select {
		case <-d.done:
			exited = true
			return true
		default:
		}
		return strings.Contains(d.log.String(), "SIGHUP ignored")
	})
	if exited {
		t.Fatalf("mtad exited on SIGHUP: %v", d.err)
	}
	for _, l := range strings.Split(d.log.String(), "\n") {
		if strings.Contains(l, "SIGHUP ignored") && !strings.Contains(l, `"level":"warn"`) {
			t.Errorf("the SIGHUP line is not a warning: %s", l)
		}
	}
	if err := smtp.SendMail(fmt.Sprintf("127.0.0.1:%d", p[0]), nil, "usr1@mail.sustech.edu.cn", []string{"usr2@mail.sustech.edu.cn"},
		message("usr1@mail.sustech.edu.cn", "usr2@mail.sustech.edu.cn", "after-hup", "still here")); err != nil {
		t.Fatalf("SMTP after SIGHUP: %v", err)
	}
	msgs := waitMail(t, fmt.Sprintf("127.0.0.1:%d", p[1]), "usr2@mail.sustech.edu.cn", "pass2", 1)
	if !strings.Contains(msgs[0], "Subject: after-hup") {
		t.Errorf("delivered after SIGHUP: %q", msgs[0])
	}
}
