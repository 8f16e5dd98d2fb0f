package queue

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"gomta/mta/mtatest"
)

// crashEnv names the spool directory of the child process of TestCrashSafety.
const crashEnv = "GOMTA_QUEUE_CRASH_DIR"

// crashBody is the body of message n: a count, then that many numbered
// lines, so that a truncated body is seen.
func crashBody(n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Lines: %d\r\n\r\n", n)
	for i := range n {
		fmt.Fprintf(&b, "line %d of a message that is going to be spooled\r\n", i)
	}
	return b.String()
}

func checkCrashBody(body string) error {
	head, rest, ok := strings.Cut(body, "\r\n\r\n")
	if !ok {
		return fmt.Errorf("no header in %q", body)
	}
	n, err := strconv.Atoi(strings.TrimPrefix(head, "Lines: "))
	if err != nil {
		return err
	}
	if rest != crashBody(n)[len(head)+4:] {
		return fmt.Errorf("body of %d lines is damaged (%d octets)", n, len(rest))
	}
	return nil
}

// crashChild commits messages from several goroutines and prints the id of
// each one once its Commit returned, until it is killed (or has done 50000).
func crashChild(dir string) {
	q, err := Open(Options{Dir: dir, Host: "crash", Logger: zap.NewNop(), MaxMessages: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < 50000; i += 8 {
				id, err := q.Submit(context.Background(), "s@x.test", []string{"a@x.test"},
					strings.NewReader(crashBody(i%200)))
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				// One write(2) per line: a line is complete only if printed
				// after its Commit returned.
				os.Stdout.WriteString(id + "\n")
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}

func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	t.Parallel()
	for round := range 3 {
		t.Run(strconv.Itoa(round), func(t *testing.T) { crashRound(t, rand.IntN(400)) })
	}
}

// crashRound kills a committing child after it printed killAfter ids (plus a
// random moment), then checks that a new Queue delivers every printed id,
// each with an intact body.
func crashRound(t *testing.T, killAfter int) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var printed []string
	r := bufio.NewReader(out)
	killed := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if err != io.EOF {
				t.Error(err)
			}
			break // a last line without its newline was being written: not counted
		}
		printed = append(printed, strings.TrimSuffix(line, "\n"))
		if !killed && len(printed) > killAfter {
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			if err := cmd.Process.Kill(); err != nil { // SIGKILL
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed || err == nil {
		t.Fatalf("child was not killed (err %v): %s", err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Fatalf("child: %s", stderr.String())
	}
	t.Logf("child killed after %d committed messages", len(printed))

	q := open(t, dir, nil)
	var mu sync.Mutex
	delivered := map[string]int{}
	h := handlerFunc(func(ctx context.Context, m *Message) []Result {
		body, err := os.ReadFile(m.BodyPath)
		if err != nil {
			t.Errorf("%s: %v", m.ID, err)
		} else if err := checkCrashBody(string(body)); err != nil {
			t.Errorf("%s: %v", m.ID, err)
		}
		mu.Lock()
		delivered[m.ID]++
		mu.Unlock()
		return allDone(m)
	})
	stop := run(t, q, h)
	mtatest.Eventually(t, "spool drained", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(delivered) >= len(printed) && q.Len() == 0
	})
	stop()
	mu.Lock()
	defer mu.Unlock()
	for _, id := range printed {
		if delivered[id] != 1 {
			t.Errorf("committed message %s delivered %d times", id, delivered[id])
		}
	}
	// Messages committed but not yet printed may be delivered too; nothing else.
	if extra := len(delivered) - len(printed); extra < 0 || extra > 8 {
		t.Errorf("%d delivered for %d printed", len(delivered), len(printed))
	}
	assertEmptySpool(t, dir)
}
