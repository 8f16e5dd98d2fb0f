package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Defaults of [gomta.cluster].
const (
	// DefaultNATSListen is no NATS client port: mtad connects to its
	// embedded server in-process, so nothing outside the process can reach
	// the queue and the mailboxes unless nats_listen opens a port.
	DefaultNATSListen    = ""
	DefaultClusterListen = "127.0.0.1:6222"
	// DefaultReplicas is the copies JetStream keeps of each stream: three
	// survive one node lost and still have a quorum (two of three).
	DefaultReplicas = 3
	// MaxReplicas is JetStream's own limit on a stream's replicas.
	MaxReplicas = 5
	// DefaultMaxPayload is the largest NATS message of the embedded server:
	// the size above which nats-server warns that payloads hurt
	// performance (its MAX_PAYLOAD_MAX_SIZE); larger bodies go to an
	// object store in chunks.
	DefaultMaxPayload = 8 << 20
	// DefaultAckWait and DefaultLeaseTTL are the queue's (queue/jsq) and
	// the mailboxes' (jsbox) own defaults, set here so that the config in
	// effect, as logged, says what runs.
	DefaultAckWait  = 60 * time.Second
	DefaultLeaseTTL = 30 * time.Second
	// maxMaxPayload is nats-server's max_pending (64 MiB), which max_payload
	// may not exceed.
	maxMaxPayload = 64 << 20
	// minMaxPayload is the smallest max_payload the backends work with: a
	// queued message's stream message carries its envelope (up to
	// max_recipients addresses of up to 256 octets) in a header, its state
	// (pending recipients, history) is one KV value, and jsbox keeps 4 KiB
	// of each message for headers (it refuses a server of 8 KiB or less).
	minMaxPayload = 64 << 10
)

// Cluster is [gomta.cluster]: this process is one node of a gomta cluster
// whose queue and mailboxes live in NATS JetStream. Absent (nil), the
// local backend (spool + Maildir) is used and no NATS runs.
//
// Either NATSURLs names an external NATS cluster, or Embedded runs a NATS
// server inside mtad, which forms the JetStream cluster with the other
// nodes' through Routes. Changing the table takes a restart.
type Cluster struct {
	Node string // this node's name, unique in the cluster (the NATS server name)
	// NATSURLs are the external NATS servers ("nats://host:port"); empty
	// with Embedded.
	NATSURLs []string
	Embedded bool // run a NATS server in-process
	// NATSListen is where the embedded server takes NATS clients
	// ("host:port"), for tools such as the nats CLI; "" (the default) opens
	// no client port: mtad itself connects in process.
	NATSListen string
	// ClusterListen is where the embedded server takes routes from the other
	// nodes ("host:port"). It is opened only with Routes: a node without
	// routes runs JetStream standalone (a clustered JetStream with nobody
	// to route to refuses to start), so "" and the default are the same
	// for a lone node.
	ClusterListen string
	// Routes are the other nodes' cluster_listen, "nats-route://host:port",
	// written without credentials: the secret is added in code.
	Routes []string
	// SecretFile holds the cluster's shared secret (Secret): the password
	// every route must give, and every client on NATSListen. It is a file
	// rather than a key of this table so that the config may stay world
	// readable, be diffed at reload and shown in a ticket; like a TLS key
	// it must be readable by its owner only.
	SecretFile string
	// TLSCert and TLSKey are this node's certificate and key (PEM), and
	// TLSCA the certificates that sign the nodes' (PEM); all three or
	// none. With them routes and nats_listen's clients speak TLS only, and
	// a route checks the peer's certificate against TLSCA and the route's
	// host; the secret still says who may join.
	TLSCert, TLSKey, TLSCA string
	// StoreDir is where the embedded server keeps JetStream's data; "" =
	// "nats" in the data directory (StorePath).
	StoreDir string
	// Replicas is the copies of each stream: by default DefaultReplicas, or
	// the node count when smaller (embedded: the routes other than this
	// node's own cluster_listen, plus one).
	Replicas int
	// SyncAlways makes the embedded server fsync every JetStream write; by
	// default it writes to the OS and fsyncs every few minutes, so that a
	// write is replicated to a quorum but not on any disk yet.
	SyncAlways bool
	MaxPayload int32 // the embedded server's largest message, octets
	// AckWait is how long a node may hold a delivery attempt without
	// signalling progress before another node takes the message over (a
	// node that died mid-attempt); DefaultAckWait when not set.
	AckWait time.Duration
	// LeaseTTL is how long a POP3 session's hold on a mailbox outlives a
	// node that died while holding it; DefaultLeaseTTL when not set.
	LeaseTTL time.Duration

	replicasSet bool     // the file sets replicas (else the default applies)
	unknown     []string // keys other than ours, reported by validation
	badType     []string // keys of the wrong type, reported by validation
}

// UnmarshalTOML reads the table by hand: whether cluster_listen is absent
// (the default) or "" (a lone node) matters, and so does whether replicas
// is set.
func (c *Cluster) UnmarshalTOML(v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("cluster: want a table, got %T", v)
	}
	*c = Cluster{NATSListen: DefaultNATSListen, ClusterListen: DefaultClusterListen, MaxPayload: DefaultMaxPayload,
		AckWait: DefaultAckWait, LeaseTTL: DefaultLeaseTTL}
	for _, k := range sortedKeys(m) {
		var ok bool
		switch val := m[k]; k {
		case "node":
			c.Node, ok = val.(string)
		case "embedded":
			c.Embedded, ok = val.(bool)
		case "sync_always":
			c.SyncAlways, ok = val.(bool)
		case "nats_listen":
			c.NATSListen, ok = val.(string)
		case "cluster_listen":
			c.ClusterListen, ok = val.(string)
		case "store_dir":
			c.StoreDir, ok = val.(string)
		case "secret_file":
			c.SecretFile, ok = val.(string)
		case "tls_cert":
			c.TLSCert, ok = val.(string)
		case "tls_key":
			c.TLSKey, ok = val.(string)
		case "tls_ca":
			c.TLSCA, ok = val.(string)
		case "nats_urls":
			c.NATSURLs, ok = stringList(val)
		case "routes":
			c.Routes, ok = stringList(val)
		case "replicas":
			var n int64
			n, ok = val.(int64)
			c.Replicas, c.replicasSet = int(n), true
		case "ack_wait":
			c.AckWait, ok = duration(val)
		case "lease_ttl":
			c.LeaseTTL, ok = duration(val)
		case "max_payload":
			var n int64
			n, ok = val.(int64)
			if ok && (n < minMaxPayload || n > maxMaxPayload) {
				n = -1 // validation reports the range, not an overflowed int32
			}
			c.MaxPayload = int32(n)
		default:
			c.unknown = append(c.unknown, k)
			continue
		}
		if !ok {
			c.badType = append(c.badType, k)
		}
	}
	return nil
}

// duration reads a duration as every other setting does (Duration: "5s",
// "2m", "1d"), of at least a second.
func duration(v any) (time.Duration, bool) {
	str, ok := v.(string)
	var d Duration
	if !ok || d.UnmarshalText([]byte(str)) != nil || time.Duration(d) < time.Second {
		return 0, false
	}
	return time.Duration(d), true
}

func stringList(v any) ([]string, bool) {
	l, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, len(l))
	for i, e := range l {
		if out[i], ok = e.(string); !ok {
			return nil, false
		}
	}
	return out, true
}

// String writes the table on one line, as a reload reports a change; "" for
// none. URLs are redacted (RedactURL); the secret is never read here.
func (c *Cluster) String() string {
	if c == nil {
		return ""
	}
	if !c.Embedded {
		return fmt.Sprintf("node=%s nats_urls=%s replicas=%d ack_wait=%s lease_ttl=%s", c.Node, strings.Join(RedactURLs(c.NATSURLs), ","),
			c.Replicas, c.AckWait, c.LeaseTTL)
	}
	return fmt.Sprintf("node=%s embedded nats_listen=%s cluster_listen=%s routes=%s secret_file=%s tls_cert=%s tls_key=%s tls_ca=%s "+
		"store_dir=%s replicas=%d sync_always=%t max_payload=%d ack_wait=%s lease_ttl=%s",
		c.Node, c.NATSListen, c.ClusterListen, strings.Join(RedactURLs(c.Routes), ","), c.SecretFile, c.TLSCert, c.TLSKey, c.TLSCA,
		c.StoreDir, c.Replicas, c.SyncAlways, c.MaxPayload, c.AckWait, c.LeaseTTL)
}

// redacted stands for the whole userinfo of a logged URL: a NATS token is
// written as the user name alone, so keeping the name (url.Redacted) would
// log it.
const redacted = "redacted"

// RedactURL is s with any userinfo replaced by "redacted", for a log line:
// "nats://user:pw@h:4222" and "nats://token@h:4222" both become
// "nats://redacted@h:4222". A string that is no URL is replaced whole
// when it holds an '@' (it may still carry a credential).
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") {
			return redacted
		}
		return s
	}
	if u.User != nil {
		u.User = url.User(redacted)
	}
	return u.String()
}

// RedactURLs is RedactURL of each of l.
func RedactURLs(l []string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = RedactURL(s)
	}
	return out
}

// Limits of the shared secret. minSecret: a secret short enough to guess
// is none (32 hex digits from "openssl rand -hex 16" pass). A secret
// beginning with "$2" would be taken by nats-server for a bcrypt hash.
const (
	minSecret = 16
	maxSecret = 1024
)

// Secret reads the cluster's shared secret from SecretFile: "" without
// one. The file must be a regular file that neither its group nor others
// may read or write (mode 0600 or 0400), as a TLS key; its content less
// surrounding white space is the secret, at least 16 printable octets,
// none of them white space. It is read when it is needed (validation, the
// node's start) and kept nowhere in the config, so that no String, %v or
// diff of a config can show it.
func (c *Cluster) Secret() (string, error) {
	if c.SecretFile == "" {
		return "", nil
	}
	fi, err := os.Stat(c.SecretFile)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("not a regular file")
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("mode %04o: want readable by its owner only (chmod 600)", perm)
	}
	b, err := os.ReadFile(c.SecretFile)
	if err != nil {
		return "", err
	}
	secret := strings.TrimSpace(string(b))
	switch {
	case len(secret) < minSecret || len(secret) > maxSecret:
		return "", fmt.Errorf("want a secret of %d to %d octets, have %d", minSecret, maxSecret, len(secret))
	case strings.IndexFunc(secret, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		return "", fmt.Errorf("the secret holds white space or a control character")
	case strings.HasPrefix(secret, "$2"):
		return "", fmt.Errorf("the secret begins with \"$2\" (NATS would take it for a bcrypt hash)")
	}
	return secret, nil
}

// StorePath is where the embedded server keeps its store: StoreDir, or
// "nats" in dataDir (the data directory in effect, after mtad's -data).
func (c *Cluster) StorePath(dataDir string) string {
	if c.StoreDir != "" {
		return c.StoreDir
	}
	return filepath.Join(dataDir, "nats")
}

// Nodes is the embedded cluster's size as this node sees it: its routes
// other than one to its own cluster_listen (the same routes list may be
// written on every node), plus itself.
func (c *Cluster) Nodes() int {
	n := 1
	for _, r := range c.Routes {
		if u, err := url.Parse(r); err != nil || u.Host != c.ClusterListen {
			n++
		}
	}
	return n
}

// validateCluster checks [gomta.cluster] and sets the replicas default.
func (c *Config) validateCluster(p *problems) {
	cl := c.Cluster
	if cl == nil {
		return
	}
	sort.Strings(cl.unknown)
	for _, k := range cl.unknown {
		p.add("cluster: unknown key %q", k)
	}
	for _, k := range cl.badType {
		p.add("cluster.%s has the wrong type (durations: a string such as \"30s\", at least 1s)", k)
	}
	if cl.Node == "" {
		p.add("cluster.node is required")
	} else if strings.IndexFunc(cl.Node, badNodeRune) >= 0 {
		p.add("cluster.node %q: want letters, digits, '-' and '_' only", cl.Node)
	}
	switch {
	case len(cl.NATSURLs) > 0 && cl.Embedded:
		p.add("cluster: nats_urls and embedded are exclusive")
	case len(cl.NATSURLs) > 0:
		cl.validateExternal(p)
	case cl.Embedded:
		cl.validateEmbedded(p)
	default:
		p.add("cluster: want nats_urls (an external NATS cluster) or embedded = true")
	}
	if !cl.replicasSet {
		cl.Replicas = DefaultReplicas
		if cl.Embedded {
			cl.Replicas = min(DefaultReplicas, cl.Nodes())
		}
	}
	if cl.Replicas < 1 || cl.Replicas > MaxReplicas {
		p.add("cluster.replicas %d out of range (1-%d)", cl.Replicas, MaxReplicas)
	} else if cl.Embedded && cl.Replicas > cl.Nodes() {
		p.add("cluster.replicas %d is more than the %d nodes (routes + 1)", cl.Replicas, cl.Nodes())
	}
}

func badNodeRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
}

// validateExternal checks nats_urls, and that no key of the embedded
// server is set: it would silently not apply (sync_always, for one, is the
// external servers' own setting).
func (cl *Cluster) validateExternal(p *problems) {
	for _, s := range cl.NATSURLs {
		if err := checkURL(s, "nats", "tls"); err != nil {
			p.add("cluster.nats_urls %q: %v", RedactURL(s), err)
		}
	}
	for _, k := range []struct {
		key string
		set bool
	}{
		{"nats_listen", cl.NATSListen != DefaultNATSListen}, {"cluster_listen", cl.ClusterListen != DefaultClusterListen},
		{"routes", len(cl.Routes) > 0}, {"store_dir", cl.StoreDir != ""}, {"sync_always", cl.SyncAlways},
		{"secret_file", cl.SecretFile != ""}, {"tls_cert", cl.TLSCert != ""}, {"tls_key", cl.TLSKey != ""}, {"tls_ca", cl.TLSCA != ""},
		{"max_payload", cl.MaxPayload != DefaultMaxPayload},
	} {
		if k.set {
			p.add("cluster.%s is for embedded = true (with nats_urls it is the NATS servers' own setting)", k.key)
		}
	}
}

// validateEmbedded checks the embedded server's addresses and limits.
func (cl *Cluster) validateEmbedded(p *problems) {
	if cl.NATSListen != "" {
		if err := checkListen(cl.NATSListen); err != nil {
			p.add("cluster.nats_listen %q: %v", cl.NATSListen, err)
		}
	}
	if cl.ClusterListen != "" {
		if err := checkListen(cl.ClusterListen); err != nil {
			p.add("cluster.cluster_listen %q: %v", cl.ClusterListen, err)
		}
	} else if len(cl.Routes) > 0 {
		p.add("cluster.routes needs cluster_listen")
	}
	for _, r := range cl.Routes {
		if err := checkURL(r, "nats-route", "nats"); err != nil {
			p.add("cluster.routes %q: %v", RedactURL(r), err)
		} else if u, _ := url.Parse(r); u.User != nil {
			p.add("cluster.routes %q: write no credentials in a route: they come from cluster.secret_file", RedactURL(r))
		}
	}
	if cl.MaxPayload < minMaxPayload || cl.MaxPayload > maxMaxPayload {
		p.add("cluster.max_payload out of range (%d-%d)", minMaxPayload, maxMaxPayload)
	}
	cl.validateSecret(p)
	cl.validateTLS(p)
}

// TLS reports whether routes and clients speak TLS (tls_cert, tls_key and
// tls_ca set).
func (c *Cluster) TLS() bool { return c.TLSCert != "" }

// validateTLS checks that tls_cert, tls_key and tls_ca come together and
// load: a bad file is an error at start, not a route that never forms.
func (cl *Cluster) validateTLS(p *problems) {
	set := 0
	for _, f := range []string{cl.TLSCert, cl.TLSKey, cl.TLSCA} {
		if f != "" {
			set++
		}
	}
	if set == 0 {
		return
	}
	if set != 3 {
		p.add("cluster.tls_cert, cluster.tls_key and cluster.tls_ca go together")
		return
	}
	if _, err := tls.LoadX509KeyPair(cl.TLSCert, cl.TLSKey); err != nil {
		p.add("cluster.tls_cert %q, cluster.tls_key %q: %v", cl.TLSCert, cl.TLSKey, err)
	}
	pem, err := os.ReadFile(cl.TLSCA)
	if err == nil && !x509.NewCertPool().AppendCertsFromPEM(pem) {
		err = fmt.Errorf("no PEM certificate")
	}
	if err != nil {
		p.add("cluster.tls_ca %q: %v", cl.TLSCA, err)
	}
}

// validateSecret reads secret_file, and refuses a port open beyond the
// machine without it: a NATS client may read, delete or publish any of the
// cluster's mail (a message published to a queue subject is relayed: an
// open relay), and a route is a member of the cluster.
func (cl *Cluster) validateSecret(p *problems) {
	secret, err := cl.Secret()
	if err != nil {
		p.add("cluster.secret_file %q: %v", cl.SecretFile, err)
		return
	}
	if secret != "" {
		return
	}
	if cl.NATSListen != "" && !isLoopback(cl.NATSListen) {
		p.add("cluster.nats_listen %q is not a loopback address: it needs cluster.secret_file", cl.NATSListen)
	}
	if len(cl.Routes) > 0 && cl.ClusterListen != "" && !isLoopback(cl.ClusterListen) {
		p.add("cluster.cluster_listen %q is not a loopback address: it needs cluster.secret_file", cl.ClusterListen)
	}
}

// isLoopback reports whether the listen address "host:port" is on the
// loopback interface only: "localhost" or a loopback IP address. Any other
// name may resolve to an address others reach.
func isLoopback(hostPort string) bool {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkListen checks a listen address "host:port"; the host may be an IP
// address or a name, the port 1-65535.
func checkListen(s string) error {
	if !IsHostPort(s) {
		return fmt.Errorf("want host:port")
	}
	return nil
}

// checkURL checks a NATS URL: one of schemes, a host and a port.
func checkURL(s string, schemes ...string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || !slices.Contains(schemes, u.Scheme) {
		return fmt.Errorf("want %s://host:port", schemes[0])
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return fmt.Errorf("want %s://host:port", schemes[0])
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q: want 1-65535", port)
	}
	return nil
}
