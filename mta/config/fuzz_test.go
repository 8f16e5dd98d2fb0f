package config

import (
	"os"
	"testing"
)

// FuzzParse feeds the config loader arbitrary files: it must return a config
// or an error, never panic, and a config it returns must be valid.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"../../configs/default.toml", "../../configs/cs305-config.toml", "../../configs/cs305-fdns.toml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, []byte(nil))
	}
	f.Add([]byte("[server]\n\"a\" = { smtp = \"1\", pop = 2 }\n[accounts.\"a\"]\n\"x@y\" = \"$2a$\"\n"), []byte("[P]\n\"x.\" = \"h:1\"\n"))
	f.Add([]byte("[gomta]\nretry = [\"-1s\"]\ntrusted_networks = [\"::/0\"]\n"), []byte("[MX]\n\"\" = 5\n"))
	f.Fuzz(func(t *testing.T, config, fdns []byte) {
		cfg, err := Parse("fuzz", config, "fdns", fdns)
		if err != nil {
			return
		}
		if len(cfg.Servers) == 0 {
			t.Fatal("a config without servers was accepted")
		}
		for _, s := range cfg.Servers {
			if s.SMTPPort < 1 || s.SMTPPort > 65535 {
				t.Fatalf("accepted SMTP port %d", s.SMTPPort)
			}
		}
		for host, addr := range cfg.P {
			if got, err := cfg.ResolveHost(host); err != nil || got != addr || !IsHostPort(addr) {
				t.Fatalf("accepted [P] %q = %q that does not resolve to a host:port: %q %v", host, addr, got, err)
			}
		}
	})
}
