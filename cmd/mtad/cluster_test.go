package main

import (
	"context"
	"fmt"
	"net"
	"os"
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

// TestClusterNodeRunsWithMtad: with an embedded lone node mtad runs a NATS
// server whose JetStream answers an outside client, stores it under the
// data directory, and at SIGTERM closes it after the hosts have stopped,
// freeing its port.
func TestClusterNodeRunsWithMtad(t *testing.T) {
	t.Parallel()
	p := mtatest.FreePorts(t, 3)
	args := writeClusterConfig(t, p[0], p[1], fmt.Sprintf("node = \"solo\"\nembedded = true\nnats_listen = %q\n", mtatest.Addr(p[2])))
	d := mtatest.StartDaemon(t, args, p[0], p[1], p[2])
	d.WaitLog(t, `"msg":"mtad started"`)
	nc, err := nats.Connect("nats://" + mtatest.Addr(p[2]))
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
	for _, s := range []string{`"msg":"cluster started","mode":"embedded","node":"solo","replicas":1`, `"sync_always":false`} {
		if !strings.Contains(out, s) {
			t.Errorf("log lacks %s", s)
		}
	}
	for _, v := range vocabViolations(out, nil) {
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
