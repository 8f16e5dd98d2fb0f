package jsbox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// sweepWait bounds one sweep: a server in trouble delays it to the next.
const sweepWait = 5 * time.Minute

// sweep deletes the objects that no message names and that are older than
// the Dedup window, and returns how many it deleted. Such an object is left
// by a publish whose outcome was unknown and that was in fact not stored
// (store keeps the object then). Past the window no attempt publishes a
// message naming it any more (each attempt names its own new object, and a
// publish is resolved within seconds), so a message that does not name it
// now never will: deleting it is safe. Every node sweeps; two sweeps
// deleting one object do no harm.
func (s *Store) sweep(ctx context.Context) (int, error) {
	infos, err := s.objs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("jsbox: sweep: list objects: %w", err)
	}
	cutoff := time.Now().Add(-s.dedup)
	old := map[string][]string{} // user token → candidate objects
	for _, in := range infos {
		if in.Deleted || in.ModTime.After(cutoff) {
			continue
		}
		if utok, ok := objectUser(in.Name); ok {
			old[utok] = append(old[utok], in.Name)
		}
	}
	removed := 0
	var errs []error
	for utok, names := range old {
		named, err := s.namedObjects(ctx, s.subject(utok))
		if err != nil {
			errs = append(errs, err) // this mailbox waits for the next sweep
			continue
		}
		for _, name := range names {
			if named[name] {
				continue
			}
			err := s.objs.Delete(ctx, name)
			if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
				errs = append(errs, fmt.Errorf("jsbox: sweep: delete %s: %w", name, err))
				continue
			}
			removed++
			s.log.Warn("orphan object removed", zap.String("object", name),
				zap.String("msg_id", strings.SplitN(name, "/", 2)[0]))
		}
	}
	return removed, errors.Join(errs...)
}

// objectUser returns the user token of an object store named
// "<msg_id>/<user token>/<nonce>" (a msg_id may hold slashes itself).
func objectUser(name string) (string, bool) {
	parts := strings.Split(name, "/")
	if len(parts) < 3 || parts[len(parts)-2] == "" {
		return "", false
	}
	return parts[len(parts)-2], true
}

// namedObjects reads the headers of every message of subj and returns the
// objects they name. Unlike listing it does not rely on the lease: a POP3
// session may delete messages meanwhile, so it stops at the last message
// (no pending) rather than at a count.
func (s *Store) namedObjects(ctx context.Context, subj string) (map[string]bool, error) {
	named := map[string]bool{}
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return nil, fmt.Errorf("jsbox: sweep: count messages: %w", err)
	}
	if info.State.Subjects[subj] == 0 {
		return named, nil
	}
	cons, err := s.js.OrderedConsumer(ctx, s.name, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subj}, HeadersOnly: true, InactiveThreshold: consumerIdle,
	})
	if err != nil {
		return nil, fmt.Errorf("jsbox: sweep: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		return nil, fmt.Errorf("jsbox: sweep: %w", err)
	}
	defer s.dropConsumer(cons, it)
	for range info.State.Subjects[subj] {
		// Bounded per message: when a POP3 session deleted every message
		// since they were counted, no message comes at all.
		nctx, cancel := context.WithTimeout(ctx, consumerIdle)
		m, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("jsbox: sweep: read %s: %w", subj, err)
		}
		if o := m.Headers().Get(hdrObject); o != "" {
			named[o] = true
		}
		md, err := m.Metadata()
		if err != nil {
			return nil, fmt.Errorf("jsbox: sweep: %w", err)
		}
		if md.NumPending == 0 {
			break
		}
	}
	return named, nil
}

// sweeper sweeps every interval until ctx ends. A failed sweep is logged
// and tried again at the next tick.
func (s *Store) sweeper(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sctx, cancel := context.WithTimeout(ctx, sweepWait)
		_, err := s.sweep(sctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			s.log.Warn("object sweep failed", zap.String("node", s.node), zap.Error(err))
		}
	}
}
