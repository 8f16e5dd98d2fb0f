package config

import (
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
	want := Cluster{Node: "n1", Embedded: true, NATSListen: "127.0.0.1:4222", ClusterListen: "127.0.0.1:6222",
		Replicas: 1, MaxPayload: 8 << 20}
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
	full := mustParse(t, clusterBase+`[gomta.cluster]
node = "n-2_b"
embedded = true
nats_listen = "0.0.0.0:14222"
cluster_listen = "10.0.0.2:16222"
routes = ["nats-route://10.0.0.1:16222", "nats-route://10.0.0.3:16222"]
store_dir = "/srv/nats"
replicas = 3
sync_always = true
max_payload = 1048576
`).Cluster
	if full.StorePath("/x") != "/srv/nats" || !full.SyncAlways || full.MaxPayload != 1<<20 || full.NATSListen != "0.0.0.0:14222" ||
		full.ClusterListen != "10.0.0.2:16222" || len(full.Routes) != 2 || full.Replicas != 3 {
		t.Errorf("full = %v", full)
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
		{"node = \"n\"\nembedded = true\nmax_payload = 0", "cluster.max_payload out of range (1-67108864)"},
		{"node = \"n\"\nembedded = true\nmax_payload = 5000000000", "cluster.max_payload out of range (1-67108864)"},
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
