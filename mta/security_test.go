package mta

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"

	"go.uber.org/zap/zaptest"
	"golang.org/x/crypto/bcrypt"

	"gomta/mta/config"
)

func TestCheckPasswordPlainAndBcrypt(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("t", []byte(`[server]
"h" = { smtp = 2525, pop = 2110 }
[accounts."h"]
"plain@x.test" = "pw"
"hashed@x.test" = "`+string(hash)+`"
`), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Server("h")
	h := &Host{}
	h.live.Store(newHostConfig(cfg, s))
	for _, c := range []struct {
		user, pass string
		want       bool
	}{
		{"plain@x.test", "pw", true},
		{"PLAIN@x.test", "pw", true},
		{"plain@x.test", "PW", false},
		{"plain@x.test", "", false},
		{"hashed@x.test", "s3cret", true},
		{"hashed@x.test", string(hash), false}, // the hash itself is no password
		{"hashed@x.test", "wrong", false},
		{"ghost@x.test", "pw", false},
	} {
		if got := h.checkPassword(c.user, c.pass); got != c.want {
			t.Errorf("checkPassword(%s, %q) = %v", c.user, c.pass, got)
		}
	}
}

func TestBadBcryptRejected(t *testing.T) {
	_, err := config.Parse("t", []byte("[server]\n\"h\" = { smtp = 1, pop = 2 }\n[accounts.\"h\"]\n\"a@x.test\" = \"$2a$10$short\"\n"), "", nil)
	if err == nil {
		t.Fatal("a broken bcrypt hash must be reported")
	}
}

func TestPlaintextAuthPolicy(t *testing.T) {
	cfg, err := config.Load("", "")
	if err != nil {
		t.Fatal(err)
	}
	lo, far := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1)}
	for _, c := range []struct {
		mode      string
		lo, other bool
	}{{"trusted", true, false}, {"always", true, true}, {"never", false, false}} {
		cfg.PlaintextAuth = c.mode
		if plaintextAuth(cfg, lo) != c.lo || plaintextAuth(cfg, far) != c.other {
			t.Errorf("%s: loopback %v, other %v", c.mode, plaintextAuth(cfg, lo), plaintextAuth(cfg, far))
		}
	}
}

func TestSelfSignedCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, err := WriteSelfSigned(dir, []string{"mx.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("", "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLSCert, cfg.TLSKey, cfg.TLSSelfSigned = certFile, keyFile, false
	tc, err := TLSConfig(cfg, zaptest.NewLogger(t))
	if err != nil || tc == nil {
		t.Fatalf("TLSConfig: %v %v", tc, err)
	}
	cert, err := tc.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	for _, name := range []string{"mx.example.test", "localhost", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
			t.Errorf("certificate does not cover %s: %v", name, err)
		}
	}
	cfg.TLSCert, cfg.TLSKey = "", ""
	if tc, _ := TLSConfig(cfg, zaptest.NewLogger(t)); tc != nil {
		t.Error("no certificate and no tls_self_signed: TLS must be off")
	}
	cfg.TLSSelfSigned = true
	if tc, err := TLSConfig(cfg, zaptest.NewLogger(t)); err != nil || tc == nil || tc.MinVersion != tls.VersionTLS12 {
		t.Errorf("tls_self_signed: %v %v", tc, err)
	}
}
