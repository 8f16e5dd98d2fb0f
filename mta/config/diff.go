package config

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// Change is one difference between a running config and a newly read one,
// as a reload reports it. Old and New are values as written in the file;
// a password never appears in them.
type Change struct {
	Key      string // a [gomta] key ("max_errors"), or "server a", "accounts.a", "[MX] b.test", ...
	Old, New string // "" for a key that is absent on that side
	// Restart says that the change takes a restart: the running value stays.
	Restart bool
}

// String renders the change for the log and mtactl: "max_errors: 10 -> 20",
// with " (needs a restart; not applied)" when it is not applied.
func (c Change) String() string {
	s := fmt.Sprintf("%s: %s -> %s", c.Key, orNone(c.Old), orNone(c.New))
	if c.Restart {
		s += " (needs a restart; not applied)"
	}
	return s
}

func orNone(v string) string {
	if v == "" {
		return "(none)"
	}
	return v
}

// restartKeys are the [gomta] keys a running daemon cannot change: where it
// listens and keeps its data, and what its queues and workers were built
// with (the retry schedule included: each queue holds its own copy), and
// the process's own listeners (metrics, control socket). A reload reports a
// change to them and keeps the running value.
var restartKeys = map[string]bool{
	"data_dir": true, "listen": true, "implicit_tls": true, "tls_self_signed": true,
	"queue_workers": true, "max_queue": true, "max_relay_connections": true, "retry": true,
	"relay_concurrency": true, "relay_backoff": true,
	"retry_base": true, "retry_max": true, "max_queue_lifetime": true, "delay_warning": true,
	"metrics_listen": true, "control_socket": true,
	"cluster": true, // the NATS server and connection live as long as the process
}

// NeedsRestart reports whether the [gomta] key cannot change while mtad runs.
func NeedsRestart(key string) bool { return restartKeys[key] }

// Diff lists what differs from old to c, key by key, in a stable order:
// the [gomta] settings, then each mail host (ports, accounts, domains,
// postmaster), then the [MX] and [P] records. A host added or removed, a
// port, and the keys of restartKeys are marked Restart, as is switching TLS
// on or off; a new certificate or key file is not.
func Diff(old, c *Config) []Change {
	var out []Change
	ov, nv := reflect.ValueOf(old.Settings), reflect.ValueOf(c.Settings)
	t := ov.Type()
	for i := range t.NumField() {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if key == "" || !t.Field(i).IsExported() {
			continue
		}
		o, n := fmt.Sprint(ov.Field(i).Interface()), fmt.Sprint(nv.Field(i).Interface())
		if o != n {
			out = append(out, Change{Key: key, Old: o, New: n, Restart: restartKeys[key]})
		}
	}
	if old.TLSSelfSigned != c.TLSSelfSigned {
		// From a minted certificate to files or back is a new TLS setup.
		for i := range out {
			out[i].Restart = out[i].Restart || out[i].Key == "tls_cert" || out[i].Key == "tls_key"
		}
	}
	if old.tlsOn() != c.tlsOn() {
		out = append(out, Change{Key: "tls", Old: onOff(old.tlsOn()), New: onOff(c.tlsOn()), Restart: true})
	}
	out = append(out, diffServers(old, c)...)
	out = append(out, diffTable("[MX]", old.MX, c.MX)...)
	return append(out, diffTable("[P]", old.P, c.P)...)
}

func (c *Config) tlsOn() bool { return c.TLSCert != "" || c.TLSSelfSigned }

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// diffServers compares the mail hosts of old and c by name.
func diffServers(old, c *Config) []Change {
	var out []Change
	names := map[string]bool{}
	for _, s := range append(slices.Clone(old.Servers), c.Servers...) {
		names[s.Name] = true
	}
	for _, name := range sortedKeys(names) {
		o, n := old.Server(name), c.Server(name)
		switch {
		case o == nil:
			out = append(out, Change{Key: "server " + name, New: ports(n), Restart: true})
		case n == nil:
			out = append(out, Change{Key: "server " + name, Old: ports(o), Restart: true})
		default:
			if ports(o) != ports(n) {
				out = append(out, Change{Key: "server " + name, Old: ports(o), New: ports(n), Restart: true})
			}
			out = append(out, diffAccounts(name, o.Accounts, n.Accounts)...)
			if od, nd := strings.Join(o.Domains, " "), strings.Join(n.Domains, " "); od != nd {
				out = append(out, Change{Key: "domains." + name, Old: od, New: nd})
			}
			if o.Postmaster != n.Postmaster {
				out = append(out, Change{Key: "postmaster." + name, Old: o.Postmaster, New: n.Postmaster})
			}
		}
	}
	return out
}

func ports(s *Server) string { return fmt.Sprintf("smtp %d, pop %d", s.SMTPPort, s.POPPort) }

// diffAccounts names the accounts added, removed and whose password changed;
// never a password.
func diffAccounts(server string, old, c map[string]string) []Change {
	var out []Change
	key := "accounts." + server
	for _, a := range sortedKeys(c) {
		switch p, ok := old[a]; {
		case !ok:
			out = append(out, Change{Key: key, New: a})
		case p != c[a]:
			out = append(out, Change{Key: key, Old: a, New: a + " (new password)"})
		}
	}
	for _, a := range sortedKeys(old) {
		if _, ok := c[a]; !ok {
			out = append(out, Change{Key: key, Old: a})
		}
	}
	return out
}

// diffTable compares one fake DNS table record by record.
func diffTable(table string, old, c map[string]string) []Change {
	var out []Change
	all := map[string]bool{}
	for k := range old {
		all[k] = true
	}
	for k := range c {
		all[k] = true
	}
	for _, k := range sortedKeys(all) {
		if old[k] != c[k] {
			out = append(out, Change{Key: table + " " + k, Old: old[k], New: c[k]})
		}
	}
	return out
}

// KeepRunning puts back into c, a config about to replace old in a running
// daemon, what a running daemon cannot change: the restartKeys settings, the
// TLS settings when TLS would be switched on or off, each running host's
// ports, and the set of hosts (one added to the file is left out; one
// removed from it keeps its old accounts). After it, Diff(old, c) has no
// Restart change left.
func (c *Config) KeepRunning(old *Config) {
	ov, nv := reflect.ValueOf(&old.Settings).Elem(), reflect.ValueOf(&c.Settings).Elem()
	t := ov.Type()
	for i := range t.NumField() {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if restartKeys[key] {
			nv.Field(i).Set(ov.Field(i))
		}
	}
	if old.tlsOn() != c.tlsOn() || old.TLSSelfSigned != c.TLSSelfSigned {
		c.TLSCert, c.TLSKey, c.TLSSelfSigned = old.TLSCert, old.TLSKey, old.TLSSelfSigned
	}
	servers := make([]*Server, 0, len(old.Servers))
	for _, o := range old.Servers {
		n := c.Server(o.Name)
		if n == nil {
			servers = append(servers, o)
			continue
		}
		n.SMTPPort, n.POPPort = o.SMTPPort, o.POPPort
		servers = append(servers, n)
	}
	sort.Slice(servers, func(i, j int) bool { return servers[i].Name < servers[j].Name })
	c.Servers = servers
}
