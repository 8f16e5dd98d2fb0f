package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxLine bounds one log line: a longer one is skipped (counted) rather
// than held in memory whole. mtad's longest lines (the effective config)
// are a few kilobytes.
const maxLine = 1 << 20

// readBuf is each source's read buffer.
const readBuf = 256 << 10

// window limits the lines read to [since, until); zero ends are open.
type window struct{ since, until int64 }

func (w window) has(ts int64) bool {
	return (w.since == 0 || ts >= w.since) && (w.until == 0 || ts < w.until)
}

// source is one log file (or standard input) being read line by line.
type source struct {
	name  string
	idx   int // its place on the command line
	r     *bufio.Reader
	close func() error
	p     *parser
	line  Line   // the current line, when ok
	long  []byte // a line longer than the read buffer, being gathered
	ok    bool
}

// openSource opens name ("-" is stdin), reading through gzip when the
// content starts with gzip's magic bytes, whatever the name says.
func openSource(name string, stdin io.Reader, fs fieldSet) (*source, error) {
	var rd io.Reader
	closeFn := func() error { return nil }
	if name == "-" {
		rd = stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		rd, closeFn = f, f.Close
	}
	br := bufio.NewReaderSize(rd, readBuf)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			closeFn()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		fileClose := closeFn
		closeFn = func() error { zr.Close(); return fileClose() }
		br = bufio.NewReaderSize(zr, readBuf)
	}
	return &source{name: name, r: br, close: closeFn, p: newParser(fs)}, nil
}

// readLine returns the next raw line without its newline; io.EOF at the
// end. A line over maxLine comes back as nil with a nil error.
func (s *source) readLine() ([]byte, error) {
	s.long = s.long[:0]
	tooLong := false
	for {
		b, err := s.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(s.long)+len(b) <= maxLine {
				s.long = append(s.long, b...)
			} else {
				tooLong = true
			}
			continue
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		if err == io.EOF && len(b) == 0 && len(s.long) == 0 && !tooLong {
			return nil, io.EOF
		}
		if tooLong || len(s.long)+len(b) > maxLine {
			return nil, nil
		}
		if len(s.long) > 0 {
			s.long = append(s.long, b...)
			b = s.long
		}
		return bytes.TrimRight(b, "\r\n"), nil
	}
}

// reader merges the lines of several sources by time: a k-way merge that
// holds one line per source, so that memory does not grow with the logs.
// Each source's own order is kept.
type reader struct {
	srcs    []*source
	h       srcHeap
	win     window
	Skipped int64 // lines that are not gomta JSON
	Lines   int64 // gomta lines read, in the window or not
	started bool
	err     error
}

// openAll opens every name, to be read within win decoding the fields fs;
// on an error it closes those already open.
func openAll(names []string, stdin io.Reader, win window, fs fieldSet) (*reader, error) {
	r := &reader{win: win}
	for _, n := range names {
		s, err := openSource(n, stdin, fs)
		if err != nil {
			r.Close()
			return nil, err
		}
		s.idx = len(r.srcs)
		r.srcs = append(r.srcs, s)
	}
	return r, nil
}

// advance reads src's next gomta line; false at its end or on an error
// (kept in r.err).
func (r *reader) advance(s *source) bool {
	for {
		b, err := s.readLine()
		if err == io.EOF {
			return false
		}
		if err != nil {
			r.err = fmt.Errorf("%s: %w", s.name, err)
			return false
		}
		if b == nil || s.p.parse(b, &s.line) != nil {
			if len(bytes.TrimSpace(b)) > 0 || b == nil {
				r.Skipped++
			}
			continue
		}
		r.Lines++
		if r.win.has(s.line.TS) {
			return true
		}
	}
}

// Next returns the next line in time order, or nil at the end of every
// source or on a read error (Err).
func (r *reader) Next() *Line {
	if !r.started {
		r.started = true
		for _, s := range r.srcs {
			if r.advance(s) {
				r.h = append(r.h, s)
			}
		}
		heap.Init(&r.h)
	} else if len(r.h) > 0 {
		if r.advance(r.h[0]) {
			heap.Fix(&r.h, 0)
		} else {
			heap.Pop(&r.h)
		}
	}
	if r.err != nil || len(r.h) == 0 {
		return nil
	}
	return &r.h[0].line
}

// Err is the first read error, if any.
func (r *reader) Err() error { return r.err }

// Close closes every source.
func (r *reader) Close() {
	for _, s := range r.srcs {
		s.close()
	}
}

// srcHeap orders sources by their current line's time, then by their
// place on the command line.
type srcHeap []*source

func (h srcHeap) Len() int { return len(h) }
func (h srcHeap) Less(i, j int) bool {
	if h[i].line.TS != h[j].line.TS {
		return h[i].line.TS < h[j].line.TS
	}
	return h[i].idx < h[j].idx
}
func (h srcHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *srcHeap) Push(x any)   { *h = append(*h, x.(*source)) }
func (h *srcHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	*h = old[:len(old)-1]
	return s
}
