package main

import (
	"errors"
	"fmt"
	"net/smtp"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gomta/mta/mtatest"
)

// tinyDisk mounts a tmpfs of size at a temporary folder (root only; the test
// is skipped where mounting is not allowed) and unmounts it at cleanup.
func tinyDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestDiskFull fills the data disk: messages are refused with a 4xx (never
// a 250 that is not durable, never a dropped connection), no partial body is
// left in the spool, and mail flows again once space returns.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	disk := tinyDisk(t, "3m")
	cfg, p := writeConfig(t, "")
	mtatest.StartDaemon(t, []string{"-config", cfg, "-data", disk}, p...)
	addr := mtatest.Addr(p[0])
	body := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 2048) // 128 KiB
	accepted, refused := 0, 0
	for i := range 100 { // 3 MiB fills up well before 100 × 128 KiB
		err := smtp.SendMail(addr, nil, "usr1@mail.sustech.edu.cn", []string{"usr2@mail.sustech.edu.cn"},
			[]byte(fmt.Sprintf("Subject: fill %d\r\n\r\n%s", i, body)))
		if err == nil {
			accepted++
			continue
		}
		var te *textproto.Error
		if !errors.As(err, &te) || te.Code/100 != 4 {
			t.Fatalf("message %d on a full disk: %v, want a 4xx reply", i, err)
		}
		refused++
		break
	}
	if refused == 0 {
		t.Fatalf("the disk never filled (%d accepted)", accepted)
	}
	t.Logf("%d messages accepted before the disk was full", accepted)
	// Every accepted message reaches the mailbox; deleting them frees the space.
	waitMail(t, mtatest.Addr(p[1]), "usr2@mail.sustech.edu.cn", "pass2", accepted)
	// Drafts are written in spool/msg: once every accepted message is
	// delivered, a file left there is a refused message's partial body.
	msgDir := filepath.Join(disk, "exmail.qq.com", "spool", "msg")
	mtatest.Eventually(t, "no body left in spool/msg (delivered or refused)", func() bool {
		entries, err := os.ReadDir(msgDir)
		return err == nil && len(entries) == 0
	})
	out := python(t, `
import poplib, sys
host, port = sys.argv[1].rsplit(":", 1)
p = poplib.POP3(host, int(port), timeout=10)
p.user("usr2@mail.sustech.edu.cn"); p.pass_("pass2")
n = p.stat()[0]
for i in range(1, n + 1):
    p.dele(i)
p.quit()
print(n)
`, mtatest.Addr(p[1]))
	if strings.TrimSpace(out) != fmt.Sprint(accepted) {
		t.Errorf("mailbox held %s messages, %d were accepted", strings.TrimSpace(out), accepted)
	}
	err := smtp.SendMail(addr, nil, "usr1@mail.sustech.edu.cn", []string{"usr2@mail.sustech.edu.cn"}, []byte("Subject: after\r\n\r\nspace is back\r\n"))
	if err != nil {
		t.Fatalf("after freeing space: %v", err)
	}
}
