package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gomta/mta/control"
	"gomta/mta/mtatest"
)

// buildMtactl builds cmd/mtactl into a directory of the test.
func buildMtactl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mtactl")
	if out, err := exec.Command("go", "build", "-o", bin, "gomta/cmd/mtactl").CombinedOutput(); err != nil {
		t.Fatalf("go build mtactl: %v\n%s", err, out)
	}
	return bin
}

// deferToDown rewrites a node's config of newCluster: the domain down.test
// has its MX on port down, where nothing listens, and a deferred message
// waits an hour (retry) unless an operator acts; the relay's back-off is
// cut short so that a released message is attempted again at once.
func deferToDown(t *testing.T, config string, down int) {
	t.Helper()
	b, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for _, r := range [][2]string{
		{`"mail.sustech.edu.cn." = "mxbiz1.qq.com."`, `"mail.sustech.edu.cn." = "mxbiz1.qq.com."` + "\n" + `"down.test." = "mx.down.test."`},
		{"retry_base = \"1s\"\nretry_max = \"2s\"\n", "retry = [\"1h\", \"1h\", \"1h\"]\nrelay_backoff = \"1ms\"\n"},
	} {
		if !strings.Contains(cfg, r[0]) {
			t.Fatalf("newCluster's config has no %q", r[0])
		}
		cfg = strings.Replace(cfg, r[0], r[1], 1)
	}
	p := regexp.MustCompile(`(?m)^"mxbiz1\.qq\.com\." = "\d+"$`)
	if !p.MatchString(cfg) {
		t.Fatal("newCluster's config has no P record for mxbiz1.qq.com.")
	}
	cfg = p.ReplaceAllStringFunc(cfg, func(l string) string { return l + fmt.Sprintf("\n\"mx.down.test.\" = \"%d\"", down) })
	if err := os.WriteFile(config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ctlRun runs mtactl against node n's control socket (in its data
// directory) and returns its combined output.
func ctlRun(t *testing.T, bin string, n *clusterNode, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(bin, append([]string{"-data", n.data}, args...)...).CombinedOutput()
	return string(out), err
}

// ctlList is `mtactl queue list -json` on n, parsed.
func ctlList(t *testing.T, bin string, n *clusterNode) ([]control.Message, error) {
	t.Helper()
	out, err := ctlRun(t, bin, n, "queue", "list", "-json")
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
	}
	var ms []control.Message
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m control.Message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("line %q: %v", sc.Text(), err)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// logged reports whether one line of n's log holds every part.
func logged(n *clusterNode, parts ...string) bool {
	for l := range strings.Lines(n.d.Log.String()) {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}

// waitLogged waits until n's log has a line msg about id (the log reaches
// the test through a pipe, after mtactl's answer).
func waitLogged(t *testing.T, n *clusterNode, msg, id string) {
	t.Helper()
	mtatest.Eventually(t, n.name+" logging "+msg+" "+id, func() bool {
		return logged(n, `"msg":"`+msg+`"`, `"msg_id":"`+id+`"`)
	})
}

// TestClusterControlAnyNode: a message submitted to n1 whose delivery is
// deferred is listed and shown by mtactl on n2, held, released and dropped
// by mtactl on n3, and each action shows on the other nodes: the hold in
// n1's listing, the release as a new attempt, the drop as a bounce read
// over POP3 from n1 and an empty queue there. mtactl queue … on any node
// shows and acts on the cluster's queue.
func TestClusterControlAnyNode(t *testing.T) {
	if testing.Short() {
		t.Skip("three-node cluster skipped in -short mode")
	}
	t.Parallel()
	ctl := buildMtactl(t)
	nodes := newCluster(t, 3)
	down := mtatest.FreePorts(t, 1)[0]
	for _, n := range nodes {
		deferToDown(t, n.config, down)
	}
	startAll(t, nodes)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	body := "From: usr2@mail.sustech.edu.cn\r\nTo: x@down.test\r\nSubject: held in the cluster\r\n\r\nhello\r\n"
	if err := smtp.SendMail(n1.smtpAddr(), nil, "usr2@mail.sustech.edu.cn", []string{"x@down.test"}, []byte(body)); err != nil {
		t.Fatal(err)
	}

	var m control.Message
	mtatest.Eventually(t, "n2 listing the message deferred after one attempt", func() bool {
		ms, err := ctlList(t, ctl, n2)
		if err != nil || len(ms) != 1 {
			return false
		}
		m = ms[0]
		return m.Attempts == 1 && !m.Active && len(m.Recipients) == 1 && m.Recipients[0].Status == "deferred"
	})
	if m.Host != "exmail.qq.com" || m.From != "usr2@mail.sustech.edu.cn" || m.Recipients[0].Address != "x@down.test" ||
		!strings.Contains(strings.ToLower(m.Recipients[0].LastReply), "connection refused") {
		t.Fatalf("mtactl queue list -json on n2: %+v", m)
	}
	if out, err := ctlRun(t, ctl, n2, "queue", "show", m.MsgID); err != nil ||
		!strings.Contains(out, "Subject: held in the cluster") || !strings.Contains(out, "x@down.test  deferred") {
		t.Fatalf("mtactl queue show on n2: %v\n%s", err, out)
	}

	if out, err := ctlRun(t, ctl, n3, "queue", "hold", m.MsgID); err != nil || out != m.MsgID+": held (exmail.qq.com)\n" {
		t.Fatalf("mtactl queue hold on n3: %v %q", err, out)
	}
	waitLogged(t, n3, "message held", m.MsgID)
	if ms, err := ctlList(t, ctl, n1); err != nil || len(ms) != 1 || !ms[0].Held || ms[0].Recipients[0].Status != "held" {
		t.Fatalf("n1's listing after the hold on n3: %+v %v", ms, err)
	}

	if out, err := ctlRun(t, ctl, n3, "queue", "release", m.MsgID); err != nil || out != m.MsgID+": released (exmail.qq.com)\n" {
		t.Fatalf("mtactl queue release on n3: %v %q", err, out)
	}
	// The released message is due at once: some node attempts it again.
	mtatest.Eventually(t, "a second attempt after the release", func() bool {
		for _, n := range nodes {
			if logged(n, `"msg":"relay deferred"`, m.MsgID, `"attempt":2`) {
				return true
			}
		}
		return false
	})
	waitLogged(t, n3, "message released", m.MsgID)

	mtatest.Eventually(t, "the second attempt settled", func() bool {
		ms, err := ctlList(t, ctl, n1)
		return err == nil && len(ms) == 1 && ms[0].Attempts == 2 && !ms[0].Active
	})
	if out, err := ctlRun(t, ctl, n3, "queue", "drop", "-bounce", m.MsgID); err != nil || !strings.HasPrefix(out, m.MsgID+": dropped, bounce") {
		t.Fatalf("mtactl queue drop -bounce on n3: %v %q", err, out)
	}
	waitLogged(t, n3, "message dropped", m.MsgID)
	mtatest.WaitMailbox(t, n1.popAddr(), "usr2@mail.sustech.edu.cn", "pass2", 1) // the bounce
	mtatest.Eventually(t, "an empty queue on n1", func() bool {
		ms, err := ctlList(t, ctl, n1)
		return err == nil && len(ms) == 0
	})
	if out, err := ctlRun(t, ctl, n1, "queue", "show", m.MsgID); err == nil {
		t.Fatalf("mtactl queue show on n1 after the drop: %q, want an unknown id", out)
	}
}
