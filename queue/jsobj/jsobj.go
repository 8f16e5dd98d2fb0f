// Package jsobj reads a JetStream object store object with bounded memory.
// The library's ObjectStore.Get pushes every chunk as fast as the server
// can send it through an ordered push consumer into a pipe: a reader slower
// than the server (a Maildir write, a POP3 client) has the rest of the
// object buffered in the client, 50 MiB for a 50 MiB message. Open reads
// the chunks with an ordered pull consumer instead, a few at a time, as the
// caller reads, and checks the object's SHA-256 at its end. Both cluster
// backends (queue/jsq, delivery/mailbox/jsbox) use it.
package jsobj

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	batch    = 4                // chunks asked for at once
	fetchMax = 10 * time.Second // longest wait for one batch
	// inactive is how long the server keeps the reading consumer if Close
	// could not delete it (a reader dropped without Close, a lost node).
	inactive = time.Minute
)

// ErrDigest is returned at the end of an object whose octets do not match
// its recorded SHA-256 (or size).
var ErrDigest = errors.New("jsobj: object does not match its digest")

// Open opens object name of the object store obs (bucket named bucket) for
// reading. ctx bounds the whole read; Close releases the server's consumer.
func Open(ctx context.Context, js jetstream.JetStream, obs jetstream.ObjectStore, bucket, name string) (io.ReadCloser, error) {
	info, err := obs.GetInfo(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("jsobj: %s/%s: %w", bucket, name, err)
	}
	r := &reader{ctx: ctx, js: js, stream: "OBJ_" + bucket, size: int64(info.Size), chunks: int(info.Chunks),
		digest: info.Digest, sum: newSum()}
	if info.Size == 0 {
		return r, nil
	}
	r.cons, err = js.OrderedConsumer(ctx, r.stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"$O." + bucket + ".C." + info.NUID}, InactiveThreshold: inactive})
	if err != nil {
		return nil, fmt.Errorf("jsobj: %s/%s: %w", bucket, name, err)
	}
	return r, nil
}

type reader struct {
	ctx    context.Context
	js     jetstream.JetStream
	stream string
	cons   jetstream.Consumer
	size   int64  // octets the object has
	chunks int    // chunks it has, less those fetched
	read   int64  // octets handed out so far
	digest string // "SHA-256=<base64url>" as recorded
	sum    hash.Hash
	buf    bytes.Buffer // chunks fetched and not yet read
	err    error
}

func (r *reader) Read(p []byte) (int, error) {
	for r.buf.Len() == 0 && r.err == nil {
		if r.read >= r.size {
			r.err = r.finish()
			break
		}
		r.err = r.fetch()
	}
	if r.buf.Len() > 0 {
		n, _ := r.buf.Read(p)
		r.read += int64(n)
		return n, nil
	}
	return 0, r.err
}

// fetch appends the next few chunks to buf.
func (r *reader) fetch() error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.ctx, fetchMax)
	defer cancel()
	// Exactly what is left, up to batch: a fetch waits until it has as
	// many messages as it asked for.
	want := min(batch, r.chunks)
	if want <= 0 {
		return fmt.Errorf("%w: %d octets short of its size %d", ErrDigest, r.size-r.read, r.size)
	}
	b, err := r.cons.Fetch(want, jetstream.FetchContext(ctx))
	if err != nil {
		return fmt.Errorf("jsobj: read: %w", err)
	}
	got := 0
	for m := range b.Messages() {
		r.buf.Write(m.Data())
		r.sum.Write(m.Data())
		got++
		r.chunks--
	}
	if err := b.Error(); err != nil && got == 0 {
		return fmt.Errorf("jsobj: read: %w", err)
	}
	if got == 0 {
		return fmt.Errorf("jsobj: read: no chunk within %v", fetchMax)
	}
	if r.read+int64(r.buf.Len()) > r.size {
		return fmt.Errorf("%w: more octets than its size %d", ErrDigest, r.size)
	}
	return nil
}

// finish checks the digest once every octet was read.
func (r *reader) finish() error {
	want := "SHA-256=" + base64.URLEncoding.EncodeToString(r.sum.Sum(nil))
	if r.digest != "" && r.digest != want {
		return ErrDigest
	}
	return io.EOF
}

// Close deletes the reading consumer (the server would keep it for
// inactive otherwise).
func (r *reader) Close() error {
	if r.cons == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	name := r.cons.CachedInfo().Name
	r.cons = nil
	if err := r.js.DeleteConsumer(ctx, r.stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("jsobj: close: %w", err)
	}
	return nil
}

func newSum() hash.Hash { return sha256.New() }
