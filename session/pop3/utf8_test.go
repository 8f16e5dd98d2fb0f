package pop3_test

import (
	"os/exec"
	"strings"
	"testing"

	"gomta/session/pop3"
)

// TestUTF8Command checks RFC 6856: UTF8 in AUTHORIZATION state only, a
// UTF-8 user name by USER before and after it, and a name that is not
// UTF-8 refused after it.
func TestUTF8Command(t *testing.T) {
	t.Parallel()
	be := newBackend()
	be.AddUser("张三@mail.sustech.edu.cn", "密码 1")
	be.Add("张三@mail.sustech.edu.cn", []byte("Subject: 你好\r\n\r\n正文\r\n"))
	ts := start(t, be, pop3.Config{MaxErrors: 100})

	before := dial(t, ts.addr)
	before.cmd("USER 张三@mail.sustech.edu.cn", "+OK send PASS")
	before.cmd("PASS 密码 1", "+OK maildrop has 1 messages (27 octets)")
	before.cmd("UTF8", "-ERR already logged in")
	before.cmd("QUIT", "+OK "+host+" signing off (1 messages left)")
	before.expectEOF()
	waitReleased(t, be, "张三@mail.sustech.edu.cn")

	after := dial(t, ts.addr)
	after.cmd("UTF8 now", "-ERR too many arguments")
	after.cmd("UTF8", "+OK UTF8 enabled")
	after.cmd("USER \xff\xfe", "-ERR user name is not valid UTF-8")
	after.cmd("USER 张三@mail.sustech.edu.cn", "+OK send PASS")
	after.cmd("PASS 密码 1", "+OK maildrop has 1 messages (27 octets)")
	after.cmd("RETR 1", "+OK 27 octets", "Subject: 你好", "", "正文", ".")
	after.cmd("QUIT", "+OK "+host+" signing off (1 messages left)")
	after.expectEOF()
}

// TestPythonPoplibUTF8 logs in with Python's poplib after utf8() (RFC 6856)
// as a user with a UTF-8 name and reads the message back byte for byte.
func TestPythonPoplibUTF8(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	const msg = "From: 李四@例子.中国\r\nSubject: 你好\r\n\r\n正文 body\r\n"
	be := newBackend()
	be.AddUser("张三@mail.sustech.edu.cn", "密码")
	be.Add("张三@mail.sustech.edu.cn", []byte(msg))
	ts := start(t, be, pop3.Config{})
	const script = `
import poplib, sys
p = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=10)
assert 'UTF8' in p.capa(), p.capa()
print(p.utf8().decode())
p.user('张三@mail.sustech.edu.cn')
p.pass_('密码')
resp, lines, octets = p.retr(1)
sys.stdout.buffer.write(b'\r\n'.join(lines) + b'\r\n')
p.quit()
`
	out, err := exec.Command(py, "-c", script, strings.TrimPrefix(ts.addr[strings.LastIndexByte(ts.addr, ':'):], ":")).CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	if want := "+OK UTF8 enabled\n" + msg; string(out) != want {
		t.Errorf("poplib read %q, want %q", out, want)
	}
}
