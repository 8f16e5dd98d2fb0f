package mta

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// selfAddrs returns the relay's test of whether a target address (host:port)
// is one of the listeners lns, so that the relay never connects to its own
// host (a mail loop, ARCHITECTURE.md contract 7). A listener on an unspecified
// address (0.0.0.0, ::) is reached through any address of this machine; a
// target named by a host name is taken as itself only for "localhost" (no
// DNS query is made here).
func selfAddrs(lns []net.Listener) func(addr string) bool {
	type ep struct {
		ip   netip.Addr
		port uint16
	}
	var eps []ep
	for _, l := range lns {
		if l == nil {
			continue
		}
		if ap, err := netip.ParseAddrPort(l.Addr().String()); err == nil {
			eps = append(eps, ep{ap.Addr().Unmap(), ap.Port()})
		}
	}
	return func(addr string) bool {
		host, ps, err := net.SplitHostPort(addr)
		if err != nil {
			return false
		}
		port, err := strconv.ParseUint(ps, 10, 16)
		if err != nil {
			return false
		}
		var ip netip.Addr
		if strings.EqualFold(host, "localhost") {
			ip = netip.IPv4Unspecified() // any loopback address: matched below
		} else if ip, err = netip.ParseAddr(host); err != nil {
			return false
		}
		ip = ip.Unmap()
		for _, e := range eps {
			if e.port != uint16(port) {
				continue
			}
			switch {
			case ip.IsUnspecified() && (e.ip.IsLoopback() || e.ip.IsUnspecified()):
				return true // "localhost"
			case e.ip == ip:
				return true
			case e.ip.IsUnspecified() && (ip.IsLoopback() || localIP(ip)):
				return true
			}
		}
		return false
	}
}

// localIP reports whether ip is an address of one of this machine's interfaces.
func localIP(ip netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Unmap() == ip {
			return true
		}
	}
	return false
}
