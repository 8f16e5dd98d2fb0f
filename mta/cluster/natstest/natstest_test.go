package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestStartStoresAndReads publishes to a stream on the embedded server and
// reads the message back by sequence.
func TestStartStoresAndReads(t *testing.T) {
	s := Start(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	ack, err := s.JS.Publish(ctx, "t.x", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := s.JS.Stream(ctx, "T")
	m, err := st.GetMsg(ctx, ack.Sequence)
	if err != nil || string(m.Data) != "hello" {
		t.Fatalf("got %q, %v; want hello", m.Data, err)
	}
}
