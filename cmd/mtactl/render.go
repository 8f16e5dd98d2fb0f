package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"gomta/mta/control"
)

// render prints a successful response and returns the exit status: 1 when
// an action failed for some id.
func render(req control.Request, o *opts, resp *control.Response, stdout, stderr io.Writer) int {
	switch req.Cmd {
	case control.CmdStatus:
		if o.json {
			return writeJSON(stdout, resp.Status)
		}
		printStatus(stdout, resp.Status, time.Now())
	case control.CmdList:
		if o.json {
			for _, m := range resp.Messages {
				if writeJSON(stdout, m) != exitOK {
					return exitRefused
				}
			}
			return exitOK
		}
		printList(stdout, resp.Messages, time.Now())
	case control.CmdShow:
		printShow(stdout, resp, time.Now())
	case control.CmdReload:
		if len(resp.Changes) == 0 {
			fmt.Fprintln(stdout, "reloaded: nothing changed")
		}
		for _, c := range resp.Changes {
			fmt.Fprintln(stdout, c)
		}
	default:
		return printResults(stdout, stderr, resp.Results)
	}
	return exitOK
}

// writeJSON writes v as one line of JSON.
func writeJSON(w io.Writer, v any) int {
	if err := json.NewEncoder(w).Encode(v); err != nil {
		return exitRefused
	}
	return exitOK
}

// printResults prints one line per id: what was done, or the error (on
// stderr); 1 when any id failed.
func printResults(stdout, stderr io.Writer, rs []control.Result) int {
	code := exitOK
	for _, r := range rs {
		if r.Error != "" {
			fmt.Fprintf(stderr, "mtactl: %s: %s\n", r.MsgID, r.Error)
			code = exitRefused
			continue
		}
		fmt.Fprintf(stdout, "%s: %s (%s)\n", r.MsgID, r.Done, r.Host)
	}
	return code
}

func printStatus(w io.Writer, st *control.Status, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "version\t%s\n", st.Version)
	fmt.Fprintf(tw, "uptime\t%s (since %s)\n", roundAge(time.Duration(st.UptimeSecs*float64(time.Second))), st.Started.Format(time.RFC3339))
	fmt.Fprintf(tw, "config\t%s (loaded %s)\n", st.ConfigFile, st.ConfigLoaded.Format(time.RFC3339))
	for _, h := range st.Hosts {
		fmt.Fprintf(tw, "host\t%s\n", h.Name)
		kinds := make([]string, 0, len(h.Listeners))
		for k := range h.Listeners {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		var ls []string
		for _, k := range kinds {
			ls = append(ls, k+" "+h.Listeners[k])
		}
		fmt.Fprintf(tw, "  listeners\t%s\n", strings.Join(ls, ", "))
		fmt.Fprintf(tw, "  sessions\tsmtp %d, pop3 %d\n", h.SMTPSessions, h.POP3Sessions)
		q := h.Queue
		oldest := "none"
		if q.Messages > 0 {
			oldest = roundAge(now.Sub(q.OldestArrival))
		}
		fmt.Fprintf(tw, "  queue\t%d messages: %d deferred, %d active, %d held; oldest %s\n",
			q.Messages, q.Deferred, q.Active, q.Held, oldest)
	}
	tw.Flush()
}

// state is a message's state in one word.
func state(m control.Message) string {
	switch {
	case m.Active:
		return "active"
	case m.Held:
		return "held"
	}
	return "deferred"
}

func printList(w io.Writer, ms []control.Message, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MSG_ID\tHOST\tAGE\tSIZE\tTRIES\tNEXT\tSTATE\tFROM\tRECIPIENTS\tLAST REPLY")
	var size int64
	rcpts, counts := 0, map[string]int{}
	for _, m := range ms {
		size += m.Size
		rcpts += len(m.Recipients)
		counts[state(m)]++
		next := "-"
		if !m.Held && !m.Active {
			next = until(m.NextAttempt, now)
		}
		var addrs []string
		last := ""
		for _, r := range m.Recipients {
			addrs = append(addrs, r.Address)
			if last == "" && r.LastReply != "" {
				last = reply(r.LastCode, r.LastEnhanced, r.LastReply)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t<%s>\t%s\t%s\n", m.MsgID, m.Host, roundAge(now.Sub(m.ArrivalTime)),
			m.Size, m.Attempts, next, state(m), m.From, strings.Join(addrs, ","), clip(last, 60))
	}
	tw.Flush()
	fmt.Fprintf(w, "-- %d messages, %d octets, %d recipients: %d deferred, %d active, %d held\n",
		len(ms), size, rcpts, counts["deferred"], counts["active"], counts["held"])
}

func printShow(w io.Writer, resp *control.Response, now time.Time) {
	m := resp.Messages[0]
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "msg_id\t%s\nhost\t%s\nfrom\t<%s>\nsize\t%d\n", m.MsgID, m.Host, m.From, m.Size)
	fmt.Fprintf(tw, "arrival\t%s (%s ago)\n", m.ArrivalTime.Format(time.RFC3339), roundAge(now.Sub(m.ArrivalTime)))
	fmt.Fprintf(tw, "attempts\t%d\n", m.Attempts)
	fmt.Fprintf(tw, "next attempt\t%s (%s)\n", m.NextAttempt.Format(time.RFC3339), until(m.NextAttempt, now))
	fmt.Fprintf(tw, "state\t%s\n", state(m))
	tw.Flush()
	fmt.Fprintln(w, "recipients:")
	for _, r := range m.Recipients {
		fmt.Fprintf(w, "  %s  %s  %s\n", r.Address, r.Status, reply(r.LastCode, r.LastEnhanced, r.LastReply))
	}
	fmt.Fprintln(w, "attempts:")
	for _, a := range m.History {
		for _, r := range a.Results {
			line := fmt.Sprintf("  %s  #%d  %s  %s  %s", a.Time.Format(time.RFC3339), a.Attempt, r.Rcpt, r.Result,
				reply(r.Code, r.Enhanced, r.Reply))
			if r.Remote != "" {
				line += " (" + r.Remote + ")"
			}
			fmt.Fprintln(w, strings.TrimRight(line, " "))
		}
	}
	fmt.Fprintln(w, "headers:")
	fmt.Fprint(w, indent(resp.Headers))
	if resp.Body != "" {
		fmt.Fprintln(w, "message:")
		fmt.Fprint(w, strings.ReplaceAll(resp.Body, "\r\n", "\n"))
	}
}

func indent(s string) string {
	s = strings.TrimRight(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	return "  " + strings.ReplaceAll(s, "\n", "\n  ") + "\n"
}

// reply writes a last reply as an SMTP reply reads: "451 4.4.1 text".
func reply(code int, enhanced, text string) string {
	var parts []string
	if code != 0 {
		parts = append(parts, fmt.Sprint(code))
	}
	if enhanced != "" {
		parts = append(parts, enhanced)
	}
	if text != "" {
		parts = append(parts, text)
	}
	return strings.Join(parts, " ")
}

// until says when t is, relative to now: "in 4m", "now".
func until(t, now time.Time) string {
	if !t.After(now) {
		return "now"
	}
	return "in " + roundAge(t.Sub(now))
}

// roundAge writes d to the second (to the minute past an hour).
func roundAge(d time.Duration) string {
	if d >= time.Hour {
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Second).String()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
