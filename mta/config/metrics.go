package config

import (
	"fmt"
	"net"
	"net/netip"
)

// CheckMetricsListen checks an address to serve metrics on ([gomta]
// metrics_listen, mtad -metrics). It must be "IP:PORT" with an IP literal:
// no name is resolved, since a name may stand for any address. A loopback
// address is the safe choice, and a specific address of the machine is
// taken as chosen. An empty host (":9100") would listen on every interface
// by accident, so it is refused; a wildcard must be written out as
// "0.0.0.0:PORT" or "[::]:PORT". /metrics has no authentication: beyond
// loopback, a firewall must keep it from the world.
func CheckMetricsListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want IP:PORT (e.g. 127.0.0.1:9100): %v", addr, err)
	}
	if _, err := parsePort(port); err != nil {
		return fmt.Errorf("%q: %v", addr, err)
	}
	if host == "" {
		return fmt.Errorf("%q listens on every address: write 127.0.0.1:%s for loopback, or 0.0.0.0:%s / [::]:%s if every address is meant", addr, port, port, port)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return fmt.Errorf("%q: want an IP address, not a name (no name is resolved), e.g. 127.0.0.1:%s", addr, port)
	}
	return nil
}

// MetricsBeyondLoopback reports whether a checked metrics address can be
// reached from other machines (anything but a loopback address).
func MetricsBeyondLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err != nil || !ip.IsLoopback()
}
