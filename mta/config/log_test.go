package config

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// TestLogFieldsNoPasswords: the start-up line carries the effective settings
// and the accounts by address, and no password, plain or hashed.
func TestLogFieldsNoPasswords(t *testing.T) {
	t.Parallel()
	const hash = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
	conf := `
[server]
"a" = { smtp = 2025, pop = 2110 }
[accounts."a"]
"amy@a.test" = "plain-Secret-1"
"bob@a.test" = "` + hash + `"
[gomta]
max_errors = 7
retry = ["1s", "1m"]
`
	cfg, err := Parse("t.toml", []byte(conf), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zap.InfoLevel))
	log.Info("config loaded", cfg.LogFields()...)
	out := buf.String()
	for _, want := range []string{`"max_errors":7`, `"retry":["1s","1m0s"]`, `"resolver":"fdns"`,
		`"accounts":["amy@a.test","bob@a.test"]`, `"smtp_port":2025`, `"postmaster":"amy@a.test"`} {
		if !strings.Contains(out, want) {
			t.Errorf("config line lacks %s:\n%s", want, out)
		}
	}
	for _, secret := range []string{"plain-Secret-1", hash, "N9qo8uLOickgx2ZMRZoMye"} {
		if strings.Contains(out, secret) {
			t.Errorf("config line holds a password %q:\n%s", secret, out)
		}
	}
}
