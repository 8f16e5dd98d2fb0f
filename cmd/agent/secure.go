package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"gomta/session/reply"
)

// maxCAFile bounds the -ca PEM file read into memory.
const maxCAFile = 1 << 20

// connState is what the agent knows about one connection's protection, for
// the status line and for the hint after a refusal.
type connState struct {
	tls        bool   // the session runs under TLS (STARTTLS/STLS)
	unverified string // why the certificate was not checked; "" when it was, or without TLS
	auth       string // how the agent logged in ("AUTH", "AUTH PLAIN", "USER/PASS"); "" = not logged in
	noAuth     string // why it did not log in, when it did not
}

// describe is the parenthesised summary shown in interactive output:
// "(TLS)" or "(no TLS)", then the login.
func (st *connState) describe(user string) string {
	s := "(no TLS)"
	if st.tls {
		s = "(TLS)"
	}
	if st.auth != "" {
		return s + ", logged in as " + user + " with " + st.auth
	}
	return s + ", not logged in: " + st.noAuth
}

// describeLogin is the POP3 summary: "(TLS, AUTH PLAIN)".
func (st *connState) describeLogin() string {
	if st.tls {
		return "(TLS, " + st.auth + ")"
	}
	return "(no TLS, " + st.auth + ")"
}

// note is the line shown when TLS runs without a checked certificate.
func (st *connState) note() string {
	if !st.tls || st.unverified == "" {
		return ""
	}
	return "Note: the server's certificate was not verified: " + st.unverified + "."
}

// loginHint explains a 5.7.x refusal (relay denied, sender not owned) when
// the agent did not log in: usually the reason for it.
func (st *connState) loginHint(err error) string {
	var r *reply.Reply
	if st == nil || st.auth != "" || !errors.As(err, &r) || !strings.HasPrefix(r.Enhanced, "5.7.") {
		return ""
	}
	return " (you are not logged in: " + st.noAuth + ")"
}

// certError is a server certificate the agent could not verify.
type certError struct {
	what string // "the SMTP server smtp.gmail.com (10.0.0.5:25)"
	err  error
}

func (e *certError) Error() string {
	reason := strings.TrimPrefix(innermost(e.err), "x509: ")
	return fmt.Sprintf("cannot verify the certificate of %s: %s; to trust it, give -ca FILE with its certificate "+
		"(mtad -gen-cert DIR writes DIR/cert.pem), or -insecure to skip the check", e.what, reason)
}
func (e *certError) Unwrap() error { return e.err }

// loadCA reads -ca FILE into a pool that also holds the system roots.
func loadCA(path string) (*x509.CertPool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("-ca: cannot open %s", path)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCAFile+1))
	if err != nil {
		return nil, fmt.Errorf("-ca: cannot read %s", path)
	}
	if len(b) > maxCAFile {
		return nil, fmt.Errorf("-ca: %s is larger than %d KiB", path, maxCAFile>>10)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("-ca: %s holds no PEM certificate", path)
	}
	return pool, nil
}

// dial connects to addr, from -source when given.
func (o *options) dial(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: o.timeout}
	if o.source != nil {
		d.LocalAddr = &net.TCPAddr{IP: o.source}
	}
	return d.DialContext(ctx, "tcp", addr)
}

// isLoopback reports whether conn's peer is a loopback address.
func isLoopback(conn net.Conn) bool {
	a, ok := conn.RemoteAddr().(*net.TCPAddr)
	return ok && a.IP.IsLoopback()
}

// tlsConfig is the client TLS configuration for one connection to host
// (the host part of the dialled address). The certificate is checked against
// the system roots plus -ca, for host; -insecure skips the check. A server
// on loopback whose certificate fails the check, when neither -ca nor
// -insecure was given, is still used under TLS, and st says why it was not
// verified: the traffic never leaves the machine, and the demo's
// certificate is made at start, so no one could hold it in advance.
func (e *env) tlsConfig(o *options, what, host string, loopback bool, st *connState) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true} // checked in VerifyConnection below
	if net.ParseIP(host) == nil {
		cfg.ServerName = host // SNI
	}
	if o.insecure {
		e.warnInsecure()
		st.unverified = "-insecure was given"
		return cfg
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return &certError{what, errors.New("the server sent no certificate")}
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: host, Roots: o.roots, Intermediates: inter})
		switch {
		case err == nil:
			return nil
		case loopback && o.caFile == "":
			st.unverified = "the server is on loopback (give -ca FILE to verify it)"
			return nil
		}
		return &certError{what, err}
	}
	return cfg
}

// warnInsecure prints the -insecure warning once per run.
func (e *env) warnInsecure() {
	if !e.warnedInsecure {
		e.warnedInsecure = true
		fmt.Fprintln(e.stderr, "agent: warning: not verifying the server's certificate")
	}
}
