package mta

import (
	"bytes"
	"context"

	"go.uber.org/zap"

	"gomta/queue"
)

// headSize is how much of a message's start is kept to find the upstream
// host's Received header: enough for our own header and the next one.
const headSize = 4096

// tracingDraft is a queue draft that remembers the start of the message, so
// that at commit the host can log the upstream_msg_id that the previous hop
// put in its Received header ("... by host (gomta) with ESMTP id X ..."):
// one message can then be followed across hosts by its ids. At commit it
// also puts the recipients in their canonical form, once each (envelope).
type tracingDraft struct {
	*queue.Draft
	envelope func(rcpts []string) []string
	log      *zap.Logger
	head     []byte
}

func (d *tracingDraft) Write(p []byte) (int, error) {
	if room := headSize - len(d.head); room > 0 {
		d.head = append(d.head, p[:min(room, len(p))]...)
	}
	return d.Draft.Write(p)
}

func (d *tracingDraft) Commit(ctx context.Context, from string, rcpts []string) error {
	if err := d.Draft.Commit(ctx, from, d.envelope(rcpts)); err != nil {
		return err
	}
	if up := upstreamID(d.head); up != "" {
		d.log.Info("message from upstream", zap.String("msg_id", d.ID()), zap.String("upstream_msg_id", up))
	}
	return nil
}

// upstreamID returns the id of the second Received header of head (the
// first is this host's own), or "".
func upstreamID(head []byte) string {
	end := bytes.Index(head, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(head)
	}
	h := head[:end]
	first := bytes.Index(h, []byte("Received:"))
	if first < 0 {
		return ""
	}
	rest := h[first+len("Received:"):]
	next := bytes.Index(rest, []byte("\r\nReceived:"))
	if next < 0 {
		return ""
	}
	v := rest[next+len("\r\nReceived:"):]
	// The header's value runs to the next line that is not a continuation.
	for i := 0; i+2 < len(v); i++ {
		if v[i] == '\r' && v[i+1] == '\n' && v[i+2] != ' ' && v[i+2] != '\t' {
			v = v[:i]
			break
		}
	}
	if semi := bytes.IndexByte(v, ';'); semi >= 0 {
		v = v[:semi]
	}
	f := bytes.Fields(v)
	for i := 0; i+1 < len(f); i++ {
		if bytes.EqualFold(f[i], []byte("id")) {
			id := bytes.Trim(f[i+1], "<>")
			if len(id) > 0 && len(id) <= 128 {
				return string(id)
			}
		}
	}
	return ""
}
