package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

const clusterBase = "[server]\n\"a\" = { smtp = 2025, pop = 2110 }\n[accounts.\"a\"]\n\"x@a.test\" = \"p\"\n"

// TestClusterAbsentIsLocal: without [gomta.cluster] there is no cluster
// (the local backend), and the built-in config still loads.
func TestClusterAbsentIsLocal(t *testing.T) {
	t.Parallel()
	for _, c := range []*Config{mustParse(t, clusterBase), mustLoadDefault(t)} {
		if c.Cluster != nil {
			t.Errorf("Cluster = %v, want nil", c.Cluster)
		}
	}
}

func mustLoadDefault(t *testing.T) *Config {
	t.Helper()
	c, err := Load("", "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClusterDefaults: each default, and replicas following the node count.
func TestClusterDefaults(t *testing.T) {
	t.Parallel()
	lone := mustParse(t, clusterBase+"[gomta.cluster]\nnode = \"n1\"\nembedded = true\n").Cluster
	want := Cluster{Node: "n1", Embedded: true, NATSListen: "", ClusterListen: "127.0.0.1:6222",
		Replicas: 1, MaxPayload: 8 << 20, AckWait: time.Minute, LeaseTTL: 30 * time.Second}
	if lone.String() != want.String() {
		t.Errorf("lone node = %v\nwant %v", lone, &want)
	}
	if got, want := lone.StorePath("/var/gomta"), filepath.Join("/var/gomta", "nats"); got != want {
		t.Errorf("StorePath = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		name, table string
		replicas    int
	}{
		{"two nodes", "routes = [\"nats-route://127.0.0.1:6223\"]", 2},
		{"three nodes", "routes = [\"nats-route://127.0.0.1:6223\", \"nats-route://127.0.0.1:6224\"]", 3},
		// The same routes list on every node names this node too.
		{"own route", "routes = [\"nats-route://127.0.0.1:6222\", \"nats-route://127.0.0.1:6223\"]", 2},
		{"five nodes", "routes = [\"nats://h2:6222\", \"nats://h3:6222\", \"nats://h4:6222\", \"nats://h5:6222\"]", 3},
		{"set", "replicas = 1\nroutes = [\"nats://h2:6222\", \"nats://h3:6222\"]", 1},
		{"lone, no cluster port", "cluster_listen = \"\"", 1},
	} {
		c := mustParse(t, clusterBase+"[gomta.cluster]\nnode = \"n1\"\nembedded = true\n"+tc.table+"\n").Cluster
		if c.Replicas != tc.replicas {
			t.Errorf("%s: replicas = %d, want %d", tc.name, c.Replicas, tc.replicas)
		}
	}
	ext := mustParse(t, clusterBase+"[gomta.cluster]\nnode = \"n1\"\nnats_urls = [\"nats://10.0.0.1:4222\", \"tls://nats.example:4443\"]\n").Cluster
	if ext.Embedded || ext.Replicas != 3 || len(ext.NATSURLs) != 2 {
		t.Errorf("external = %v, want replicas 3", ext)
	}
	secretFile := writeSecret(t, "0123456789abcdef0123456789abcdef\n", 0o600)
	full := mustParse(t, clusterBase+fmt.Sprintf(`[gomta.cluster]
node = "n-2_b"
embedded = true
nats_listen = "0.0.0.0:14222"
cluster_listen = "10.0.0.2:16222"
routes = ["nats-route://10.0.0.1:16222", "nats-route://10.0.0.3:16222"]
secret_file = %q
store_dir = "/srv/nats"
replicas = 3
sync_always = true
max_payload = 1048576
`, secretFile)).Cluster
	if full.StorePath("/x") != "/srv/nats" || !full.SyncAlways || full.MaxPayload != 1<<20 || full.NATSListen != "0.0.0.0:14222" ||
		full.ClusterListen != "10.0.0.2:16222" || len(full.Routes) != 2 || full.Replicas != 3 || full.SecretFile != secretFile {
		t.Errorf("full = %v", full)
	}
	if s, err := full.Secret(); err != nil || s != "0123456789abcdef0123456789abcdef" {
		t.Errorf("Secret() = %q, %v", s, err)
	}
	if strings.Contains(full.String(), "0123456789abcdef") {
		t.Errorf("String() shows the secret: %s", full)
	}
}

// TestClusterProblems: every validation message, naming the key.
func TestClusterProblems(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ table, want string }{
		{"embedded = true", "cluster.node is required"},
		{"node = \"a b\"\nembedded = true", `cluster.node "a b": want letters, digits, '-' and '_' only`},
		{"node = \"n\"", "cluster: want nats_urls (an external NATS cluster) or embedded = true"},
		{"node = \"n\"\nembedded = true\nnats_urls = [\"nats://h:4222\"]", "cluster: nats_urls and embedded are exclusive"},
		{"node = \"n\"\nembedded = true\nnodes = 3", `cluster: unknown key "nodes"`},
		{"node = \"n\"\nembedded = \"yes\"", "cluster.embedded has the wrong type"},
		{"node = \"n\"\nembedded = true\nroutes = \"nats://h:1\"", "cluster.routes has the wrong type"},
		{"node = \"n\"\nembedded = true\nnats_listen = \"4222\"", `cluster.nats_listen "4222": want host:port`},
		{"node = \"n\"\nembedded = true\ncluster_listen = \"h:99999\"", `cluster.cluster_listen "h:99999": want host:port`},
		{"node = \"n\"\nembedded = true\ncluster_listen = \"\"\nroutes = [\"nats-route://h:6222\"]\nreplicas = 1", "cluster.routes needs cluster_listen"},
		{"node = \"n\"\nembedded = true\nroutes = [\"http://h:6222\"]", `cluster.routes "http://h:6222": want nats-route://host:port`},
		{"node = \"n\"\nembedded = true\nroutes = [\"nats-route://h\"]", `cluster.routes "nats-route://h": want nats-route://host:port`},
		{"node = \"n\"\nembedded = true\nroutes = [\"nats-route://h:0\"]", `cluster.routes "nats-route://h:0": port "0": want 1-65535`},
		{"node = \"n\"\nnats_urls = [\"h:4222\"]", `cluster.nats_urls "h:4222": want nats://host:port`},
		{"node = \"n\"\nembedded = true\nreplicas = 0", "cluster.replicas 0 out of range (1-5)"},
		{"node = \"n\"\nnats_urls = [\"nats://h:4222\"]\nreplicas = 6", "cluster.replicas 6 out of range (1-5)"},
		{"node = \"n\"\nembedded = true\nreplicas = 3\nroutes = [\"nats-route://h:6222\"]", "cluster.replicas 3 is more than the 2 nodes (routes + 1)"},
		{"node = \"n\"\nembedded = true\nmax_payload = 0", "cluster.max_payload out of range (65536-67108864)"},
		{"node = \"n\"\nembedded = true\nmax_payload = 8192", "cluster.max_payload out of range (65536-67108864)"},
		{"node = \"n\"\nembedded = true\nmax_payload = 5000000000", "cluster.max_payload out of range (65536-67108864)"},
		{"node = \"n\"\nembedded = true\nnats_listen = \"0.0.0.0:4222\"", `cluster.nats_listen "0.0.0.0:4222" is not a loopback address: it needs cluster.secret_file`},
		{"node = \"n\"\nembedded = true\nnats_listen = \"mx.example:4222\"", `cluster.nats_listen "mx.example:4222" is not a loopback address: it needs cluster.secret_file`},
		{"node = \"n\"\nembedded = true\ncluster_listen = \"10.0.0.1:6222\"\nroutes = [\"nats-route://10.0.0.2:6222\"]", `cluster.cluster_listen "10.0.0.1:6222" is not a loopback address: it needs cluster.secret_file`},
		{"node = \"n\"\nembedded = true\nroutes = [\"nats-route://gomta:pw@127.0.0.1:6223\"]", `cluster.routes "nats-route://redacted@127.0.0.1:6223": write no credentials in a route`},
		{"node = \"n\"\nembedded = true\nsecret_file = \"/nonexistent/secret\"", `cluster.secret_file "/nonexistent/secret": stat /nonexistent/secret: no such file`},
		{"node = \"n\"\nnats_urls = [\"nats://h:4222\"]\nsecret_file = \"/x\"", "cluster.secret_file is for embedded = true"},
		{"node = \"n\"\nnats_urls = [\"nats://tok@h\"]", `cluster.nats_urls "nats://redacted@h": want nats://host:port`},
		{"node = \"n\"\nembedded = true\ntls_cert = \"/x/cert.pem\"", "cluster.tls_cert, cluster.tls_key and cluster.tls_ca go together"},
		{"node = \"n\"\nembedded = true\ntls_cert = \"/x/c.pem\"\ntls_key = \"/x/k.pem\"\ntls_ca = \"/x/ca.pem\"", `cluster.tls_cert "/x/c.pem", cluster.tls_key "/x/k.pem": open /x/c.pem: no such file`},
		{"node = \"n\"\nembedded = true\ntls_cert = \"/x/c.pem\"\ntls_key = \"/x/k.pem\"\ntls_ca = \"/x/ca.pem\"", `cluster.tls_ca "/x/ca.pem": open /x/ca.pem: no such file`},
		{"node = \"n\"\nnats_urls = [\"nats://h:4222\"]\ntls_ca = \"/x\"", "cluster.tls_ca is for embedded = true"},
		{"node = \"n\"\nnats_urls = [\"nats://h:4222\"]\nsync_always = true", "cluster.sync_always is for embedded = true"},
		{"node = \"n\"\nnats_urls = [\"nats://h:4222\"]\nstore_dir = \"/x\"", "cluster.store_dir is for embedded = true"},
		{"node = \"n\"\nnats_urls = [\"nats://h:4222\"]\nroutes = [\"nats-route://h:6222\"]", "cluster.routes is for embedded = true"},
		{"node = \"n\"\nnats_urls = [\"nats://h:4222\"]\nnats_listen = \"h:1\"", "cluster.nats_listen is for embedded = true"},
		{"node = \"n\"\nnats_urls = [\"nats://h:4222\"]\ncluster_listen = \"\"", "cluster.cluster_listen is for embedded = true"},
		{"node = \"n\"\nnats_urls = [\"nats://h:4222\"]\nmax_payload = 1024", "cluster.max_payload is for embedded = true"},
	} {
		_, err := Parse("c.toml", []byte(clusterBase+"[gomta.cluster]\n"+tc.table+"\n"), "", nil)
		if err == nil || !strings.Contains(err.Error(), "c.toml: "+tc.want) {
			t.Errorf("%q: error %v, want %q", tc.table, err, tc.want)
		}
	}
}

// TestClusterReloadNeedsRestart: a changed [gomta.cluster] is reported as
// needing a restart, and KeepRunning keeps the running one.
func TestClusterReloadNeedsRestart(t *testing.T) {
	t.Parallel()
	old := mustParse(t, clusterBase)
	next := mustParse(t, clusterBase+"[gomta.cluster]\nnode = \"n1\"\nembedded = true\n")
	var found bool
	for _, ch := range Diff(old, next) {
		if ch.Key == "cluster" {
			found = true
			if !ch.Restart || ch.Old != "" || !strings.HasPrefix(ch.New, "node=n1 embedded") {
				t.Errorf("change = %v", ch)
			}
		}
	}
	if !found {
		t.Fatalf("Diff = %v, want a cluster change", Diff(old, next))
	}
	next.KeepRunning(old)
	if next.Cluster != nil {
		t.Errorf("after KeepRunning Cluster = %v, want the running nil", next.Cluster)
	}
	same := mustParse(t, clusterBase+"[gomta.cluster]\nnode = \"n1\"\nembedded = true\n")
	if d := Diff(mustParse(t, clusterBase+"[gomta.cluster]\nnode = \"n1\"\nembedded = true\n"), same); len(d) != 0 {
		t.Errorf("Diff of equal clusters = %v, want none", d)
	}
}

// TestClusterDurations reads ack_wait and lease_ttl as Go durations of at
// least a second, and reports anything else as a key of the wrong type.
func TestClusterDurations(t *testing.T) {
	for _, tc := range []struct {
		val  string
		ok   bool
		want time.Duration
	}{{`"5s"`, true, 5 * time.Second}, {`"2m"`, true, 2 * time.Minute}, {`"10ms"`, false, 0}, {`5`, false, 0}, {`"soon"`, false, 0}} {
		var c Cluster
		_, err := toml.Decode("[c]\nack_wait = "+tc.val+"\nlease_ttl = "+tc.val+"\n", &struct {
			C *Cluster `toml:"c"`
		}{&c})
		if err != nil {
			t.Fatal(err)
		}
		bad := len(c.badType) == 2
		if bad == tc.ok || c.AckWait != tc.want || c.LeaseTTL != tc.want {
			t.Errorf("%s: ack_wait %v lease_ttl %v wrong-type %v; want %v ok=%v", tc.val, c.AckWait, c.LeaseTTL, c.badType, tc.want, tc.ok)
		}
	}
}

// writeSecret writes a secret file of the given content and mode.
func writeSecret(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "cluster.secret")
	if err := os.WriteFile(f, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f, mode); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return f
}

// TestClusterSecretFile: the secret file is checked like a key file (its
// owner only), its content must be a usable secret, and every problem
// names the key and never shows the secret.
func TestClusterSecretFile(t *testing.T) {
	t.Parallel()
	const good = "s3cret-s3cret-s3cret"
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		want          string // "" = accepted
	}{
		{"0600", good + "\n", 0o600, ""},
		{"0400", good, 0o400, ""},
		{"group readable", good, 0o640, "mode 0640: want readable by its owner only"},
		{"world readable", good, 0o604, "mode 0604: want readable by its owner only"},
		{"short", "short\n", 0o600, "want a secret of 16 to 1024 octets, have 5"},
		{"empty", "\n", 0o600, "want a secret of 16 to 1024 octets, have 0"},
		{"inner space", "s3cret s3cret s3cret", 0o600, "white space or a control character"},
		{"bcrypt-like", "$2a$" + good, 0o600, `begins with "$2"`},
	} {
		f := writeSecret(t, tc.content, tc.mode)
		// Non-loopback ports, which need the secret.
		table := fmt.Sprintf("node = \"n\"\nembedded = true\nnats_listen = \"0.0.0.0:4222\"\ncluster_listen = \"10.0.0.1:6222\"\n"+
			"routes = [\"nats-route://10.0.0.2:6222\"]\nsecret_file = %q\n", f)
		_, err := Parse("c.toml", []byte(clusterBase+"[gomta.cluster]\n"+table), "", nil)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), fmt.Sprintf("cluster.secret_file %q: ", f)) ||
			!strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "s3cret"):
			t.Errorf("%s: the error shows the secret: %v", tc.name, err)
		}
	}
	dir := t.TempDir()
	if _, err := (&Cluster{SecretFile: dir}).Secret(); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory as secret file: %v", err)
	}
}

// TestClusterLoopbackNeedsNoSecret: ports on the loopback interface are
// accepted without a secret (one machine), and so is a lone node's
// cluster_listen anywhere (no routes: the port is not opened).
func TestClusterLoopbackNeedsNoSecret(t *testing.T) {
	t.Parallel()
	for _, table := range []string{
		"nats_listen = \"127.0.0.1:4222\"",
		"nats_listen = \"localhost:4222\"",
		"nats_listen = \"[::1]:4222\"",
		"cluster_listen = \"127.0.0.2:6222\"\nroutes = [\"nats-route://127.0.0.3:6222\"]",
		"cluster_listen = \"0.0.0.0:6222\"",
	} {
		if _, err := Parse("c.toml", []byte(clusterBase+"[gomta.cluster]\nnode = \"n\"\nembedded = true\n"+table+"\n"), "", nil); err != nil {
			t.Errorf("%q: %v", table, err)
		}
	}
}

// TestRedactURL: userinfo, a password or a token alone, never reaches a
// log line or String.
func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"nats://user:pw@h:4222":      "nats://redacted@h:4222",
		"nats://tok3n@h:4222":        "nats://redacted@h:4222",
		"tls://h:4443":               "tls://h:4443",
		"nats-route://127.0.0.1:622": "nats-route://127.0.0.1:622",
		"nats://u:p@h:%zz":           "redacted", // no URL, yet it holds an '@'
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
	c := &Cluster{Node: "n", NATSURLs: []string{"nats://user:pw@h1:4222", "nats://tok3n@h2:4222"}, Replicas: 3}
	if got, want := c.String(), "node=n nats_urls=nats://redacted@h1:4222,nats://redacted@h2:4222 replicas=3 ack_wait=0s lease_ttl=0s"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
