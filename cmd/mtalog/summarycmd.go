package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"
)

// summaryOpts are summary's flags.
type summaryOpts struct {
	JSON bool
	HTML string // the HTML report's path, "" for none
	Top  int
	Win  window
}

func runSummary(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("summary", stderr)
	var o summaryOpts
	var wf windowFlags
	fs.BoolVar(&o.JSON, "json", false, "one JSON document instead of text")
	fs.StringVar(&o.HTML, "html", "", "also write a self-contained HTML report to `FILE`")
	fs.IntVar(&o.Top, "top", 10, "rows of the top senders and recipients")
	wf.register(fs)
	files, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	if o.Win, err = wf.window(time.Now()); err != nil {
		return usageError(stderr, "summary", err)
	}
	if err := checkFiles(files); err != nil {
		return usageError(stderr, "summary", err)
	}
	s, err := summarize(files, stdin, o.Win, o.Top)
	if err != nil {
		fmt.Fprintf(stderr, "mtalog summary: %v\n", err)
		return exitUsage
	}
	reportSkipped(stderr, s.Skipped)
	if o.HTML != "" {
		if err := writeHTMLFile(o.HTML, s); err != nil {
			fmt.Fprintf(stderr, "mtalog summary: %v\n", err)
			return exitUsage
		}
	}
	if o.JSON {
		err = writeSummaryJSON(stdout, s)
	} else {
		err = writeSummaryText(stdout, s)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mtalog summary: %v\n", err)
		return exitUsage
	}
	return exitOK
}

// summarize reads files (merged by time, within win) into a Summary.
func summarize(files []string, stdin io.Reader, win window, top int) (Summary, error) {
	r, err := openAll(files, stdin, win, summaryFields)
	if err != nil {
		return Summary{}, err
	}
	defer r.Close()
	m := newSummer()
	for l := r.Next(); l != nil; l = r.Next() {
		m.add(l)
	}
	if err := r.Err(); err != nil {
		return Summary{}, err
	}
	return m.result(top, r.Skipped), nil
}

func writeSummaryJSON(w io.Writer, s Summary) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

func writeHTMLFile(path string, s Summary) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writeHTML(f, s); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

// writeSummaryText writes s as pflogsumm-like text tables.
func writeSummaryText(w io.Writer, s Summary) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format, a...) }
	if !s.First.IsZero() {
		p("Log from %s to %s (%d lines, %d skipped)\n\n", s.First.Format(time.DateTime), s.Last.Format(time.DateTime), s.Lines, s.Skipped)
	}
	p("Grand totals\n")
	p("  %d\treceived\t(%s)\n", s.Received, humanBytes(s.ReceivedBytes))
	p("  %d\tdelivered locally\t\n  %d\trelayed\t\n  %d\tdeferred\t(relay attempts)\n", s.DeliveredLocal, s.Relayed, s.Deferred)
	p("  %d\tbounced\t(recipients)\n  %d\tbounces sent\t\n  %d\tdelay notices sent\t\n  %d\trefused\t(SMTP commands)\n",
		s.Bounced, s.BouncesSent, s.DelayNotices, s.Refused)
	d := s.Delay
	p("\nDelivery delay from acceptance (%d recipients)\n  p50 %s\tp90 %s\tp99 %s\tmax %s\n",
		d.Count, msText(d.P50), msText(d.P90), msText(d.P99), msText(d.Max))
	section(tw, "Per host", "host\treceived\tdelivered\trelayed\tdeferred\tbounced", len(s.Hosts), func(i int) string {
		h := s.Hosts[i]
		return fmt.Sprintf("%s\t%d\t%d\t%d\t%d\t%d", h.Host, h.Received, h.Delivered, h.Relayed, h.Deferred, h.Bounced)
	})
	section(tw, "Per domain", "domain\treceived from\tbytes\tdelivered to\tdeferred\tbounced", len(s.Domains), func(i int) string {
		d := s.Domains[i]
		return fmt.Sprintf("%s\t%d\t%s\t%d\t%d\t%d", d.Domain, d.Received, humanBytes(d.ReceivedBytes), d.Delivered, d.Deferred, d.Bounced)
	})
	section(tw, "Top senders", "messages\tsender", len(s.Senders), func(i int) string {
		return fmt.Sprintf("%d\t%s", s.Senders[i].Count, s.Senders[i].Key)
	})
	section(tw, "Top recipients", "messages\trecipient", len(s.Recipients), func(i int) string {
		return fmt.Sprintf("%d\t%s", s.Recipients[i].Count, s.Recipients[i].Key)
	})
	section(tw, "Refused commands", "count\tcode\tenhanced\treason", len(s.RefusedBy), func(i int) string {
		r := s.RefusedBy[i]
		return fmt.Sprintf("%d\t%d\t%s\t%s", r.Count, r.Code, r.Enhanced, r.Reason)
	})
	section(tw, "Messages per hour (UTC)", "hour\treceived\tdelivered", len(s.Hourly), func(i int) string {
		h := s.Hourly[i]
		return fmt.Sprintf("%s\t%d\t%d", h.Hour.Format("2006-01-02 15:00"), h.Received, h.Delivered)
	})
	section(tw, "Clients", "address\tSMTP sessions\tPOP3 sessions\tauth failures", len(s.Clients), func(i int) string {
		c := s.Clients[i]
		return fmt.Sprintf("%s\t%d\t%d\t%d", c.Addr, c.SMTP, c.POP3, c.AuthFailures)
	})
	return tw.Flush()
}

// section writes one titled table of n rows, or nothing when n is 0.
func section(w io.Writer, title, header string, n int, row func(int) string) {
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s\n  %s\n", title, header)
	for i := range n {
		fmt.Fprintf(w, "  %s\n", row(i))
	}
}

// msText renders milliseconds for people.
func msText(ms float64) string {
	return (time.Duration(ms * float64(time.Millisecond))).Round(time.Millisecond).String()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
