// Package dnstest is a DNS server for tests: it answers on a loopback UDP
// port from a small zone given by the test, so that real DNS resolution
// (MX, A, AAAA, NXDOMAIN, SERVFAIL, no answer at all) is exercised without
// any query leaving the machine.
//
// Invariants: it answers only for the names of its zone and a name it does
// not hold is NXDOMAIN (it never recurses or forwards); a name that holds
// records of other types only is answered with an empty authoritative
// NOERROR (NODATA, RFC 2308 §2.2); every query is counted.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Zone is what a Server answers.
type Zone struct {
	// Records in presentation format, one per string:
	// "b.test. 60 IN MX 10 mx1.b.test.".
	Records []string
	// ServFail names are answered SERVFAIL (RFC 1035 §4.1.1 RCODE 2).
	ServFail []string
	// Silent names are never answered, as a server that is down or cut off.
	Silent []string
}

// Server is a running test DNS server.
type Server struct {
	Addr string // "127.0.0.1:port", for dns_servers

	mu      sync.Mutex
	rrs     map[string][]dns.RR // by owner name, lower-case, rooted
	status  map[string]int      // owner name -> rcode to give instead
	silent  map[string]bool
	queries map[string]int // "name TYPE" -> count
}

// Start runs a server for z on 127.0.0.1 until the test ends.
func Start(t testing.TB, z Zone) *Server {
	t.Helper()
	s := &Server{rrs: map[string][]dns.RR{}, status: map[string]int{}, silent: map[string]bool{}, queries: map[string]int{}}
	for _, r := range z.Records {
		rr, err := dns.NewRR(r)
		if err != nil {
			t.Fatalf("dnstest: record %q: %v", r, err)
		}
		name := strings.ToLower(rr.Header().Name)
		s.rrs[name] = append(s.rrs[name], rr)
	}
	for _, n := range z.ServFail {
		s.status[dns.Fqdn(strings.ToLower(n))] = dns.RcodeServerFailure
	}
	for _, n := range z.Silent {
		s.silent[dns.Fqdn(strings.ToLower(n))] = true
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	s.Addr = pc.LocalAddr().String()
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve)}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ActivateAndServe()
	}()
	<-started
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
	})
	return s
}

// Queries is how many queries for name (any case, with or without the
// trailing dot) of type qtype ("MX", "A", "AAAA") the server got.
func (s *Server) Queries(name, qtype string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[dns.Fqdn(strings.ToLower(name))+" "+qtype]
}

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		_ = w.WriteMsg(m.SetRcode(req, dns.RcodeFormatError))
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	s.mu.Lock()
	s.queries[name+" "+dns.TypeToString[q.Qtype]]++
	rrs, known := s.rrs[name]
	rcode, failing := s.status[name]
	silent := s.silent[name]
	s.mu.Unlock()
	if silent {
		return
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	switch {
	case failing:
		m.Rcode = rcode
	case !known:
		m.Rcode = dns.RcodeNameError
	default:
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, rr)
			}
		}
	}
	_ = w.WriteMsg(m)
}
