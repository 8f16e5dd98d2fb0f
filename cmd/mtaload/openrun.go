package main

import (
	"context"
	"io"
	"sync"
	"time"

	"gomta/session/smtpclient"
)

// The open loop (as wrk2 does it): one dispatcher hands each message to the
// pool of -c workers at its intended time, taken from the schedule alone;
// a message that finds every worker busy waits, and its latency is counted
// from when it should have been sent. A closed loop, where each worker
// sends its next message only after the last reply, omits exactly those
// waits (coordinated omission) and so hides a server that falls behind.

// openJob is one message handed to a worker.
type openJob struct {
	seq      int64
	step     int32
	intended time.Time
}

// sendRecord is one message's timing, offsets from the run's start; a
// worker appends its own (no sharing), and the report is built from all of
// them at the end.
type sendRecord struct {
	intended, start, end time.Duration
	step                 int32
	ok                   bool // 250 at the final dot
}

// corrected is the latency from the intended send time to the reply.
func (r sendRecord) corrected() time.Duration { return r.end - r.intended }

// service is the latency from the actual send start (connecting first if
// the worker had no open connection) to the reply.
func (r sendRecord) service() time.Duration { return r.end - r.start }

// openResult is a finished open-loop run.
type openResult struct {
	smtpResult
	start   time.Time
	records []sendRecord // every worker's, in no particular order
}

// openWorker is an smtpWorker fed by the dispatcher: it keeps one
// connection for up to -reuse messages.
type openWorker struct {
	smtpWorker
	recs   []sendRecord
	c      *smtpclient.Client
	abort  func() bool // stops the AfterFunc that cuts c at the hard timeout
	onConn int
}

// loadOpen runs the open-loop schedule against addr.
func loadOpen(cfg *smtpConfig, addr string, stderr io.Writer) *openResult {
	hard, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	res := &openResult{smtpResult: smtpResult{cfg: cfg, addr: addr, to: expand(cfg.to, cfg.toN)}}
	body := makeBody(cfg.size)
	res.start = time.Now()
	fixed := newMessageTemplate(cfg.from, res.start)
	workers := make([]*openWorker, cfg.conc)
	all := make([]*stats, cfg.conc)
	for i := range workers {
		w := &openWorker{smtpWorker: smtpWorker{
			cfg: cfg, to: res.to,
			msg:   message{fixed: fixed, runID: cfg.runID, body: body},
			rcpts: make([]string, cfg.rcpts), rerrs: make([]error, cfg.rcpts),
		}}
		w.dialer.KeepAlive = -1
		workers[i], all[i] = w, &w.st
	}
	prog := startProgress(stderr, "smtp", cfg.open.sched.total(), cfg.progress, all)
	jobs := make(chan openJob)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			defer guard(stderr, "open-loop worker", &w.st.failed)
			w.run(hard, jobs, res.start, addr)
		})
	}
	func() {
		defer guard(stderr, "open-loop dispatcher", nil)
		dispatch(hard, cfg.open.sched, res.start, jobs)
	}()
	close(jobs)
	wg.Wait()
	prog.stop()
	res.elapsed = time.Since(res.start)
	for _, w := range workers {
		res.workers = append(res.workers, &w.smtpWorker)
		res.total.merge(&w.st)
		res.records = append(res.records, w.recs...)
	}
	return res
}

// dispatch hands every message of the schedule to a worker at its intended
// time, or as soon as one is free when that time has passed, until the
// schedule ends or ctx does.
func dispatch(ctx context.Context, s schedule, start time.Time, jobs chan<- openJob) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var seq int64
	for i, g := range s {
		for k := range g.count {
			at := start.Add(g.offset + g.at(k))
			if d := time.Until(at); d > 0 {
				timer.Reset(d)
				select {
				case <-timer.C:
				case <-ctx.Done():
					return
				}
			}
			select {
			case jobs <- openJob{seq: seq, step: int32(i), intended: at}:
			case <-ctx.Done():
				return
			}
			seq++
		}
	}
}

// run sends the jobs it is given, then ends its connection.
func (w *openWorker) run(hard context.Context, jobs <-chan openJob, start time.Time, addr string) {
	opt := smtpclient.Options{LocalName: w.cfg.helo, Timeout: w.cfg.cmdTimeout, Trace: w.st.trace}
	defer w.hangUp(false)
	for j := range jobs {
		if hard.Err() != nil {
			return // cut by -timeout: the rest count as unsent
		}
		began := time.Now()
		ok, end := w.sendOne(hard, addr, opt, j.seq)
		w.recs = append(w.recs, sendRecord{
			intended: j.intended.Sub(start), start: began.Sub(start), end: end.Sub(start),
			step: j.step, ok: ok,
		})
	}
}

// sendOne sends message seq, connecting first when the worker has no
// connection; it reports whether the message got a 250, and when the
// reply came (before any QUIT).
func (w *openWorker) sendOne(hard context.Context, addr string, opt smtpclient.Options, seq int64) (ok bool, end time.Time) {
	if w.c == nil && !w.connect(hard, addr, opt) {
		return false, time.Now()
	}
	before := w.st.okUnits
	alive := w.send(w.c, seq)
	end = time.Now()
	w.onConn++
	switch {
	case !alive:
		w.hangUp(true)
	case w.onConn >= w.cfg.reuse:
		w.hangUp(false)
	}
	return w.st.okUnits > before, end
}

// connect opens a session (greeting, EHLO, STARTTLS, AUTH as configured);
// a failure counts the message as failed.
func (w *openWorker) connect(hard context.Context, addr string, opt smtpclient.Options) bool {
	c, err := w.dial(hard, addr, opt)
	if err != nil {
		w.st.sessionsFail++
		w.st.addErr(err)
		w.failMessage()
		return false
	}
	w.st.sessions++
	w.abort = context.AfterFunc(hard, func() { _ = c.Close() })
	w.c, w.onConn = c, 0
	if err := w.open(c); err != nil {
		w.st.addErr(err)
		w.failMessage()
		w.hangUp(true)
		return false
	}
	if w.cfg.pipelining {
		if ok, _ := c.Extension("PIPELINING"); !ok {
			w.st.pipelineNoted = true
		}
	}
	return true
}

// hangUp ends the worker's connection, if any: with QUIT, or cut when it is
// broken.
func (w *openWorker) hangUp(broken bool) {
	if w.c == nil {
		return
	}
	if broken {
		_ = w.c.Close()
	} else if err := w.c.Quit(); err != nil {
		w.st.addErr(err)
	}
	w.abort()
	w.c, w.abort = nil, nil
}
