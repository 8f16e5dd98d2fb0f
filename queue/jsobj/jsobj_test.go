package jsobj

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"gomta/mta/cluster/natstest"
	"gomta/mta/mtatest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestReadsWholeObjectAndFreesConsumer puts objects of several sizes in
// small chunks and reads each back byte for byte through small reads; the
// reading consumer is gone after Close.
func TestReadsWholeObjectAndFreesConsumer(t *testing.T) {
	s := natstest.Start(t, 64<<10)
	ctx := ctxT(t)
	obs, err := s.JS.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "B"})
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{0, 1, 16 << 10, 1<<20 + 7} {
		data := make([]byte, size)
		rand.Read(data)
		if _, err := obs.Put(ctx, jetstream.ObjectMeta{Name: "o", Opts: &jetstream.ObjectMetaOptions{ChunkSize: 16 << 10}},
			bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		r, err := Open(ctx, s.JS, obs, "B", "o")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(io.LimitReader(struct{ io.Reader }{r}, int64(size)+1))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("size %d: read %d octets, err %v; want the object back", size, len(got), err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		mtatest.Eventually(t, "no reading consumer left after Close", func() bool {
			st, err := s.JS.Stream(ctx, "OBJ_B")
			if err != nil {
				return false
			}
			info, err := st.Info(ctx)
			return err == nil && info.State.Consumers == 0
		})
	}
}

// TestDigestChecked reads an object whose recorded digest is not its
// content's: the read ends with ErrDigest, never a clean EOF.
func TestDigestChecked(t *testing.T) {
	s := natstest.Start(t, 0)
	ctx := ctxT(t)
	obs, err := s.JS.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "B"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(ctx, "o", []byte("hello, world")); err != nil {
		t.Fatal(err)
	}
	info, _ := obs.GetInfo(ctx, "o")
	r := &reader{ctx: ctx, js: s.JS, stream: "OBJ_B", size: int64(info.Size), chunks: int(info.Chunks),
		digest: "SHA-256=bm90IHRoZSBkaWdlc3Q="}
	r.sum = newSum()
	r.cons, err = s.JS.OrderedConsumer(ctx, "OBJ_B", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"$O.B.C." + info.NUID}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadAll(r); !errors.Is(err, ErrDigest) {
		t.Fatalf("read of a mismatching object: %v, want ErrDigest", err)
	}
}
