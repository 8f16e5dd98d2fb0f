package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"gomta/mta/cluster"
	"gomta/mta/cluster/natstest"
	"gomta/mta/config"
	"gomta/mta/mtatest"
	"gomta/session/selfsigned"
)

// syncBuffer is a log sink that tests read while the node writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Sync() error { return nil }

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// jsonLogger logs JSON lines, as mtad does, into the buffer returned.
func jsonLogger() (*zap.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	return zap.New(zapcore.NewCore(enc, buf, zapcore.DebugLevel)), buf
}

// logLine is the one JSON line of out whose msg is msg.
func logLine(t *testing.T, out, msg string) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, l := range strings.Split(out, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d lines %q, want 1:\n%s", len(found), msg, out)
	}
	return found[0]
}

// TestNoClientPortByDefault: an embedded node without nats_listen opens
// no NATS client port (not even NATS's default 4222), and mtad's own
// in-process connection still reaches JetStream.
func TestNoClientPortByDefault(t *testing.T) {
	t.Parallel()
	const natsDefault = "127.0.0.1:4222"
	// The dial below says something only if nobody else has the port.
	free := false
	if l, err := net.Listen("tcp", natsDefault); err == nil {
		free = true
		l.Close()
	}
	c := &config.Cluster{Node: "closed", Embedded: true, StoreDir: t.TempDir(), Replicas: 1, MaxPayload: config.DefaultMaxPayload}
	n := cluster.StartNode(t, c, zap.NewNop())
	if err := n.WaitReady(cluster.CtxFor(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if a := n.Server().Addr(); a != nil {
		t.Errorf("client listener open on %v, want none", a)
	}
	if !free {
		t.Logf("%s is taken by another process: dial not checked", natsDefault)
		return
	}
	conn, err := net.Dial("tcp", natsDefault)
	if err == nil {
		conn.Close()
		t.Fatalf("dial %s: connected, want refused", natsDefault)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial %s: %v, want connection refused", natsDefault, err)
	}
}

// TestClientPortNeedsTheSecret: with nats_listen and a secret, a client
// without the secret or with a wrong one is refused, one with it is
// served; the "cluster started" line, in JSON, names the secret file and
// says auth is on, carries ack_wait and lease_ttl, and holds no secret.
func TestClientPortNeedsTheSecret(t *testing.T) {
	t.Parallel()
	const secret = "client-port-secret-4f9d2a"
	c := &config.Cluster{Node: "guarded", Embedded: true, NATSListen: mtatest.Addr(mtatest.FreePorts(t, 1)[0]),
		SecretFile: natstest.WriteSecret(t, secret), StoreDir: t.TempDir(), Replicas: 1, MaxPayload: config.DefaultMaxPayload,
		AckWait: 45 * time.Second, LeaseTTL: 20 * time.Second}
	log, out := jsonLogger()
	n := cluster.StartNode(t, c, log)
	if err := n.WaitReady(cluster.CtxFor(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	url := "nats://" + c.NATSListen
	for name, opt := range map[string]nats.Option{
		"no secret":    func(*nats.Options) error { return nil },
		"wrong secret": nats.UserInfo("gomta", "not-the-secret-at-all"),
		"token":        nats.Token(secret),
	} {
		nc, err := nats.Connect(url, opt, nats.NoReconnect())
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected, want refused", name)
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("%s: %v, want an authorization violation", name, err)
		}
	}
	nc, err := nats.Connect(url, nats.UserInfo("gomta", secret), nats.NoReconnect())
	if err != nil {
		t.Fatalf("with the secret: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(cluster.CtxFor(t, 30*time.Second)); err != nil {
		t.Fatalf("JetStream with the secret: %v", err)
	}

	logged := out.String()
	if strings.Contains(logged, secret) {
		t.Errorf("the secret is in the log:\n%s", logged)
	}
	started := logLine(t, logged, "cluster started")
	for k, want := range map[string]any{"secret_file": c.SecretFile, "auth": true, "nats_listen": c.NATSListen,
		"ack_wait": 45.0, "lease_ttl": 20.0} {
		if started[k] != want {
			t.Errorf("cluster started %s = %v, want %v", k, started[k], want)
		}
	}
}

// TestExternalURLsRedacted: credentials in nats_urls (user and password,
// or a token as the user name) reach the server, and no log line says
// them: the URLs of "cluster started" and "cluster connection restored"
// are redacted.
func TestExternalURLsRedacted(t *testing.T) {
	t.Parallel()
	const user, pass = "mtauser", "ext-password-93b1c7"
	port, store := mtatest.FreePorts(t, 1)[0], t.TempDir()
	srv := startPasswordServer(t, port, store, user, pass)
	log, out := jsonLogger()
	urls := []string{"nats://" + user + ":" + pass + "@" + mtatest.Addr(port)}
	n := cluster.StartNode(t, &config.Cluster{Node: "ext", NATSURLs: urls, Replicas: 1}, log)
	if err := n.WaitReady(cluster.CtxFor(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	// A reconnect logs the URL again: the server's restart forces one.
	srv.Shutdown()
	srv.WaitForShutdown()
	startPasswordServer(t, port, store, user, pass)
	mtatest.Eventually(t, "the node reconnected", func() bool {
		return strings.Contains(out.String(), `"msg":"cluster connection restored"`)
	})
	if err := n.WaitReady(cluster.CtxFor(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	logged := out.String()
	for _, s := range []string{pass, user} {
		if strings.Contains(logged, s) {
			t.Errorf("%q is in the log:\n%s", s, logged)
		}
	}
	started := logLine(t, logged, "cluster started")
	if got, want := started["nats_urls"], []any{"nats://redacted@" + mtatest.Addr(port)}; !slices.Equal(got.([]any), want) {
		t.Errorf("nats_urls = %v, want %v", got, want)
	}
	if got := logLine(t, logged, "cluster connection restored")["url"]; got != "nats://redacted@"+mtatest.Addr(port) {
		t.Errorf("restored url = %v", got)
	}
}

// startPasswordServer runs a JetStream server on port that takes clients
// with user and pass only, as an external NATS cluster may.
func startPasswordServer(t *testing.T, port int, store, user, pass string) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{ServerName: "ext", Host: "127.0.0.1", Port: port, JetStream: true,
		StoreDir: store, Username: user, Password: pass, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		t.Fatal("server not ready for connections")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// TestRoutesNeedTheSecret: a node routed to a three-node cluster with a
// wrong secret, and one with none, are refused: each is told
// "Authorization Violation", and the JetStream meta group keeps its three
// peers.
func TestRoutesNeedTheSecret(t *testing.T) {
	if testing.Short() {
		t.Skip("five NATS servers")
	}
	t.Parallel()
	c := natstest.StartCluster(t, 3, false)
	ports := mtatest.FreePorts(t, 2)
	intruders := map[string]string{"wrong": natstest.WriteSecret(t, "not-the-cluster-secret"), "none": ""}
	logs := map[string]*observer.ObservedLogs{}
	i := 0
	for name, secretFile := range intruders {
		routes := append([]string(nil), c.Configs[0].Routes...)
		routes = append(routes, "nats-route://"+c.Configs[0].ClusterListen)
		cfg := &config.Cluster{Node: name, Embedded: true, ClusterListen: mtatest.Addr(ports[i]), Routes: routes,
			SecretFile: secretFile, StoreDir: t.TempDir(), Replicas: 3, MaxPayload: config.DefaultMaxPayload}
		core, l := observer.New(zapcore.WarnLevel)
		logs[name] = l
		cluster.StartNode(t, cfg, zap.New(core))
		i++
	}
	for name, l := range logs {
		mtatest.Eventually(t, name+" refused by the cluster", func() bool {
			for _, e := range l.FilterMessage("nats server error").All() {
				if strings.Contains(e.ContextMap()["error"].(string), "Authorization Violation") {
					return true
				}
			}
			return false
		})
	}
	for i, n := range c.Nodes {
		jsz, err := n.Server().Jsz(nil)
		if err != nil {
			t.Fatal(err)
		}
		if jsz.Meta == nil || jsz.Meta.Size != 3 {
			t.Errorf("n%d: meta group %+v, want 3 peers", i+1, jsz.Meta)
			continue
		}
		for _, p := range jsz.Meta.Replicas {
			if _, intruder := intruders[p.Name]; intruder {
				t.Errorf("n%d: %s is a peer of the meta group", i+1, p.Name)
			}
		}
	}
	// A clustered node must have a client listener (nats-server starts its
	// routes only after it), but nobody outside the process may use it:
	// not even with the cluster's secret.
	secret, err := c.Configs[0].Secret()
	if err != nil {
		t.Fatal(err)
	}
	for _, opt := range []nats.Option{nats.UserInfo("gomta", secret), func(*nats.Options) error { return nil }} {
		if nc, err := nats.Connect(c.Nodes[0].Server().ClientURL(), opt, nats.NoReconnect()); err == nil {
			nc.Close()
			t.Error("connected to a clustered node's internal client port, want refused")
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("internal client port: %v, want an authorization violation", err)
		}
	}
	// The cluster itself still works through its authenticated routes.
	mtatest.Eventually(t, "an R3 stream created through n2", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.Nodes[1].JS().CreateStream(ctx, jetstream.StreamConfig{Name: "A", Subjects: []string{"a.>"}, Replicas: 3})
		return err == nil
	})
	cluster.PublishRead(t, c.Nodes[2], "A", "a.1", "routed")
}

// tlsFiles writes the loopback test certificate and its key (PEM, the key
// 0600) and returns their paths; the certificate is its own CA.
func tlsFiles(t *testing.T) (cert, key string) {
	t.Helper()
	certPEM, keyPEM, err := selfsigned.PEM(mtatest.Cert(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestTLSRoutesAndClients: three nodes with tls_cert, tls_key and tls_ca
// form a cluster over TLS routes; a node with the secret but no TLS is
// refused; the client port takes a TLS client that trusts the CA and gives
// the secret, and refuses one that does not trust it.
func TestTLSRoutesAndClients(t *testing.T) {
	if testing.Short() {
		t.Skip("four NATS servers")
	}
	t.Parallel()
	cert, key := tlsFiles(t)
	secret := natstest.WriteSecret(t, "tls-cluster-secret-0a9b8c")
	p := mtatest.FreePorts(t, 5)
	cfgs := make([]*config.Cluster, 4)
	for i := range cfgs {
		var routes []string
		for j := range 3 {
			if j != i {
				routes = append(routes, "nats-route://"+mtatest.Addr(p[j]))
			}
		}
		cfgs[i] = &config.Cluster{Node: fmt.Sprintf("t%d", i+1), Embedded: true, ClusterListen: mtatest.Addr(p[i]), Routes: routes,
			SecretFile: secret, TLSCert: cert, TLSKey: key, TLSCA: cert, StoreDir: t.TempDir(), Replicas: 3, MaxPayload: config.DefaultMaxPayload}
	}
	cfgs[0].NATSListen = mtatest.Addr(p[4])
	plain := cfgs[3]
	plain.TLSCert, plain.TLSKey, plain.TLSCA = "", "", ""
	nodes := make([]*cluster.Node, 3)
	core, tlsLog := observer.New(zapcore.WarnLevel)
	for i := range nodes {
		nodes[i] = cluster.StartNode(t, cfgs[i], zap.New(core))
	}
	cluster.StartNode(t, plain, zap.NewNop())
	for _, n := range nodes {
		if err := n.WaitReady(cluster.CtxFor(t, 2*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	mtatest.Eventually(t, "an R3 stream created through t1", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := nodes[0].JS().CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3})
		return err == nil
	})
	cluster.PublishRead(t, nodes[2], "T", "t.1", "over tls")
	// Only the plain node dials without TLS.
	mtatest.Eventually(t, "the plain node refused", func() bool {
		for _, e := range tlsLog.All() {
			if strings.Contains(fmt.Sprint(e.ContextMap()["error"]), "first record does not look like a TLS handshake") {
				return true
			}
		}
		return false
	})
	if jsz, err := nodes[0].Server().Jsz(nil); err != nil || jsz.Meta == nil || jsz.Meta.Size != 3 {
		t.Errorf("meta group %+v (%v), want 3 peers", jsz, err)
	}

	pw, err := cfgs[0].Secret()
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + cfgs[0].NATSListen
	if nc, err := nats.Connect(url, nats.UserInfo("gomta", pw), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Error("a client that does not trust the CA connected")
	}
	nc, err := nats.Connect(url, nats.UserInfo("gomta", pw), nats.RootCAs(cert), nats.NoReconnect())
	if err != nil {
		t.Fatalf("a TLS client with the secret: %v", err)
	}
	defer nc.Close()
	if !nc.TLSRequired() {
		t.Error("client connection without TLS")
	}
}
