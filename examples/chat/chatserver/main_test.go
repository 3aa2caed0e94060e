package chatserver

import (
	"testing"

	"github.com/workerman-go/workerman/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }
