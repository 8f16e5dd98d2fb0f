package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progressUnit names what a mode counts, for the bar's rate.
func progressUnit(mode string) string {
	switch mode {
	case "smtp":
		return "msg"
	case "pop3":
		return "session"
	}
	return "conn"
}

// progressTick is how often the bar is refreshed from the workers' counters.
const progressTick = 200 * time.Millisecond

// progress shows a run's advance on stderr: a progress bar on a terminal,
// plain periodic lines otherwise. It only reads the workers' atomic
// counters, so it costs the workers nothing.
type progress struct {
	done chan struct{}
	wg   sync.WaitGroup
}

// startProgress starts the display; total 0 means unknown (-duration).
func startProgress(stderr io.Writer, mode string, total int64, every time.Duration, workers []*stats) *progress {
	p := &progress{done: make(chan struct{})}
	sum := func() (done, failed int64) {
		for _, s := range workers {
			done += s.done.Load()
			failed += s.failed.Load()
		}
		return done, failed
	}
	if isTerminal(stderr) {
		max := total
		if max <= 0 {
			max = -1 // spinner
		}
		bar := progressbar.NewOptions64(max,
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription("mtaload "+mode),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString(progressUnit(mode)),
			progressbar.OptionThrottle(progressTick),
			progressbar.OptionClearOnFinish(),
		)
		p.loop(stderr, progressTick, func(time.Duration) {
			d, _ := sum()
			_ = bar.Set64(d)
		}, func() { _ = bar.Finish() })
		return p
	}
	if every <= 0 {
		return &progress{} // nothing to show, nothing to stop
	}
	p.loop(stderr, every, func(el time.Duration) {
		d, f := sum()
		fmt.Fprintf(stderr, "mtaload %s: %6.1fs done %d failed %d (%.1f/s)\n",
			mode, el.Seconds(), d, f, float64(d)/el.Seconds())
	}, func() {})
	return p
}

func (p *progress) loop(stderr io.Writer, every time.Duration, tick func(time.Duration), end func()) {
	start := time.Now()
	p.wg.Go(func() {
		defer guard(stderr, "progress", nil)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				end()
				return
			case <-t.C:
				tick(time.Since(start))
			}
		}
	})
}

// stop ends the display and waits for it.
func (p *progress) stop() {
	if p.done != nil {
		close(p.done)
	}
	p.wg.Wait()
}

// isTerminal reports whether w (possibly behind a syncWriter) is a terminal.
func isTerminal(w io.Writer) bool {
	if sw, ok := w.(*syncWriter); ok {
		w = sw.w
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
