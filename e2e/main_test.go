package e2e

import (
	"testing"

	"github.com/workerman-go/workerman/internal/leakcheck"
)

// TestMain fails the run if a test leaves a goroutine behind: of the chat
// server, or of the browser driver once its context was cancelled.
func TestMain(m *testing.M) { leakcheck.Main(m) }
