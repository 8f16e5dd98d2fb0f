package main

import (
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"gomta/session/pop3"
	"gomta/session/pop3/pop3test"
)

func TestIdleHeld(t *testing.T) {
	t.Parallel()
	saddr, l := startSMTP(t, &sinkBackend{})
	paddr := pop3test.Start(t, pop3.Config{}, pop3test.New())
	for _, tc := range []struct{ proto, addr string }{{"smtp", saddr}, {"pop3", paddr}} {
		var rep idleReport
		code, stderr := runJSON(t, &rep, "idle", "-proto", tc.proto, "-addr", tc.addr, "-c", "20", "-ramp", "5",
			"-duration", "100ms", "-pid", strconv.Itoa(os.Getpid()))
		if code != exitOK || rep.Held != 20 || rep.Refused != 0 || rep.Dropped != 0 || rep.Requested != 20 {
			t.Errorf("%s: exit %d report %+v; %s", tc.proto, code, rep, stderr)
		}
		// VmHWM is kept lazily by the kernel and may read a little below an
		// earlier VmRSS sample, so it is only checked to be there.
		if rep.RSS == nil || rep.RSS.Before <= 0 || rep.RSS.Held <= 0 || rep.RSS.HWM <= 0 || rep.RSS.PeakSample < rep.RSS.Held {
			t.Errorf("%s: rss %+v", tc.proto, rep.RSS)
		}
		if !containsAll(stepNames(rep.Latency), "greeting") {
			t.Errorf("%s: steps %v", tc.proto, stepNames(rep.Latency))
		}
	}
	if n := l.n.Load(); n != 20 {
		t.Errorf("smtp server accepted %d connections, want 20", n)
	}
}

// fakeServer greets each connection with greeting, then closes it after
// hold (0 = keeps it until the test ends).
func fakeServer(t *testing.T, greeting string, hold time.Duration) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.Write([]byte(greeting))
				if hold == 0 {
					<-done
					return
				}
				select {
				case <-time.After(hold):
				case <-done:
				}
			})
		}
	})
	t.Cleanup(func() {
		close(done)
		l.Close()
		wg.Wait()
	})
	return l.Addr().String()
}

func TestIdleRefusedAndDropped(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, addr             string
		held, refused, dropped int64
		errKey                 string
	}{
		{"port closed", closedPort(t), 0, 6, 0, "refused"},
		{"greeting 554", fakeServer(t, "554 5.3.2 go away\r\n", 0), 0, 6, 0, "554"},
		{"closed while held", fakeServer(t, "220 hi\r\n", 20*time.Millisecond), 0, 0, 6, ""},
	}
	for _, tc := range cases {
		var rep idleReport
		code, stderr := runJSON(t, &rep, "idle", "-addr", tc.addr, "-c", "6", "-duration", "200ms")
		if code != exitErrors || rep.Held != tc.held || rep.Refused != tc.refused || rep.Dropped != tc.dropped ||
			tc.errKey != "" && errCount(rep.Errors, tc.errKey) != tc.refused {
			t.Errorf("%s: exit %d report %+v; %s", tc.name, code, rep, stderr)
		}
	}
}
