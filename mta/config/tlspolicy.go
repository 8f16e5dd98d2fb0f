package config

import (
	"crypto/x509"
	"fmt"
	"os"
	"strings"
)

// The relay's TLS policies for a destination domain ([gomta.tls_policy]).
const (
	// TLSOpportunistic: STARTTLS when the next MTA offers it, any
	// certificate, plain text when it is not offered (RFC 7435).
	TLSOpportunistic = "opportunistic"
	// TLSRequire: STARTTLS must be offered and succeed; any certificate.
	TLSRequire = "require"
	// TLSVerify: as require, and the certificate must chain to the system's
	// roots (or to ca_file's) and name the mail exchanger's host name.
	TLSVerify = "verify"
)

// TLSPolicy is one [gomta.tls_policy] entry, written either as a policy name
// ("example.org" = "require") or as a table
// ([gomta.tls_policy."example.org"] policy = "verify", ca_file = "ca.pem").
type TLSPolicy struct {
	Policy string `toml:"policy"`  // TLSOpportunistic, TLSRequire or TLSVerify
	CAFile string `toml:"ca_file"` // verify only: PEM roots trusted instead of the system's
	// roots are CAFile's certificates, read by validation (nil: the system's).
	roots   *x509.CertPool
	unknown []string // table keys other than policy and ca_file, reported by validation
}

// UnmarshalTOML takes the short form (a string) or the table form.
func (p *TLSPolicy) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case string:
		p.Policy = x
	case map[string]any:
		for k, val := range x {
			s, ok := val.(string)
			if !ok {
				return fmt.Errorf("tls_policy %s: want a string, got %T", k, val)
			}
			switch k {
			case "policy":
				p.Policy = s
			case "ca_file":
				p.CAFile = s
			default:
				p.unknown = append(p.unknown, k)
			}
		}
	default:
		return fmt.Errorf("tls_policy: want a policy name or a table, got %T", v)
	}
	return nil
}

// Roots are the CA certificates of CAFile, nil when it is not set (the
// system's roots are used).
func (p TLSPolicy) Roots() *x509.CertPool { return p.roots }

func (p TLSPolicy) String() string {
	if p.CAFile != "" {
		return p.Policy + " ca_file=" + p.CAFile
	}
	return p.Policy
}

// TLSPolicies maps a destination domain (lower-case, no trailing dot) to its
// policy; the key "*" is the policy of every domain not listed, and a
// domain in neither is TLSOpportunistic.
type TLSPolicies map[string]TLSPolicy

// String lists the entries in key order, as a reload reports a change.
func (ps TLSPolicies) String() string {
	parts := make([]string, 0, len(ps))
	for _, d := range sortedKeys(ps) {
		parts = append(parts, d+"="+ps[d].String())
	}
	return strings.Join(parts, ", ")
}

// validateTLSPolicy checks each [gomta.tls_policy] entry, folds its domain
// and reads its ca_file, so that a CA file that cannot be used is a config
// error at load or reload, not a failure of every delivery.
func (c *Config) validateTLSPolicy(p *problems) {
	if len(c.TLSPolicy) == 0 {
		return
	}
	out := make(TLSPolicies, len(c.TLSPolicy))
	spelled := make(map[string]string, len(c.TLSPolicy)) // folded domain → key as written
	for _, d := range sortedKeys(c.TLSPolicy) {
		pol := c.TLSPolicy[d]
		for _, k := range pol.unknown {
			p.add("[gomta.tls_policy.%q] unknown key %q (want policy, ca_file)", d, k)
		}
		pol.unknown = nil
		switch pol.Policy {
		case TLSOpportunistic, TLSRequire, TLSVerify:
		default:
			p.add("[gomta.tls_policy] %q: policy %q: want %q, %q or %q", d, pol.Policy, TLSOpportunistic, TLSRequire, TLSVerify)
		}
		if pol.CAFile != "" {
			if pol.Policy != TLSVerify {
				p.add("[gomta.tls_policy.%q] ca_file is only for policy %q", d, TLSVerify)
			} else if roots, err := readRoots(pol.CAFile); err != nil {
				p.add("[gomta.tls_policy.%q] ca_file: %v", d, err)
			} else {
				pol.roots = roots
			}
		}
		// Two spellings of one domain ("Bank.example" and "bank.example.",
		// or a U-label and its A-label) would otherwise leave whichever
		// sorts last in force, perhaps the weaker policy, without a word.
		key := normHost(d)
		if first, dup := spelled[key]; dup {
			p.add("[gomta.tls_policy] %q and %q name the same domain %s", first, d, key)
		}
		spelled[key] = d
		out[key] = pol
	}
	c.TLSPolicy = out
}

// readRoots reads a PEM file of CA certificates.
func readRoots(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}
