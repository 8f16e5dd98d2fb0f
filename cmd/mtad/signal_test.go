package main

import (
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
	t.Parallel()
	cfg, p := writeConfig(t, "")
	d := mtatest.StartDaemon(t, []string{"-config", cfg, "-data", t.TempDir()}, p...)
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	exited := false
	mtatest.Eventually(t, "the SIGHUP log line (or mtad's exit)", func() bool {
		select {
		case <-d.Done():
			exited = true
			return true
		default:
		}
		return strings.Contains(d.Log.String(), "SIGHUP ignored")
	})
	if exited {
		t.Fatalf("mtad exited on SIGHUP: %v", d.Err())
	}
	for _, l := range strings.Split(d.Log.String(), "\n") {
		if strings.Contains(l, "SIGHUP ignored") && !strings.Contains(l, `"level":"warn"`) {
			t.Errorf("the SIGHUP line is not a warning: %s", l)
		}
	}
	if err := smtp.SendMail(mtatest.Addr(p[0]), nil, "usr1@mail.sustech.edu.cn", []string{"usr2@mail.sustech.edu.cn"},
		message("usr1@mail.sustech.edu.cn", "usr2@mail.sustech.edu.cn", "after-hup", "still here")); err != nil {
		t.Fatalf("SMTP after SIGHUP: %v", err)
	}
	msgs := waitMail(t, mtatest.Addr(p[1]), "usr2@mail.sustech.edu.cn", "pass2", 1)
	if !strings.Contains(msgs[0], "Subject: after-hup") {
		t.Errorf("delivered after SIGHUP: %q", msgs[0])
	}
}
