package ctlserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	"gomta/mta/control"
	"gomta/queue"
)

// maxHeaders bounds the header section queue.show sends: a header section
// that long is already abuse, and the rest is left out, not refused.
const maxHeaders = 256 << 10

// status answers "status".
func (s *Server) status(ctx context.Context, hosts []Host) *control.Response {
	st := &control.Status{Version: control.Version(), Started: s.started.UTC(),
		UptimeSecs: time.Since(s.started).Seconds(), ConfigFile: s.opt.ConfigFile, ConfigLoaded: s.opt.Loaded().UTC()}
	now := time.Now()
	for _, h := range hosts {
		qs, err := h.Queue.Stats(ctx)
		if err != nil {
			return refuse("host %s: %v", h.Name, err)
		}
		hs := control.HostStatus{Name: h.Name, Listeners: h.Listeners, Queue: control.QueueStatus{
			Messages: qs.Messages, Deferred: qs.Deferred, Active: qs.Active, Held: qs.Held}}
		if !qs.Oldest.IsZero() {
			hs.Queue.OldestArrival = qs.Oldest.UTC()
			hs.Queue.OldestAgeSecs = now.Sub(qs.Oldest).Seconds()
		}
		if h.Sessions != nil {
			hs.SMTPSessions, hs.POP3Sessions = h.Sessions()
		}
		st.Hosts = append(st.Hosts, hs)
	}
	return &control.Response{OK: true, Status: st}
}

// list answers "queue.list": every host's messages, host by host.
func list(ctx context.Context, hosts []Host) *control.Response {
	resp := &control.Response{OK: true}
	for _, h := range hosts {
		ms, err := h.Queue.List(ctx)
		if err != nil {
			return refuse("host %s: %v", h.Name, err)
		}
		for _, m := range ms {
			resp.Messages = append(resp.Messages, message(h.Name, m))
		}
	}
	return resp
}

// show answers "queue.show" for the one id of req, from whichever host
// holds it.
func show(ctx context.Context, hosts []Host, req control.Request) *control.Response {
	if len(req.IDs) != 1 {
		return refuse("queue.show takes one message id")
	}
	id := req.IDs[0]
	for _, h := range hosts {
		m, err := h.Queue.Show(ctx, id)
		if errors.Is(err, queue.ErrUnknown) {
			continue
		}
		if err != nil {
			return refuse("host %s: %v", h.Name, err)
		}
		resp := &control.Response{OK: true, Messages: []control.Message{message(h.Name, m)}}
		if err := readBody(h.Queue, id, req.Body, resp); err != nil {
			return refuse("%s: %v", id, err)
		}
		return resp
	}
	return refuse("%s: %v", id, queue.ErrUnknown)
}

// readBody puts the message's header section (and with body, the whole
// message) into resp.
func readBody(q queue.Spool, id string, body bool, resp *control.Response) error {
	f, err := q.OpenBody(id)
	if err != nil {
		return err
	}
	defer f.Close()
	if body {
		b, err := io.ReadAll(f)
		resp.Body = string(b)
		if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
			b = b[:i+2]
		}
		resp.Headers = string(b)
		return err
	}
	r := bufio.NewReader(io.LimitReader(f, maxHeaders))
	var hdr bytes.Buffer
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimRight(line, "\r\n")) == 0 || err != nil {
			hdr.Write(line)
			break
		}
		hdr.Write(line)
	}
	resp.Headers = string(bytes.TrimRight(hdr.Bytes(), "\r\n")) + "\r\n"
	return nil
}

// act answers retry, hold, release and drop: each id's result from the
// host that holds it, or the unknown-id error when none does.
func act(ctx context.Context, hosts []Host, req control.Request) *control.Response {
	if len(req.IDs) == 0 && !(req.Cmd == control.CmdRetry && req.All) {
		return refuse("%s takes message ids", req.Cmd)
	}
	resp := &control.Response{OK: true}
	found := map[string]control.Result{}
	for _, h := range hosts {
		rs, err := do(ctx, h.Queue, req)
		if err != nil {
			return refuse("host %s: %v", h.Name, err)
		}
		for _, r := range rs {
			if errors.Is(r.Err, queue.ErrUnknown) {
				continue
			}
			res := control.Result{MsgID: r.ID, Host: h.Name, Done: r.Done}
			if r.Err != nil {
				res.Error = r.Err.Error()
			}
			if req.All {
				resp.Results = append(resp.Results, res)
			}
			found[r.ID] = res
		}
	}
	for _, id := range req.IDs {
		r, ok := found[id]
		if !ok {
			r = control.Result{MsgID: id, Error: queue.ErrUnknown.Error()}
		}
		resp.Results = append(resp.Results, r)
	}
	return resp
}

// do runs req's action on one queue.
func do(ctx context.Context, q queue.Spool, req control.Request) ([]queue.ActionResult, error) {
	switch req.Cmd {
	case control.CmdRetry:
		return q.Retry(ctx, req.IDs, req.All)
	case control.CmdHold:
		return q.Hold(ctx, req.IDs)
	case control.CmdRelease:
		return q.Release(ctx, req.IDs)
	default:
		return q.Drop(ctx, req.IDs, req.Bounce)
	}
}

// message is the wire form of one queued message of host.
func message(host string, m queue.MessageInfo) control.Message {
	out := control.Message{MsgID: m.ID, Host: host, From: m.From, Size: m.Size, ArrivalTime: m.Arrival.UTC(),
		Attempts: m.Attempts, NextAttempt: m.Next.UTC(), Held: m.Held, Active: m.Busy,
		Recipients: make([]control.Recipient, 0, len(m.Recipients))}
	for _, r := range m.Recipients {
		out.Recipients = append(out.Recipients, control.Recipient{Address: r.Address, Status: r.Status,
			LastCode: r.LastCode, LastEnhanced: r.LastEnhanced, LastReply: r.LastReply})
	}
	for _, t := range m.History {
		a := control.Attempt{Time: t.Time, Attempt: t.Attempt}
		for _, r := range t.Results {
			a.Results = append(a.Results, control.AttemptResult{Rcpt: r.Rcpt, Result: r.Result, Code: r.Code,
				Enhanced: r.Enhanced, Reply: r.Reply, Remote: r.Remote})
		}
		out.History = append(out.History, a)
	}
	return out
}
