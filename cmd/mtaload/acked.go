package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
)

// ackedFile is the list of Message-IDs that got a 250, per recipient, written
// by "mtaload smtp -acked FILE" and read by "mtaload verify -acked FILE".
// As JSON (file name ending in .json):
//
//	{"run_id": "…", "acked": {"user1@example.test": ["<RUN.0@mtaload>", …]}}
//
// Otherwise as lines: a "# mtaload run_id=RUN" comment, then
// "recipient message-id" per line.
type ackedFile struct {
	RunID string              `json:"run_id"`
	Acked map[string][]string `json:"acked"`
}

// count is the number of (recipient, Message-ID) pairs.
func (f *ackedFile) count() int {
	n := 0
	for _, ids := range f.Acked {
		n += len(ids)
	}
	return n
}

// writeAcked writes f to path, sorted, via a temporary file renamed into place.
func writeAcked(path string, f *ackedFile) error {
	for _, ids := range f.Acked {
		slices.SortFunc(ids, compareMessageIDs)
	}
	var buf bytes.Buffer
	if strings.HasSuffix(path, ".json") {
		if err := writeJSON(&buf, f); err != nil {
			return fmt.Errorf("acked file: %w", err)
		}
	} else {
		fmt.Fprintf(&buf, "# mtaload run_id=%s\n", f.RunID)
		rcpts := make([]string, 0, len(f.Acked))
		for r := range f.Acked {
			rcpts = append(rcpts, r)
		}
		slices.Sort(rcpts)
		for _, r := range rcpts {
			for _, id := range f.Acked[r] {
				fmt.Fprintf(&buf, "%s %s\n", r, id)
			}
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("acked file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("acked file: %w", err)
	}
	return nil
}

// compareMessageIDs orders ids of one run by sequence number.
func compareMessageIDs(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b) // same prefix and suffix: a shorter number is smaller
	}
	return strings.Compare(a, b)
}

// readAcked reads a file written by writeAcked, in either format.
func readAcked(path string) (*ackedFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("acked file: %w", err)
	}
	f := &ackedFile{Acked: make(map[string][]string)}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		if err := json.Unmarshal(data, f); err != nil {
			return nil, fmt.Errorf("acked file %s: %w", path, err)
		}
		if f.Acked == nil {
			f.Acked = make(map[string][]string)
		}
		return f, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(text, "# mtaload run_id="); ok {
			f.RunID = rest
			continue
		}
		if text == "" || text[0] == '#' {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 2 {
			return nil, fmt.Errorf("acked file %s:%d: want \"recipient message-id\"", path, line)
		}
		f.Acked[fields[0]] = append(f.Acked[fields[0]], fields[1])
	}
	return f, nil
}
