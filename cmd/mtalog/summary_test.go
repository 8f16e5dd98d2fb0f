package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestSummaryHandcrafted checks summary -json against the handcrafted log,
// whose every count is known: six messages accepted (M1, G1, F1, M2, G2,
// M3), six local deliveries (G1, B1, F1, D2, G2, M3), two relayed, two
// deferrals, one bounce and one delay notice, two refused commands.
func TestSummaryHandcrafted(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if code := run(append([]string{"summary", "-json"}, handcrafted...), nil, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var s Summary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	totals := []struct {
		name      string
		got, want int64
	}{
		{"lines", s.Lines, 50}, {"skipped", s.Skipped, 3},
		{"received", s.Received, 6}, {"received bytes", s.ReceivedBytes, 458 + 617 + 700 + 512 + 671 + 300},
		{"delivered locally", s.DeliveredLocal, 6}, {"relayed", s.Relayed, 2}, {"deferred", s.Deferred, 2},
		{"bounced", s.Bounced, 1}, {"bounces sent", s.BouncesSent, 1}, {"delay notices", s.DelayNotices, 1},
		{"refused", s.Refused, 2}, {"delays", s.Delay.Count, 6},
	}
	for _, c := range totals {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	wantRefused := []Refusal{{550, "5.1.1", "no such user here", 1}, {554, "5.7.1", "relay denied", 1}}
	if !reflect.DeepEqual(s.RefusedBy, wantRefused) {
		t.Errorf("refused by %+v, want %+v", s.RefusedBy, wantRefused)
	}
	// Delays: G1, F1, G2 and M3 10 ms; M1's relay 36 ms; M2's 15 min 33 ms.
	if s.Delay.Max != 900033 || s.Delay.P50 < 9.8 || s.Delay.P50 > 10.2 || s.Delay.P99 != 900033 {
		t.Errorf("delay %+v: want p50 10 ms (±2 %%), p99 and max 900033 ms", s.Delay)
	}
	wantDomains := []DomainRow{
		{Domain: "mail.sustech.edu.cn", Received: 6, ReceivedBytes: 3258, Delivered: 3},
		{Domain: "gmail.com", Delivered: 5, Deferred: 2, Bounced: 1},
	}
	if !reflect.DeepEqual(s.Domains, wantDomains) {
		t.Errorf("domains %+v\nwant %+v", s.Domains, wantDomains)
	}
	wantSenders := []Count{{"usr1@mail.sustech.edu.cn", 4}, {"usr2@mail.sustech.edu.cn", 2}}
	wantRcpts := []Count{{"usr@gmail.com", 5}, {"nobody@gmail.com", 1}, {"usr2@mail.sustech.edu.cn", 1}}
	if !reflect.DeepEqual(s.Senders, wantSenders) || !reflect.DeepEqual(s.Recipients, wantRcpts) {
		t.Errorf("senders %v, recipients %v", s.Senders, s.Recipients)
	}
	hour := func(h int) time.Time { return time.Date(2026, 12, 6, h, 0, 0, 0, time.UTC) }
	wantHours := []HourRow{{hour(9), 3, 4}, {hour(10), 2, 3}, {hour(11), 1, 1}}
	if !reflect.DeepEqual(s.Hourly, wantHours) {
		t.Errorf("hourly %+v, want %+v", s.Hourly, wantHours)
	}
	wantClients := []ClientRow{{"198.51.100.7", 1, 1, 2}, {"127.0.0.1", 6, 1, 0}, {"203.0.113.9", 1, 0, 0}}
	if !reflect.DeepEqual(s.Clients, wantClients) {
		t.Errorf("clients %+v, want %+v", s.Clients, wantClients)
	}
	wantHosts := []HostRow{{"exmail.qq.com", 3, 3, 2, 2, 1}, {"gmail.com", 3, 3, 0, 0, 0}}
	if !reflect.DeepEqual(s.Hosts, wantHosts) {
		t.Errorf("hosts %+v, want %+v", s.Hosts, wantHosts)
	}
}

// TestSummaryGenerated checks the summary of a generated log against what
// the generator wrote.
func TestSummaryGenerated(t *testing.T) {
	t.Parallel()
	path, lines, msgs := writeGenLog(t, t.TempDir(), 20000)
	s, err := summarize([]string{path}, nil, window{}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if s.Lines != int64(lines) || s.Received != int64(msgs) || s.Skipped != 0 {
		t.Errorf("lines %d received %d skipped %d; want %d, %d, 0", s.Lines, s.Received, s.Skipped, lines, msgs)
	}
	if delivered := s.DeliveredLocal + s.Relayed + s.Bounced; delivered != int64(msgs) {
		t.Errorf("delivered %d + relayed %d + bounced %d = %d, want every message (%d)", s.DeliveredLocal, s.Relayed, s.Bounced, delivered, msgs)
	}
	var hourly int64
	for _, h := range s.Hourly {
		hourly += h.Received
	}
	if s.Delay.Count != s.DeliveredLocal+s.Relayed || len(s.Senders) != 3 || hourly != int64(msgs) {
		t.Errorf("delays %d, senders %d, received per hour %d", s.Delay.Count, len(s.Senders), hourly)
	}
}

// TestSummaryHTML writes the HTML report and checks that it is one
// well-formed XHTML document, self-contained, with its three charts.
func TestSummaryHTML(t *testing.T) {
	t.Parallel()
	page := filepath.Join(t.TempDir(), "report.html")
	var out, errb bytes.Buffer
	if code := run(append([]string{"summary", "-html", page}, handcrafted...), nil, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "Grand totals") {
		t.Errorf("text summary missing on stdout:\n%s", out.String())
	}
	raw, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(raw))
	var svgs, rects, tables int
	var texts []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			switch el.Name.Local {
			case "svg":
				svgs++
			case "rect":
				rects++
			case "table":
				tables++
			case "script", "link", "img", "iframe":
				t.Errorf("element %s: the page must be self-contained", el.Name.Local)
			}
			for _, a := range el.Attr {
				if a.Name.Local == "src" || a.Name.Local == "href" {
					t.Errorf("%s %s=%q: the page must be self-contained", el.Name.Local, a.Name.Local, a.Value)
				}
			}
		case xml.CharData:
			texts = append(texts, string(el))
		}
	}
	// Bars: 3 hours, 6 delay ranges, 2 domains.
	if svgs != 3 || rects != 3+6+2 || tables < 9 {
		t.Errorf("%d svg, %d rect, %d tables; want 3, 11, at least 9", svgs, rects, tables)
	}
	all := strings.Join(texts, "")
	for _, want := range []string{"Messages received per hour", "Delivery delay", "Top domains", "relay denied", "198.51.100.7", "usr1@mail.sustech.edu.cn"} {
		if !strings.Contains(all, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
