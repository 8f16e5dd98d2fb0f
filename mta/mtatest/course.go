package mtatest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Course writes the course's two mail hosts as one config on free ports:
// exmail.qq.com (usr1@mail.sustech.edu.cn, pass1; usr2@…, pass2) and gmail.com
// (usr@gmail.com, pass), with the fake DNS pointing each domain at its
// host's SMTP port, and gomta as the [gomta] table's lines. It returns the
// file's path and the ports: exmail.qq.com SMTP, POP3, gmail.com SMTP, POP3.
func Course(t testing.TB, gomta string) (path string, ports []int) {
	t.Helper()
	p := FreePorts(t, 4)
	cfg := fmt.Sprintf(`[server]
"exmail.qq.com" = { smtp = %d, pop = %d }
"gmail.com" = { smtp = %d, pop = %d }
[accounts."exmail.qq.com"]
"usr1@mail.sustech.edu.cn" = "pass1"
"usr2@mail.sustech.edu.cn" = "pass2"
[accounts."gmail.com"]
"usr@gmail.com" = "pass"
[MX]
"mail.sustech.edu.cn." = "mxbiz1.qq.com."
"gmail.com." = "gmail-smtp-in.l.google.com."
[P]
"mxbiz1.qq.com." = "%d"
"gmail-smtp-in.l.google.com." = "%d"
[gomta]
%s
`, p[0], p[1], p[2], p[3], p[0], p[2], gomta)
	path = filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, p
}
