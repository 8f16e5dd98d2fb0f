package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"gomta/configs"
	"gomta/session/address"
)

// flexString accepts a TOML string or integer (ports are written both ways).
type flexString string

func (f *flexString) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case string:
		*f = flexString(x)
	case int64:
		*f = flexString(strconv.FormatInt(x, 10))
	default:
		return fmt.Errorf("want a string or an integer, got %T", v)
	}
	return nil
}

type serverEntry struct {
	SMTP flexString `toml:"smtp"`
	POP  flexString `toml:"pop"`
}

type fileFormat struct {
	Agent    map[string]AgentHosts        `toml:"agent"`
	Server   map[string]serverEntry       `toml:"server"`
	Accounts map[string]map[string]string `toml:"accounts"`
	MX       map[string]flexString        `toml:"MX"`
	P        map[string]flexString        `toml:"P"`
	Gomta    *Settings                    `toml:"gomta"`
}

// Load reads a config in the course's schema (configPath "" = the built-in
// default) and an optional fake DNS file whose [MX]/[P] entries are added to
// (and override) those of the config. Every problem found is reported.
func Load(configPath, fdnsPath string) (*Config, error) {
	data, name := configs.Default, "built-in default config"
	if configPath != "" {
		b, err := os.ReadFile(configPath)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		data, name = b, configPath
	}
	var fdns []byte
	if fdnsPath != "" {
		b, err := os.ReadFile(fdnsPath)
		if err != nil {
			return nil, fmt.Errorf("fdns: %w", err)
		}
		fdns = b
	}
	return Parse(name, data, fdnsPath, fdns)
}

// Parse is Load on bytes; names are used in messages.
func Parse(name string, data []byte, fdnsName string, fdns []byte) (*Config, error) {
	var f fileFormat
	settings := DefaultSettings()
	f.Gomta = &settings
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var problems []error
	for _, k := range md.Undecoded() {
		if len(k) > 0 && k[0] == "gomta" {
			problems = append(problems, fmt.Errorf("%s: unknown setting %s", name, k))
		}
	}
	cfg := &Config{Agents: map[string]AgentHosts{}, MX: map[string]string{}, P: map[string]string{}, Settings: *f.Gomta}
	cfg.retrySet = md.IsDefined("gomta", "retry")
	addDNS := func(src string, mx, p map[string]flexString) {
		for k, v := range mx {
			cfg.MX[normHost(k)] = normHost(string(v))
		}
		for k, v := range p {
			cfg.P[normHost(k)] = strings.TrimSpace(string(v))
		}
	}
	addDNS(name, f.MX, f.P)
	if fdns != nil {
		var d fileFormat
		if _, err := toml.Decode(string(fdns), &d); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", fdnsName, err))
		}
		addDNS(fdnsName, d.MX, d.P)
	}
	for dom, h := range f.Agent {
		cfg.Agents[strings.ToLower(dom)] = AgentHosts{SMTP: normHost(h.SMTP), POP: normHost(h.POP)}
	}
	problems = append(problems, cfg.buildServers(name, &f, accountOrder(md))...)
	problems = append(problems, cfg.validate(name)...)
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return cfg, nil
}

// accountOrder lists each server's account addresses in file order (a TOML
// table decodes into an unordered map).
func accountOrder(md toml.MetaData) map[string][]string {
	order := map[string][]string{}
	for _, k := range md.Keys() {
		if len(k) == 3 && k[0] == "accounts" {
			order[k[1]] = append(order[k[1]], k[2])
		}
	}
	return order
}

func (c *Config) buildServers(name string, f *fileFormat, order map[string][]string) []error {
	var problems []error
	for sname, e := range f.Server {
		s := &Server{Name: sname, Accounts: map[string]string{}}
		var err error
		if s.SMTPPort, err = parsePort(string(e.SMTP)); err != nil {
			problems = append(problems, fmt.Errorf("%s: [server] %q smtp: %w", name, sname, err))
		}
		if s.POPPort, err = parsePort(string(e.POP)); err != nil {
			problems = append(problems, fmt.Errorf("%s: [server] %q pop: %w", name, sname, err))
		}
		doms := map[string]bool{}
		for addr, pass := range f.Accounts[sname] {
			at := strings.LastIndexByte(addr, '@')
			if at <= 0 || at == len(addr)-1 || strings.ContainsAny(addr, " \t<>\x00/\\") {
				problems = append(problems, fmt.Errorf("%s: [accounts.%q] %q is not an address local@domain", name, sname, addr))
				continue
			}
			if pass == "" {
				problems = append(problems, fmt.Errorf("%s: [accounts.%q] %q has an empty password", name, sname, addr))
			}
			if strings.HasPrefix(pass, "$2") && !IsBcrypt(pass) {
				problems = append(problems, fmt.Errorf("%s: [accounts.%q] %q: password looks like a bcrypt hash but is not a valid one", name, sname, addr))
			}
			s.Accounts[addr] = pass
			doms[address.FoldDomain(addr[at+1:])] = true
		}
		for _, d := range c.ExtraDomains[sname] {
			doms[address.FoldDomain(d)] = true
		}
		for d := range doms {
			s.Domains = append(s.Domains, d)
		}
		sort.Strings(s.Domains)
		if err := c.setPostmaster(s, order[sname]); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", name, err))
		}
		c.Servers = append(c.Servers, s)
	}
	for sname := range f.Accounts {
		if _, ok := f.Server[sname]; !ok {
			problems = append(problems, fmt.Errorf("%s: [accounts.%q] names no server of [server]", name, sname))
		}
	}
	for sname := range c.ExtraDomains {
		if _, ok := f.Server[sname]; !ok {
			problems = append(problems, fmt.Errorf("%s: [gomta.domains] %q names no server of [server]", name, sname))
		}
	}
	for sname := range c.Postmasters {
		if _, ok := f.Server[sname]; !ok {
			problems = append(problems, fmt.Errorf("%s: [gomta.postmaster] %q names no server of [server]", name, sname))
		}
	}
	sort.Slice(c.Servers, func(i, j int) bool { return c.Servers[i].Name < c.Servers[j].Name })
	return problems
}

// setPostmaster chooses s.Postmaster: the configured account, or the account
// whose local part is "postmaster", or the first account in file order
// (order, then any account it missed, sorted).
func (c *Config) setPostmaster(s *Server, order []string) error {
	if want, ok := c.Postmasters[s.Name]; ok {
		for a := range s.Accounts {
			if address.Account(a) == address.Account(want) {
				s.Postmaster = a
				return nil
			}
		}
		return fmt.Errorf("[gomta.postmaster] %q = %q is not an account of that server", s.Name, want)
	}
	rest := make([]string, 0, len(s.Accounts))
	for a := range s.Accounts {
		if !slices.Contains(order, a) {
			rest = append(rest, a)
		}
	}
	sort.Strings(rest)
	all := append(slices.Clip(order), rest...)
	for _, a := range all {
		if _, ok := s.Accounts[a]; ok && strings.EqualFold(a[:strings.LastIndexByte(a, '@')], "postmaster") {
			s.Postmaster = a
			return nil
		}
	}
	for _, a := range all {
		if _, ok := s.Accounts[a]; ok {
			s.Postmaster = a
			return nil
		}
	}
	return nil
}

// ParseAddr parses a [P] value: a bare port is 127.0.0.1:port (the course's
// single-machine setup), "host:port" is dialled as written.
func ParseAddr(v string) (string, error) {
	if p, err := parsePort(v); err == nil {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
	}
	if !IsHostPort(v) {
		return "", errors.New("want a port or host:port")
	}
	return v, nil
}

// IsHostPort reports whether v is a literal "host:port".
func IsHostPort(v string) bool {
	h, p, err := net.SplitHostPort(v)
	if err != nil || h == "" {
		return false
	}
	_, err = parsePort(p)
	return err == nil
}

// IsBcrypt tells a bcrypt hash ("$2a$", "$2b$", "$2y$") from a plaintext
// password; the course's files hold plaintext.
func IsBcrypt(p string) bool {
	return len(p) == 60 && (strings.HasPrefix(p, "$2a$") || strings.HasPrefix(p, "$2b$") || strings.HasPrefix(p, "$2y$"))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return p, nil
}

// normHost is a domain or host name of the fake DNS tables in the form
// in which names are compared: folded (an internationalized name in its
// A-label form, address.FoldDomain), without the trailing dot.
func normHost(h string) string {
	return address.FoldDomain(strings.TrimSuffix(strings.TrimSpace(h), "."))
}
