package jsbox

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// takeLease creates the lease key, as kv.Create does, but decides "in use"
// only from the stream leader. kv.Create reads the key after a failed
// create to tell a live lease from a released one (a delete marker), and
// that read may be a direct get that a replica behind answers with the
// lease just released, giving a false [IN-USE]; the bucket's direct gets
// cannot be turned off for good while every node's CreateOrUpdate turns
// them on again.
func (s *Store) takeLease(ctx context.Context, key string, holder []byte) (uint64, error) {
	rev, err := s.locks.Update(ctx, key, holder, 0)
	if err == nil {
		return rev, nil
	}
	seq, released, lerr := s.leaseLast(ctx, key)
	switch {
	case lerr != nil:
		return 0, errors.Join(err, lerr)
	case seq == 0:
		// Gone since (expired): try once more from nothing.
		return s.locks.Update(ctx, key, holder, 0)
	case !released:
		return 0, jetstream.ErrKeyExists
	}
	return s.locks.Update(ctx, key, holder, seq)
}

// leaseLast asks the lease bucket's stream leader (the JetStream API, never
// a direct get) for the last record of key: its sequence (0: none) and
// whether it is a delete or purge marker.
func (s *Store) leaseLast(ctx context.Context, key string) (seq uint64, released bool, err error) {
	stream := "KV_" + s.lockBucket
	req, _ := json.Marshal(map[string]string{"last_by_subj": "$KV." + s.lockBucket + "." + key})
	msg, err := s.js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, req)
	if err != nil {
		return 0, false, fmt.Errorf("jsbox: lease %s: %w", key, err)
	}
	var resp struct {
		Message *struct {
			Seq  uint64 `json:"seq"`
			Hdrs string `json:"hdrs"`
		} `json:"message"`
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return 0, false, fmt.Errorf("jsbox: lease %s: %w", key, err)
	}
	if resp.Error != nil {
		if resp.Error.Code == 404 {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("jsbox: lease %s: %s", key, resp.Error.Description)
	}
	if resp.Message == nil {
		return 0, false, fmt.Errorf("jsbox: lease %s: empty answer", key)
	}
	hdrs, _ := base64.StdEncoding.DecodeString(resp.Message.Hdrs)
	released = bytes.Contains(hdrs, []byte("KV-Operation: DEL")) || bytes.Contains(hdrs, []byte("KV-Operation: PURGE"))
	return resp.Message.Seq, released, nil
}
