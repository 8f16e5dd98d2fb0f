package serve

import (
	"regexp"
	"testing"
)

func TestSessionID(t *testing.T) {
	t.Parallel()
	format := regexp.MustCompile(`^[0-9a-v]{16}$`)
	seen := map[string]bool{}
	for range 100 {
		id := SessionID()
		if !format.MatchString(id) {
			t.Fatalf("SessionID() = %q, want %v", id, format)
		}
		if seen[id] {
			t.Fatalf("SessionID() repeated %q", id)
		}
		seen[id] = true
	}
}
