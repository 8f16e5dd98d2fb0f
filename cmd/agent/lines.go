package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/chzyer/readline"
)

// errInterrupt is Ctrl-C at a prompt (or a SIGINT since the last prompt).
var errInterrupt = errors.New("interrupted")

// maxInputLine bounds one line read from stdin.
const maxInputLine = 1 << 20

// lineReader reads one line after a prompt. It returns io.EOF at the end of
// input (Ctrl-D) and errInterrupt on Ctrl-C. history says whether the line is
// a command worth keeping in the line-editing history.
type lineReader interface {
	readLine(prompt string, history bool) (string, error)
	close()
}

// newLineReader gives line editing on a terminal and plain reading otherwise.
// interrupt delivers SIGINTs (nil: none).
func (e *env) newLineReader(interrupt <-chan os.Signal) lineReader {
	if e.terminal {
		if f, ok := e.stdin.(*os.File); ok {
			rl, err := readline.NewEx(&readline.Config{
				Stdin:                  f,
				Stdout:                 e.stdout,
				Stderr:                 e.stderr,
				HistoryLimit:           500,
				DisableAutoSaveHistory: true,
				InterruptPrompt:        "^C",
			})
			if err == nil {
				return &termReader{rl: rl, interrupt: interrupt}
			}
		}
	}
	p := &plainReader{out: e.stdout, interrupt: interrupt, lines: make(chan lineOrErr), done: make(chan struct{})}
	go p.feed(e.stdin, e.stderr)
	return p
}

type termReader struct {
	rl        *readline.Instance
	interrupt <-chan os.Signal
}

func (t *termReader) readLine(prompt string, history bool) (string, error) {
	select {
	case <-t.interrupt: // Ctrl-C while we were talking to a server
		return "", errInterrupt
	default:
	}
	t.rl.SetPrompt(prompt)
	line, err := t.rl.Readline()
	switch {
	case errors.Is(err, readline.ErrInterrupt):
		return "", errInterrupt
	case err != nil:
		return "", io.EOF
	}
	if history && strings.TrimSpace(line) != "" {
		t.rl.SaveHistory(line)
	}
	return line, nil
}

func (t *termReader) close() { t.rl.Close() }

type lineOrErr struct {
	line string
	err  error
}

// plainReader reads stdin in a goroutine so that a prompt can also wait for
// Ctrl-C; it prints prompts as the course's agent (Python input()) does.
type plainReader struct {
	out       io.Writer
	interrupt <-chan os.Signal
	lines     chan lineOrErr
	done      chan struct{}
	eof       bool
}

func (p *plainReader) feed(in io.Reader, stderr io.Writer) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "agent: internal error reading input: %v\n", r)
			select {
			case p.lines <- lineOrErr{err: io.EOF}:
			case <-p.done:
			}
		}
	}()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 4096), maxInputLine)
	for sc.Scan() {
		select {
		case p.lines <- lineOrErr{line: strings.TrimSuffix(sc.Text(), "\r")}:
		case <-p.done:
			return
		}
	}
	err := sc.Err()
	if err == nil {
		err = io.EOF
	}
	select {
	case p.lines <- lineOrErr{err: err}:
	case <-p.done:
	}
}

func (p *plainReader) readLine(prompt string, _ bool) (string, error) {
	if p.eof {
		return "", io.EOF
	}
	select {
	case <-p.interrupt:
		fmt.Fprintln(p.out)
		return "", errInterrupt
	default:
	}
	fmt.Fprint(p.out, prompt)
	select {
	case l := <-p.lines:
		if l.err != nil {
			p.eof = true
			fmt.Fprintln(p.out) // end the prompt line, as a terminal would after ^D
			if !errors.Is(l.err, io.EOF) {
				return "", fmt.Errorf("reading input: %w", l.err)
			}
			return "", io.EOF
		}
		return l.line, nil
	case <-p.interrupt:
		fmt.Fprintln(p.out)
		return "", errInterrupt
	}
}

func (p *plainReader) close() {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
}
