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
	mtatest.NeedLocal(t)
	t.Parallel()
	disk := tinyDisk(t, "3m")
	// A delivery deferred for want of space is retried soon.
	cfg, p := writeConfig(t, "retry_base = \"1s\"\nretry_max = \"1s\"\n")
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
	// Every accepted message reaches the mailbox. A delivery is a copy of
	// its spool file, so the last ones accepted may find no room: they are
	// deferred, and delivered once reading and deleting the others over
	// POP3 frees the space.
	py := needTool(t, "python3")
	read := 0
	mtatest.Eventually(t, fmt.Sprintf("%d accepted messages read and deleted", accepted), func() bool {
		out, err := exec.Command(py, "-c", `
import poplib, sys
host, port = sys.argv[1].rsplit(":", 1)
p = poplib.POP3(host, int(port), timeout=10)
p.user("usr2@mail.sustech.edu.cn"); p.pass_("pass2")
n = p.stat()[0]
for i in range(1, n + 1):
    p.retr(i); p.dele(i)
p.quit()
print(n)
`, mtatest.Addr(p[1])).Output()
		var n int
		if _, serr := fmt.Sscan(string(out), &n); err == nil && serr == nil {
			read += n
		}
		return read >= accepted
	})
	if read != accepted {
		t.Errorf("mailbox held %d messages, %d were accepted", read, accepted)
	}
	// Drafts are written in spool/msg: once every accepted message is
	// delivered, a file left there is a refused message's partial body.
	msgDir := filepath.Join(disk, "exmail.qq.com", "spool", "msg")
	mtatest.Eventually(t, "no body left in spool/msg (delivered or refused)", func() bool {
		entries, err := os.ReadDir(msgDir)
		return err == nil && len(entries) == 0
	})
	err := smtp.SendMail(addr, nil, "usr1@mail.sustech.edu.cn", []string{"usr2@mail.sustech.edu.cn"}, []byte("Subject: after\r\n\r\nspace is back\r\n"))
	if err != nil {
		t.Fatalf("after freeing space: %v", err)
	}
}
