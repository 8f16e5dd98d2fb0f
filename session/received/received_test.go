package received

import (
	"strings"
	"testing"
)

func TestCount(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{"", 0},
		{"Subject: x\r\n\r\nReceived: no\r\n", 0},
		{"received: a\r\nRECEIVED : b\r\n c\r\nX-Received: d\r\n\r\nReceived: no\r\n", 2},
		{"Received: " + strings.Repeat("x", 100<<10) + "\r\nReceived: b\r\n\r\n", 2},
		{strings.Repeat("Received: x\r\n", 150) + "\r\n" + strings.Repeat("Received: y\r\n", 50), 150},
	} {
		got, err := Count(strings.NewReader(c.in), 1<<20)
		if err != nil || got != c.want {
			t.Errorf("Count(%.40q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	// The limit stops the scan.
	if got, _ := Count(strings.NewReader(strings.Repeat("Received: x\r\n", 100)), 13*10); got != 10 {
		t.Errorf("limited to 10 lines: %d", got)
	}
}
