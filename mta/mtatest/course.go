package mtatest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Backend is the storage the end-to-end tests run mtad on: "local" (the
// spool and Maildirs; the default) or "jetstream" (GOMTA_TEST_BACKEND=
// jetstream: a one-node embedded NATS JetStream cluster, replicas 1, in
// every config Course writes). make test runs the end-to-end suites on both.
func Backend() string {
	if os.Getenv("GOMTA_TEST_BACKEND") == "jetstream" {
		return "jetstream"
	}
	return "local"
}

// NeedLocal skips a test that needs the local backend (it reads the spool
// or the Maildirs themselves, fills the disk, or runs two mtad on one
// config) when the suite runs on the jetstream backend.
func NeedLocal(t testing.TB) {
	t.Helper()
	if Backend() != "local" {
		t.Skip("needs the local backend (spool and Maildirs); backend is " + Backend())
	}
}

// clusterTable is the [gomta.cluster] table of a one-node embedded
// cluster on a free port when the backend is jetstream, else "".
func clusterTable(t testing.TB) string {
	if Backend() != "jetstream" {
		return ""
	}
	return fmt.Sprintf("[gomta.cluster]\nnode = \"test\"\nembedded = true\nnats_listen = \"127.0.0.1:%d\"\nreplicas = 1\nack_wait = \"5s\"\n", FreePorts(t, 1)[0])
}

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
%s`, p[0], p[1], p[2], p[3], p[0], p[2], gomta, clusterTable(t))
	path = filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, p
}
