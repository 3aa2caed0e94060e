// Package leakcheck fails tests that leave goroutines or file descriptors
// behind. It is a small stand-in for go.uber.org/goleak built on
// runtime.Stack, so that the library's module needs no dependency for it.
//
// Use Main as the TestMain of every package with tests:
//
//	func TestMain(m *testing.M) { leakcheck.Main(m) }
//
// and Check at the top of a test to check that one test alone.
//
// Goroutines are told apart by their IDs: whatever ran before the snapshot
// (package init, a pool started by a dependency at init) is never reported.
// Goroutines the standard library starts for the whole process (the
// os/signal loop) are not reported either.
package leakcheck

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Timeout bounds how long the checks wait for goroutines and descriptors to
// go away: closing is asynchronous (a pool worker returns after its last
// task, a loop after its epoll wakes), so the checks poll until it is done.
const Timeout = 5 * time.Second

// timeout is Timeout, shortened by this package's tests of failures.
var timeout = Timeout

// Main runs the tests, then exits the process: with the tests' exit code, or
// with 1 if they passed but goroutines they started are still running after
// Timeout, whose stacks it prints.
func Main(m *testing.M) {
	os.Exit(Run(m, os.Stderr))
}

// Run is Main without the exit: it returns the exit code and writes the
// stacks of leaked goroutines to out.
func Run(m *testing.M, out io.Writer) int {
	before := Snapshot()
	code := m.Run()
	if code != 0 {
		return code // the failures say more than the goroutines they left
	}
	if leaked := before.Wait(timeout); len(leaked) > 0 {
		fmt.Fprintf(out, "leakcheck: %d goroutine(s) still running %v after the tests:\n\n%s\n",
			len(leaked), timeout, Format(leaked))
		return 1
	}
	return 0
}

// Check fails t if goroutines or file descriptors it opened are still
// there Timeout after it ends. Call it first in the test, so that its
// cleanup runs after every other (servers shut down, clients closed).
// It cannot tell a parallel test's goroutines from another's: do not use it
// in tests that call t.Parallel or run beside them.
func Check(t testing.TB) {
	t.Helper()
	goroutines := Snapshot()
	fds, countable := FDs()
	t.Cleanup(func() {
		t.Helper()
		if leaked := goroutines.Wait(timeout); len(leaked) > 0 {
			t.Errorf("leakcheck: %d goroutine(s) still running %v after the test:\n\n%s",
				len(leaked), timeout, Format(leaked))
		}
		if countable {
			if now, open := WaitFDs(fds, timeout); now > fds {
				t.Errorf("leakcheck: %d file descriptors open %v after the test, %d before:\n%s",
					now, timeout, fds, strings.Join(open, "\n"))
			}
		}
	})
}

// Goroutine is one goroutine of a stack dump.
type Goroutine struct {
	ID    uint64
	Stack string // its part of the dump, header line included
}

// Set is the goroutines running at one moment, by ID.
type Set map[uint64]bool

// Snapshot returns the goroutines running now.
func Snapshot() Set {
	s := Set{}
	for _, g := range Goroutines() {
		s[g.ID] = true
	}
	return s
}

// Since returns the goroutines running now that were not in s, leaving out
// the calling goroutine and those the standard library keeps for the
// process.
func (s Set) Since() []Goroutine {
	var out []Goroutine
	for i, g := range Goroutines() {
		if i == 0 || s[g.ID] || ignored(g.Stack) {
			continue // i == 0: runtime.Stack puts the caller first
		}
		out = append(out, g)
	}
	return out
}

// Wait polls until no goroutine outside s is left, or timeout passed; it
// returns the ones still running.
func (s Set) Wait(timeout time.Duration) []Goroutine {
	var left []Goroutine
	poll(timeout, func() bool {
		left = s.Since()
		return len(left) == 0
	})
	return left
}

// Goroutines parses the stacks of all goroutines; the calling one comes
// first.
func Goroutines() []Goroutine {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []Goroutine
	for _, block := range bytes.Split(buf, []byte("\n\n")) {
		// "goroutine 42 [chan receive]:" (or "goroutine 42 gp=... m=...
		// [...]:" when GOTRACEBACK asks for more).
		header, _, _ := bytes.Cut(block, []byte("\n"))
		fields := strings.Fields(string(header))
		if len(fields) < 2 || fields[0] != "goroutine" {
			continue
		}
		id, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, Goroutine{ID: id, Stack: string(block)})
	}
	return out
}

// Format joins the stacks for a failure message.
func Format(gs []Goroutine) string {
	var b strings.Builder
	for _, g := range gs {
		b.WriteString(g.Stack)
		b.WriteString("\n\n")
	}
	return b.String()
}

// processWide are functions of goroutines that the standard library starts
// once and keeps for the life of the process.
var processWide = []string{
	"os/signal.signal_recv", // signal.Notify's delivery loop
	"os/signal.loop",
	"runtime.ensureSigM", // the signal mask keeper of signal.Notify
	"internal/fuzz.",     // the fuzzing engine's coordinator and worker
}

func ignored(stack string) bool {
	return slices.ContainsFunc(processWide, func(f string) bool { return strings.Contains(stack, f) })
}

// poll calls done until it returns true or timeout passed, at growing
// intervals from 1 ms to 50 ms.
func poll(timeout time.Duration, done func() bool) {
	deadline := time.Now().Add(timeout)
	for wait := time.Millisecond; !done() && time.Now().Before(deadline); wait = min(2*wait, 50*time.Millisecond) {
		time.Sleep(wait)
	}
}
