package main

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gomta/mta"
	"gomta/session/smtp"
)

// tlsEcho is a TLS server on 127.0.0.1 that completes handshakes with a
// self-signed certificate made by mta.SelfSigned; certFile holds its PEM.
func tlsEcho(t *testing.T) (addr, certFile string) {
	t.Helper()
	certPEM, keyPEM, err := mta.SelfSigned([]string{"mail.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	certFile = filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 { // bounded: the test makes a handful of connections
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String(), certFile
}

// handshake runs the agent's TLS configuration for host against addr,
// pretending the server is (or is not) on loopback.
func handshake(t *testing.T, e *env, o *options, addr, host string, loopback bool) (*connState, error) {
	t.Helper()
	st := &connState{}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tc := tls.Client(conn, e.tlsConfig(o, "the SMTP server mx", host, loopback, st))
	err = tc.Handshake()
	if err == nil {
		st.tls = true
	}
	return st, err
}

func TestTLSVerification(t *testing.T) {
	t.Parallel()
	addr, certFile := tlsEcho(t)
	pool, err := loadCA(certFile)
	if err != nil {
		t.Fatal(err)
	}
	var errb strings.Builder
	e := newEnv(strings.NewReader(""), &strings.Builder{}, &errb)

	// A remote server (as far as the check knows) with an unknown
	// certificate: refused, with the way out in the sentence.
	_, err = handshake(t, e, &options{}, addr, "127.0.0.1", false)
	var ce *certError
	if !errors.As(err, &ce) {
		t.Fatalf("unverifiable remote certificate: err %v, want a certError", err)
	}
	msg := sentence(err)
	for _, want := range []string{"cannot verify the certificate of the SMTP server mx: certificate signed by unknown authority", "-ca FILE", "-insecure"} {
		if !strings.Contains(msg, want) {
			t.Errorf("sentence %q lacks %q", msg, want)
		}
	}
	if exitStatus(err) != exitUsage {
		t.Errorf("exit status %d, want %d", exitStatus(err), exitUsage)
	}

	// On loopback, without -ca or -insecure: TLS, unverified, noted.
	st, err := handshake(t, e, &options{}, addr, "127.0.0.1", true)
	if err != nil || !strings.Contains(st.note(), "the server is on loopback") {
		t.Errorf("loopback: err %v, note %q", err, st.note())
	}

	// -ca with the server's certificate: verified, by IP and by name.
	for _, host := range []string{"127.0.0.1", "mail.example.test"} {
		st, err = handshake(t, e, &options{caFile: certFile, roots: pool}, addr, host, false)
		if err != nil || st.note() != "" {
			t.Errorf("-ca, host %s: err %v, note %q", host, err, st.note())
		}
	}
	// -ca, but the name does not match: refused even on loopback.
	_, err = handshake(t, e, &options{caFile: certFile, roots: pool}, addr, "other.example.test", true)
	if !errors.As(err, &ce) || !strings.Contains(sentence(err), "other.example.test") {
		t.Errorf("-ca, wrong name: %v", err)
	}

	// -insecure: accepted, with one warning for any number of connections.
	for range 2 {
		st, err = handshake(t, e, &options{insecure: true}, addr, "127.0.0.1", false)
		if err != nil || st.note() != "Note: the server's certificate was not verified: -insecure was given." {
			t.Errorf("-insecure: err %v, note %q", err, st.note())
		}
	}
	if errb.String() != "agent: warning: not verifying the server's certificate\n" {
		t.Errorf("stderr %q, want the warning once", errb.String())
	}
}

func TestSecurityFlags(t *testing.T) {
	t.Parallel()
	_, certFile := tlsEcho(t)
	notPEM := writeFile(t, "x.pem", "not a certificate")
	for _, tc := range []struct {
		args    []string
		tls     bool
		wantErr string
	}{
		{args: nil, tls: true},
		{args: []string{"-tls=false"}, tls: false},
		{args: []string{"-no-tls"}, tls: false},
		{args: []string{"-ca", certFile}, tls: true},
		{args: []string{"-insecure", "-ca", certFile}, wantErr: "give -ca FILE or -insecure, not both"},
		{args: []string{"-ca", notPEM}, wantErr: "holds no PEM certificate"},
		{args: []string{"-ca", "/nonexistent/ca.pem"}, wantErr: "-ca: cannot open /nonexistent/ca.pem"},
		{args: []string{"-source", "nowhere"}, wantErr: `-source "nowhere" is not an IP address`},
	} {
		o, _, err := parseGlobal(append([]string{"-e", "usr@gmail.com"}, tc.args...))
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: err %v, want %q", tc.args, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case o.tls != tc.tls:
			t.Errorf("%v: tls %v, want %v", tc.args, o.tls, tc.tls)
		}
	}
	o, _, err := parseGlobal([]string{"-e", "usr@gmail.com", "-source", "127.0.0.2"})
	if err != nil || o.source.String() != "127.0.0.2" {
		t.Errorf("-source: %v, %v", o, err)
	}
}

func TestLoginHint(t *testing.T) {
	t.Parallel()
	denied := &smtp.Reply{Code: 554, Enhanced: "5.7.1", Text: "relay access denied"}
	noUser := &smtp.Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}
	out := &connState{noAuth: "no -p PASSWORD was given"}
	in := &connState{auth: "AUTH"}
	for _, tc := range []struct {
		st   *connState
		err  error
		want string
	}{
		{out, denied, " (you are not logged in: no -p PASSWORD was given)"},
		{out, noUser, ""},
		{in, denied, ""},
		{nil, denied, ""},
		{out, errors.New("network"), ""},
	} {
		if got := tc.st.loginHint(tc.err); got != tc.want {
			t.Errorf("loginHint(%v) with %+v = %q, want %q", tc.err, tc.st, got, tc.want)
		}
	}
}
