package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gomta/mta/mtatest"
)

// pfConfig is the gomta side of the Postfix interop test: the course's
// exmail.qq.com with a UTF-8 account, on machine A; pf.test is Postfix's,
// on machine B.
const pfConfig = `[server]
"exmail.qq.com" = { smtp = 1025, pop = 3110 }

[accounts."exmail.qq.com"]
"张三@mail.sustech.edu.cn" = "密码"

[gomta]
listen = "192.0.2.1"
trusted_networks = ["127.0.0.0/8", "192.0.2.1/32"]
`

const pfFdns = `[MX]
"mail.sustech.edu.cn." = "mxbiz1.qq.com."
"pf.test." = "mx.pf.test."

[P]
"mxbiz1.qq.com." = "192.0.2.1:1025"
"mx.pf.test." = "192.0.2.2:2525"
`

// pfSend sends one SMTPUTF8 message; argv: host port from to subject.
const pfSend = `
import smtplib, sys
host, port, frm, to, subject = sys.argv[1:6]
msg = ("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\n你好, this went through SMTPUTF8.\r\n" % (frm, to, subject)).encode()
s = smtplib.SMTP(host, int(port), timeout=10)
s.sendmail(frm, [to], msg, mail_options=["SMTPUTF8"])
s.quit()
`

// pfRead prints the messages of a UTF-8 POP3 account after UTF8 (RFC 6856);
// argv: host port user password.
const pfRead = `
import poplib, sys
p = poplib.POP3(sys.argv[1], int(sys.argv[2]), timeout=10)
p.utf8(); p.user(sys.argv[3]); p.pass_(sys.argv[4])
for i in range(1, len(p.list()[1]) + 1):
    print(b"\r\n".join(p.retr(i)[1]).decode("utf-8"))
    print("=== end")
p.quit()
`

// TestPostfixSMTPUTF8 relays SMTPUTF8 mail between gomta and a real Postfix
// both ways: Postfix (machine B, pf.test, smtputf8_enable) relays a message
// from 用户@pf.test to gomta's UTF-8 account 张三@mail.sustech.edu.cn, read
// back over POP3 after UTF8; gomta relays 张三's message to 用户@pf.test,
// which Postfix delivers into its Maildir. Postfix runs in its own network
// namespace (no route out, no DNS: smtp_dns_support_level = disabled) and
// is stopped by the cleanup. It skips without root, ip netns or Postfix.
func TestPostfixSMTPUTF8(t *testing.T) {
	postfix, py := needTool(t, "postfix"), needTool(t, "python3")
	postconf := needTool(t, "postconf")
	dir := t.TempDir()
	// Postfix's daemons run as postfix and nobody: they must reach their
	// directories (t.TempDir makes 0700 ones).
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m := newMachines(t)
	pf := startPostfix(t, m, postfix, postconf, filepath.Join(dir, "postfix"))

	cfg, fdns := filepath.Join(dir, "gomta.toml"), filepath.Join(dir, "fdns.toml")
	for f, s := range map[string]string{cfg: pfConfig, fdns: pfFdns} {
		if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := m.start(0, "-config", cfg, "-fdns", fdns, "-n", "exmail.qq.com", "-data", filepath.Join(dir, "data"))

	// Postfix → gomta: submitted to Postfix on B, relayed to A with SMTPUTF8.
	if out, err := m.exec(1, py, "-c", pfSend, "192.0.2.2", "2525", "用户@pf.test", "张三@mail.sustech.edu.cn", "从 Postfix 到 gomta"); err != nil {
		t.Fatalf("submission to Postfix: %v\n%s", err, out)
	}
	var got string
	mtatest.Eventually(t, "Postfix's message in 张三's mailbox", func() bool {
		got, _ = m.exec(0, py, "-c", pfRead, "192.0.2.1", "3110", "张三@mail.sustech.edu.cn", "密码")
		return strings.Contains(got, "Subject: 从 Postfix 到 gomta")
	})
	for _, want := range []string{"Return-Path: <用户@pf.test>", "Delivered-To: 张三@mail.sustech.edu.cn",
		"by exmail.qq.com (gomta) with UTF8SMTP", // Postfix → gomta declared SMTPUTF8
		"by mx.pf.test (Postfix) with UTF8SMTP", "你好, this went through SMTPUTF8."} {
		if !strings.Contains(got, want) {
			t.Errorf("the message from Postfix lacks %q:\n%s", want, got)
		}
	}
	acc := d.waitFind(t, 0, "message accepted", "mail_from", "用户@pf.test")
	t.Logf("Postfix → gomta:\n%s\ngomta: %v", pf.log(t, "张三@mail.sustech.edu.cn"), acc)

	// gomta → Postfix: submitted to gomta on A, relayed to B with SMTPUTF8.
	if out, err := m.exec(0, py, "-c", pfSend, "192.0.2.1", "1025", "张三@mail.sustech.edu.cn", "用户@pf.test", "从 gomta 到 Postfix"); err != nil {
		t.Fatalf("submission to gomta: %v\n%s", err, out)
	}
	rel := d.waitFind(t, 0, "relay delivered", "rcpt", "用户@pf.test")
	mtatest.Eventually(t, "gomta's message in Postfix's Maildir for 用户", func() bool {
		got = pf.maildir(t)
		return strings.Contains(got, "Subject: 从 gomta 到 Postfix")
	})
	for _, want := range []string{"Delivered-To: 用户@pf.test", "Return-Path: <张三@mail.sustech.edu.cn>",
		"by mx.pf.test (Postfix) with UTF8SMTP", // gomta → Postfix declared SMTPUTF8
		"by exmail.qq.com (gomta) with UTF8SMTP", "你好, this went through SMTPUTF8."} {
		if !strings.Contains(got, want) {
			t.Errorf("the message Postfix delivered lacks %q:\n%s", want, got)
		}
	}
	t.Logf("gomta → Postfix:\ngomta: %v\n%s", rel, pf.log(t, "用户@pf.test"))
}

// pfInstance is a Postfix instance with its own config and queue directory.
type pfInstance struct {
	dir string // config in dir/etc, queue in dir/spool, log in dir/postfix.log, mail in dir/mail
}

// startPostfix configures and starts Postfix in machine B's namespace on
// 192.0.2.2:2525: pf.test is a virtual mailbox domain with 用户@pf.test, and
// mail.sustech.edu.cn is relayed to 192.0.2.1:1025. The cleanup stops it.
func startPostfix(t *testing.T, m *machines, postfix, postconf, dir string) *pfInstance {
	t.Helper()
	pf := &pfInstance{dir: dir}
	etc := filepath.Join(dir, "etc")
	for _, d := range []string{etc, filepath.Join(dir, "spool"), filepath.Join(dir, "data"), filepath.Join(dir, "mail")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	master := "/etc/postfix/master.cf"
	if _, err := os.Stat(master); err != nil { // Debian's "No configuration" leaves only the template
		master = "/usr/share/postfix/master.cf.dist"
	}
	for _, c := range [][]string{{"chown", "postfix:postfix", filepath.Join(dir, "data")}, {"chown", "nobody", filepath.Join(dir, "mail")},
		{"cp", master, filepath.Join(etc, "master.cf")}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Skipf("Postfix interop: %v: %v\n%s", c, err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(etc, "main.cf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pc := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(postconf, append([]string{"-c", etc}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("postconf %v: %v\n%s", args, err, out)
		}
	}
	pc("-e", "compatibility_level = 3.6", "queue_directory = "+filepath.Join(dir, "spool"), "data_directory = "+filepath.Join(dir, "data"),
		"myhostname = mx.pf.test", "mydomain = pf.test", "mydestination =", "inet_interfaces = 192.0.2.2", "inet_protocols = ipv4",
		"mynetworks = 127.0.0.0/8 192.0.2.2/32", "smtpd_peername_lookup = no", "smtp_dns_support_level = disabled",
		"smtputf8_enable = yes", "relay_domains = mail.sustech.edu.cn",
		"transport_maps = inline:{mail.sustech.edu.cn=smtp:[192.0.2.1]:1025}",
		"virtual_mailbox_domains = pf.test", "virtual_mailbox_base = "+filepath.Join(dir, "mail"),
		"virtual_mailbox_maps = inline:{用户@pf.test=yonghu/}", "virtual_minimum_uid = 100",
		"virtual_uid_maps = static:65534", "virtual_gid_maps = static:65534",
		"maillog_file = "+filepath.Join(dir, "postfix.log"), "maillog_file_prefixes = "+dir,
		"biff = no", "alias_maps =", "alias_database =", "local_recipient_maps =")
	pc("-F", "*/*/chroot = n")
	pc("-MX", "smtp/inet")
	pc("-M", "192.0.2.2:2525/inet=192.0.2.2:2525 inet n - n - - smtpd")
	pc("-M", "postlog/unix-dgram=postlog unix-dgram n - n - 1 postlogd")
	// Registered before the start: LIFO, so it runs before the namespaces go.
	t.Cleanup(func() {
		m.exec(1, postfix, "-c", etc, "abort")
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "postfix.log"))
			t.Logf("Postfix log:\n%s", b)
		}
	})
	if out, err := m.exec(1, postfix, "-c", etc, "start"); err != nil {
		t.Fatalf("postfix start: %v\n%s", err, out)
	}
	mtatest.Eventually(t, "Postfix's master started", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "postfix.log"))
		return strings.Contains(string(b), "daemon started")
	})
	return pf
}

// log returns Postfix's log lines about the queue ids that delivered to rcpt.
func (pf *pfInstance) log(t *testing.T, rcpt string) string {
	b, err := os.ReadFile(filepath.Join(pf.dir, "postfix.log"))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	lines := strings.Split(string(b), "\n")
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 5 && strings.Contains(l, "to=<"+rcpt+">") {
			ids[strings.TrimSuffix(f[5], ":")] = true
		}
	}
	var out []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 5 && ids[strings.TrimSuffix(f[5], ":")] {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// maildir returns every message in 用户@pf.test's Maildir new/.
func (pf *pfInstance) maildir(t *testing.T) string {
	files, _ := filepath.Glob(filepath.Join(pf.dir, "mail", "yonghu", "new", "*"))
	var sb strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sb, "%s\n=== end\n", b)
	}
	return sb.String()
}
