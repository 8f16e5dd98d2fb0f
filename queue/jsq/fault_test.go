package jsq

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// faultJS wraps a JetStream so that a test can inject the failures a
// cluster has (a lost ack, a request that never answers, a missing
// object) into the streams, consumers and buckets a Queue opens through
// it. A nil hook passes the call through.
type faultJS struct {
	jetstream.JetStream
	// publish replaces PublishMsg; next is the real one.
	publish func(ctx context.Context, m *nats.Msg, next func() (*jetstream.PubAck, error)) (*jetstream.PubAck, error)
	info    func(ctx context.Context) error              // before Stream.Info; an error is returned instead
	msg     func(m jetstream.Msg) jetstream.Msg          // wraps each message a consumer gives
	update  func(key string, value []byte) error         // before KeyValue.Update; an error is returned instead
	objGet  func(ctx context.Context, name string) error // before ObjectStore.Get; an error is returned instead
}

func (f *faultJS) PublishMsg(ctx context.Context, m *nats.Msg, o ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	next := func() (*jetstream.PubAck, error) { return f.JetStream.PublishMsg(ctx, m, o...) }
	if f.publish == nil {
		return next()
	}
	return f.publish(ctx, m, next)
}

func (f *faultJS) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := f.JetStream.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &faultStream{Stream: s, f: f}, nil
}

func (f *faultJS) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := f.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &faultKV{KeyValue: kv, f: f}, nil
}

func (f *faultJS) CreateOrUpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	o, err := f.JetStream.CreateOrUpdateObjectStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &faultObj{ObjectStore: o, f: f}, nil
}

type faultStream struct {
	jetstream.Stream
	f *faultJS
}

func (s *faultStream) Info(ctx context.Context, o ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error) {
	if s.f.info != nil {
		if err := s.f.info(ctx); err != nil {
			return nil, err
		}
	}
	return s.Stream.Info(ctx, o...)
}

func (s *faultStream) CreateOrUpdateConsumer(ctx context.Context, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := s.Stream.CreateOrUpdateConsumer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &faultConsumer{Consumer: c, f: s.f}, nil
}

type faultConsumer struct {
	jetstream.Consumer
	f *faultJS
}

func (c *faultConsumer) Next(o ...jetstream.FetchOpt) (jetstream.Msg, error) {
	m, err := c.Consumer.Next(o...)
	if err != nil || c.f.msg == nil {
		return m, err
	}
	return c.f.msg(m), nil
}

type faultKV struct {
	jetstream.KeyValue
	f *faultJS
}

func (kv *faultKV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	if kv.f.update != nil {
		if err := kv.f.update(key, value); err != nil {
			return 0, err
		}
	}
	return kv.KeyValue.Update(ctx, key, value, rev)
}

type faultObj struct {
	jetstream.ObjectStore
	f *faultJS
}

func (o *faultObj) Get(ctx context.Context, name string, opts ...jetstream.GetObjectOpt) (jetstream.ObjectResult, error) {
	if o.f.objGet != nil {
		if err := o.f.objGet(ctx, name); err != nil {
			return nil, err
		}
	}
	return o.ObjectStore.Get(ctx, name, opts...)
}

func (o *faultObj) GetInfo(ctx context.Context, name string, opts ...jetstream.GetObjectInfoOpt) (*jetstream.ObjectInfo, error) {
	if o.f.objGet != nil {
		if err := o.f.objGet(ctx, name); err != nil {
			return nil, err
		}
	}
	return o.ObjectStore.GetInfo(ctx, name, opts...)
}
