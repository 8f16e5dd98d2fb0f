package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"gomta/mta/mtatest"
)

// writeClusterConfig writes a one-host config with the [gomta.cluster]
// table given and returns mtad's arguments.
func writeClusterConfig(t *testing.T, smtp, pop int, table string) []string {
	t.Helper()
	dir := t.TempDir()
	conf := fmt.Sprintf("[server]\n\"mx.cl.test\" = { smtp = %d, pop = %d }\n[accounts.\"mx.cl.test\"]\n\"ann@cl.test\" = \"pw\"\n"+
		"[gomta.cluster]\n%s\n", smtp, pop, table)
	file := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"-config", file, "-data", filepath.Join(dir, "data")}
}

// TestClusterNodeRunsWithMtad: with an embedded lone node, nats_listen and
// a secret file, mtad runs a NATS server whose client port refuses a
// client without the secret and lets one with it reach JetStream, stores
// it under the data directory, logs how it runs without the secret, and at
// SIGTERM closes it after the hosts have stopped, freeing its port.
func TestClusterNodeRunsWithMtad(t *testing.T) {
	t.Parallel()
	p := mtatest.FreePorts(t, 3)
	const secret = "mtad-cluster-secret-5e71c0"
	secretFile := filepath.Join(t.TempDir(), "cluster.secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := writeClusterConfig(t, p[0], p[1], fmt.Sprintf("node = \"solo\"\nembedded = true\nnats_listen = %q\nsecret_file = %q\n",
		mtatest.Addr(p[2]), secretFile))
	d := mtatest.StartDaemon(t, args, p[0], p[1], p[2])
	d.WaitLog(t, `"msg":"mtad started"`)
	if nc, err := nats.Connect("nats://"+mtatest.Addr(p[2]), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Error("a client without the secret connected")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("a client without the secret: %v, want an authorization violation", err)
	}
	nc, err := nats.Connect("nats://"+mtatest.Addr(p[2]), nats.UserInfo("gomta", secret), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		t.Fatalf("JetStream through mtad's NATS port: %v", err)
	}
	nc.Close()
	if _, err := os.Stat(filepath.Join(args[3], "nats", "jetstream")); err != nil {
		t.Errorf("no store in the data directory: %v", err)
	}
	d.Stop(t)
	out := d.Log.String()
	for _, s := range []string{`"msg":"cluster started","mode":"embedded","node":"solo","replicas":1,"ack_wait":60,"lease_ttl":30`,
		`"sync_always":false`, `"auth":true`, fmt.Sprintf(`"secret_file":%q`, secretFile)} {
		if !strings.Contains(out, s) {
			t.Errorf("log lacks %s", s)
		}
	}
	for _, v := range vocabViolations(out, map[string]string{"cluster secret": secret}) {
		t.Error(v)
	}
	hostsDone, nodeDone := strings.Index(out, `"msg":"mtad stopped"`), strings.Index(out, `"msg":"cluster stopped"`)
	if hostsDone < 0 || nodeDone < hostsDone {
		t.Errorf("cluster stopped at %d, mtad stopped at %d: want the node closed after the hosts\n%s", nodeDone, hostsDone, out)
	}
	l, err := net.Listen("tcp", mtatest.Addr(p[2]))
	if err != nil {
		t.Fatalf("NATS port still taken after mtad exited: %v", err)
	}
	l.Close()
}

// TestClusterRefusesAnOpenPort: mtad refuses to start with a NATS port
// beyond loopback and no secret, naming the key.
func TestClusterRefusesAnOpenPort(t *testing.T) {
	t.Parallel()
	p := mtatest.FreePorts(t, 3)
	args := writeClusterConfig(t, p[0], p[1], fmt.Sprintf("node = \"open\"\nembedded = true\nnats_listen = \"0.0.0.0:%d\"\n", p[2]))
	out, err := exec.Command(mtatest.Mtad(t), args...).CombinedOutput()
	if err == nil {
		t.Fatalf("mtad started with an open NATS port:\n%s", out)
	}
	if want := fmt.Sprintf(`cluster.nats_listen "0.0.0.0:%d" is not a loopback address: it needs cluster.secret_file`, p[2]); !strings.Contains(string(out), want) {
		t.Errorf("output lacks %s:\n%s", want, out)
	}
}

// TestClusterWaitForPeersStopsOnSignal: a node whose peers are not up
// waits for JetStream before opening its mail listeners, and SIGTERM during
// that wait stops mtad cleanly.
func TestClusterWaitForPeersStopsOnSignal(t *testing.T) {
	t.Parallel()
	p := mtatest.FreePorts(t, 5)
	table := fmt.Sprintf("node = \"n1\"\nembedded = true\nnats_listen = %q\ncluster_listen = %q\nroutes = [\"nats-route://%s\", \"nats-route://%s\"]\n",
		mtatest.Addr(p[2]), mtatest.Addr(p[3]), mtatest.Addr(p[4]), mtatest.Addr(mtatest.FreePorts(t, 1)[0]))
	d := mtatest.StartDaemon(t, writeClusterConfig(t, p[0], p[1], table), p[2])
	d.WaitLog(t, `"msg":"cluster waiting for jetstream"`)
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.Done():
	case <-time.After(mtatest.StopGrace):
		t.Fatal("mtad did not stop while waiting for its peers")
	}
	if err := d.Err(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	for _, v := range vocabViolations(d.Log.String(), nil) {
		t.Error(v)
	}
	if out := d.Log.String(); strings.Contains(out, `"msg":"mtad started"`) || !strings.Contains(out, "while waiting for the cluster") {
		t.Errorf("log:\n%s", out)
	}
}
