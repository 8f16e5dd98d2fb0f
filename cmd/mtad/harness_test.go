package main

import (
	"bytes"
	"fmt"
	"gomta/mta/mtatest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestMain removes the mtad binary that mtatest builds (with the race
// detector when the tests run with it) for the black-box tests here.
func TestMain(m *testing.M) { os.Exit(mtatest.WithMtad(m).Run()) }

const compatDir = "../../configs" // cs305-config.toml, cs305-fdns.toml: the course's files unchanged

// course is the course's two servers, each its own mtad process started from
// the course's config.toml unchanged, with -s/-p picking free ports and an
// fdns.toml that points the [P] records at them.
type course struct {
	t                 *testing.T
	dir, fdns, config string
	qqSMTP, qqPOP     int // exmail.qq.com: @mail.sustech.edu.cn
	gmSMTP, gmPOP     int // gmail.com
	qq, gm            *mtatest.Daemon
	extraArgs         []string
}

func newCourse(t *testing.T) *course {
	t.Helper()
	p := mtatest.FreePorts(t, 4)
	c := &course{t: t, dir: t.TempDir(), config: filepath.Join(compatDir, "cs305-config.toml"),
		qqSMTP: p[0], qqPOP: p[1], gmSMTP: p[2], gmPOP: p[3]}
	fdns, err := os.ReadFile(filepath.Join(compatDir, "cs305-fdns.toml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(fdns)
	for _, r := range []struct{ from, to int }{{1025, c.qqSMTP}, {3110, c.qqPOP}, {2025, c.gmSMTP}, {2110, c.gmPOP}} {
		s = strings.ReplaceAll(s, fmt.Sprintf("%q", strconv.Itoa(r.from)), fmt.Sprintf("%q", strconv.Itoa(r.to)))
	}
	c.fdns = filepath.Join(c.dir, "fdns.toml")
	if err := os.WriteFile(c.fdns, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *course) start() {
	c.qq = c.startOne("exmail.qq.com", c.qqSMTP, c.qqPOP)
	c.gm = c.startOne("gmail.com", c.gmSMTP, c.gmPOP)
}

func (c *course) startOne(name string, smtpPort, popPort int) *mtatest.Daemon {
	args := append([]string{"-config", c.config, "-fdns", c.fdns, "-n", name,
		"-s", strconv.Itoa(smtpPort), "-p", strconv.Itoa(popPort),
		"-data", filepath.Join(c.dir, "data-"+name)}, c.extraArgs...)
	return mtatest.StartDaemon(c.t, args, smtpPort, popPort)
}

func (c *course) qqSMTPAddr() string { return mtatest.Addr(c.qqSMTP) }
func (c *course) qqPOPAddr() string  { return mtatest.Addr(c.qqPOP) }
func (c *course) gmPOPAddr() string  { return mtatest.Addr(c.gmPOP) }

// receivedID is the msg_id that the last hop's Received header gives msg.
func receivedID(t *testing.T, msg string) string {
	t.Helper()
	m := regexp.MustCompile(`\(gomta\) with \S+ id (\S+?);?\s`).FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("no gomta Received header in:\n%s", msg)
	}
	return m[1]
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	return p
}

// python runs a Python 3 script with arguments and returns its stdout.
func python(t *testing.T, script string, args ...string) string {
	t.Helper()
	py := needTool(t, "python3")
	cmd := exec.Command(py, append([]string{"-c", script}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("python3: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	return out.String()
}
