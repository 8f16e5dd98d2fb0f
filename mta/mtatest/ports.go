package mtatest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
)

// portSpan is how many ports below the ephemeral range FreePorts draws from.
const portSpan = 16384

var (
	portsMu sync.Mutex
	given   = map[int]bool{} // ports this process has handed out: never twice
)

// FreePorts returns n distinct TCP ports on 127.0.0.1 that nothing listens
// on, for a daemon to bind later.
//
// A port from listening on 127.0.0.1:0 is in the kernel's ephemeral range,
// where every outgoing connection also takes its local port: between the
// test closing the probe and the daemon binding, a client of another
// (parallel) test may take it, and the daemon fails with "address already
// in use". So the ports are drawn at random from just below the ephemeral
// range (ip_local_port_range), where the kernel never picks one by itself;
// each is probed by binding it, and no port is handed out twice in one
// process. Another process drawing the same port in the same instant is the
// remaining (small) risk.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	lo, hi := drawRange()
	portsMu.Lock()
	defer portsMu.Unlock()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 10*portSpan {
			t.Fatalf("mtatest: no free port in [%d, %d)", lo, hi)
		}
		p := lo + rand.IntN(hi-lo)
		if given[p] || !bindable(p) {
			continue
		}
		given[p] = true
		ports = append(ports, p)
	}
	return ports
}

// Addr is the loopback address of port.
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// bindable reports whether a listener can bind port on 127.0.0.1 now.
func bindable(port int) bool {
	l, err := net.Listen("tcp", Addr(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// drawRange is [lo, hi): the portSpan ports below the ephemeral range, or
// below 32768 (Linux's default) when the range cannot be read.
var drawRange = sync.OnceValues(func() (int, int) {
	hi := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var a, z int
		if _, err := fmt.Sscan(string(b), &a, &z); err == nil && a > 1024+1024 {
			hi = a
		}
	}
	return max(1024, hi-portSpan), hi
})
