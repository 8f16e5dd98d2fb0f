package jsbox

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
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

// ttl is how long a lease lives unless renewed: the lease bucket's TTL as
// last read, or LeaseTTL before the first read.
func (s *Store) ttl() time.Duration {
	if d := time.Duration(s.bucketTTL.Load()); d > 0 {
		return d
	}
	return s.leaseTTL
}

// readTTL reads the lease bucket's TTL. Every node provisions the bucket
// with its own lease_ttl and the last one wins: a node renewing at its own
// LeaseTTL/3 while the bucket expires keys sooner would lose every
// session's lease, so renewals follow the bucket's value (a mismatch is
// logged, once per change).
func (s *Store) readTTL(ctx context.Context) error {
	st, err := s.locks.Status(ctx)
	if err != nil {
		return fmt.Errorf("jsbox: lease bucket %s: %w", s.lockBucket, err)
	}
	d := st.TTL()
	if d <= 0 {
		d = s.leaseTTL // no TTL: leases never expire; renew as configured
	}
	if old := time.Duration(s.bucketTTL.Swap(int64(d))); old != d && d != s.leaseTTL {
		s.log.Warn("lease bucket TTL differs from lease_ttl", zap.String("node", s.node),
			zap.Duration("lease_ttl", s.leaseTTL), zap.Duration("bucket_ttl", d))
	}
	return nil
}

// watchTTL reads the lease bucket's TTL every LeaseTTL/3 until ctx ends,
// so that another node provisioning a shorter one is followed within a
// renewal period.
func (s *Store) watchTTL(ctx context.Context) {
	t := time.NewTicker(s.leaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, s.leaseTTL/3)
		err := s.readTTL(rctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			s.log.Debug("lease bucket TTL not read", zap.String("node", s.node), zap.Error(err))
		}
	}
}
