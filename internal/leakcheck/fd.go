package leakcheck

import (
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// fdDir lists the process's open descriptors. Only Linux is checked:
// elsewhere FDs reports that it cannot count.
const fdDir = "/proc/self/fd"

// FDs returns the number of file descriptors the process has open, and
// false where it cannot tell (any OS but Linux).
func FDs() (int, bool) {
	if runtime.GOOS != "linux" {
		return 0, false
	}
	// Reading the directory opens one descriptor of its own; it is counted
	// every time, so counts compare.
	entries, err := os.ReadDir(fdDir)
	if err != nil {
		return 0, false
	}
	return len(entries), true
}

// OpenFDs describes the open descriptors ("7 -> socket:[12345]"), for
// failure messages.
func OpenFDs() []string {
	entries, err := os.ReadDir(fdDir)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err != nil {
			continue // closed meanwhile (the directory's own descriptor)
		}
		out = append(out, e.Name()+" -> "+target)
	}
	return out
}

// WaitFDs polls until at most want descriptors are open, or timeout passed.
// It returns the last count and, when it is above want, what is open.
func WaitFDs(want int, timeout time.Duration) (int, []string) {
	n := 0
	poll(timeout, func() bool {
		n, _ = FDs()
		return n <= want
	})
	if n <= want {
		return n, nil
	}
	return n, OpenFDs()
}
