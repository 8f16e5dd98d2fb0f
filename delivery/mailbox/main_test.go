package mailbox

import (
	"testing"

	"go.uber.org/goleak"
)

// Every actor goroutine must be gone when its Store's Run has returned.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
