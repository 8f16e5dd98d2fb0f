package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"gomta/session/smtpclient"
)

// Pool defaults. Postfix keeps an idle connection 2 s
// (smtp_connection_cache_time_limit) and allows 20 connections per
// destination (default_destination_concurrency_limit); a little longer idle
// time lets a queue that delivers one message at a time still reuse.
const (
	DefaultPerDest     = 20
	DefaultMaxIdle     = 5 * time.Second
	DefaultMaxMessages = 100
	DefaultBackoff     = 30 * time.Second
	// quitGrace bounds how long Close waits for idle peers' replies to QUIT.
	quitGrace = 2 * time.Second
)

// PoolOptions configure a Pool; zero values take the defaults.
type PoolOptions struct {
	// PerDest bounds the connections open to one destination at once,
	// in use or idle.
	PerDest int
	// MaxIdle is how long an unused connection is kept for the next
	// message; MaxMessages how many messages one connection carries.
	MaxIdle     time.Duration
	MaxMessages int
	// Backoff is how long a destination that refused a connection (the
	// connect failed, or the greeting was not 220) has its messages
	// deferred without dialling: one refusal, not one per message.
	Backoff time.Duration
}

// Pool is the relay's connection cache and per-destination limiter. A
// destination is a mail exchanger's address as dialled (Target.Addr). It is
// a small mutex-guarded structure; its invariants, under mu:
//   - busy+len(idle) <= PerDest for every destination (a slot is taken
//     before a connection is dialled or taken from idle, and given back when
//     it is closed or made idle);
//   - an idle connection has had a whole transaction end on it, is in
//     exactly one idle list, and has a timer that closes it after MaxIdle;
//   - after Close, idle lists are empty and stay so: a connection given
//     back is closed.
//
// A nil *Pool is valid: no reuse, no limit, no back-off.
type Pool struct {
	opt    PoolOptions
	mu     sync.Mutex
	dests  map[string]*dest
	closed bool
}

type dest struct {
	busy  int           // slots taken: connections in use or being dialled
	idle  []*conn       // connections kept for reuse, the most recent last
	wake  chan struct{} // closed when a slot is given back (nil: nobody waits)
	until time.Time     // back-off ends
	cause error         // the refusal that began the back-off
}

// conn is one connection to a destination and the messages it has carried.
type conn struct {
	c     *smtpclient.Client
	sent  int
	tls   connTLS     // what its TLS proved, for the domain policies it meets
	timer *time.Timer // closes the connection after MaxIdle idle
}

// errPoolClosed: the relay is shutting down (temporary: the queue keeps the
// message for the next start).
var errPoolClosed = errors.New("relay: shutting down")

// NewPool returns an empty pool.
func NewPool(opt PoolOptions) *Pool {
	if opt.PerDest <= 0 {
		opt.PerDest = DefaultPerDest
	}
	if opt.MaxIdle <= 0 {
		opt.MaxIdle = DefaultMaxIdle
	}
	if opt.MaxMessages <= 0 {
		opt.MaxMessages = DefaultMaxMessages
	}
	if opt.Backoff <= 0 {
		opt.Backoff = DefaultBackoff
	}
	return &Pool{opt: opt, dests: map[string]*dest{}}
}

// get takes a slot at key, waiting while PerDest connections are in use,
// and returns an idle connection when there is one (nil: the caller dials).
// It fails at once while key is backed off.
func (p *Pool) get(ctx context.Context, key string) (*conn, error) {
	if p == nil {
		return nil, nil
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, errPoolClosed
		}
		d := p.dest(key)
		if time.Now().Before(d.until) {
			err := fmt.Errorf("delivery temporarily suspended: %w", d.cause)
			p.mu.Unlock()
			return nil, err
		}
		if d.busy < p.opt.PerDest {
			d.busy++
			cn := d.pop()
			p.mu.Unlock()
			return cn, nil
		}
		if d.wake == nil {
			d.wake = make(chan struct{})
		}
		w := d.wake
		p.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return nil, fmt.Errorf("relay: waiting for a connection to %s: %w", key, ctx.Err())
		}
	}
}

// next returns another idle connection of key for the slot the caller
// holds (after a cached one turned out dead), or nil.
func (p *Pool) next(key string) *conn {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dest(key).pop()
}

// put gives back the caller's slot at key with cn: kept idle when keep is
// true and cn may carry more messages, else closed (QUIT). cn may be nil.
func (p *Pool) put(key string, cn *conn, keep bool) {
	if p == nil {
		closeConn(cn)
		return
	}
	p.mu.Lock()
	d := p.dest(key)
	d.busy--
	if d.wake != nil {
		close(d.wake)
		d.wake = nil
	}
	if cn != nil && keep && !p.closed && cn.sent < p.opt.MaxMessages {
		kept := cn
		d.idle = append(d.idle, kept)
		kept.timer = time.AfterFunc(p.opt.MaxIdle, func() { p.expire(key, kept) })
		cn = nil
	}
	p.forget(key, d)
	p.mu.Unlock()
	closeConn(cn)
}

// refused begins key's back-off after cause, a refused connection.
func (p *Pool) refused(key string, cause error) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.dest(key)
	d.until, d.cause = time.Now().Add(p.opt.Backoff), cause
}

// expire closes cn if it is still idle at key.
func (p *Pool) expire(key string, cn *conn) {
	p.mu.Lock()
	d, found := p.dests[key], false
	if d != nil {
		for i, c := range d.idle {
			if c == cn {
				d.idle = append(d.idle[:i], d.idle[i+1:]...)
				found = true
				break
			}
		}
		p.forget(key, d)
	}
	p.mu.Unlock()
	if found {
		closeConn(cn)
	}
}

// Close closes every idle connection and makes the pool refuse new work;
// connections in use are closed when they are given back. Waiters wake.
func (p *Pool) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.closed = true
	var idle []*conn
	for _, d := range p.dests {
		for _, cn := range d.idle {
			cn.timer.Stop()
			idle = append(idle, cn)
		}
		d.idle = nil
		if d.wake != nil {
			close(d.wake)
			d.wake = nil
		}
	}
	p.mu.Unlock()
	// QUIT each at once; a peer that does not answer within quitGrace is cut.
	cut := time.AfterFunc(quitGrace, func() {
		for _, cn := range idle {
			_ = cn.c.Close()
		}
	})
	defer cut.Stop()
	var wg sync.WaitGroup
	for _, cn := range idle {
		wg.Go(func() { closeConn(cn) })
	}
	wg.Wait()
}

// dest returns key's entry, made on first use. Called with mu held.
func (p *Pool) dest(key string) *dest {
	d := p.dests[key]
	if d == nil {
		d = &dest{}
		p.dests[key] = d
	}
	return d
}

// forget drops key's entry when it holds nothing: no slot, no connection,
// no back-off. Called with mu held.
func (p *Pool) forget(key string, d *dest) {
	if d.busy == 0 && len(d.idle) == 0 && d.wake == nil && !time.Now().Before(d.until) {
		delete(p.dests, key)
	}
}

// pop takes the most recently used idle connection, stopping its timer (an
// expiry already under way finds it gone from the list and does nothing).
func (d *dest) pop() *conn {
	n := len(d.idle)
	if n == 0 {
		return nil
	}
	cn := d.idle[n-1]
	d.idle = d.idle[:n-1]
	cn.timer.Stop()
	return cn
}

// closeConn ends cn politely (QUIT, RFC 5321 §4.1.1.10), then closes it.
func closeConn(cn *conn) {
	if cn == nil {
		return
	}
	_ = cn.c.Quit()
	_ = cn.c.Close()
}
