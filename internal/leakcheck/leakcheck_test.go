package leakcheck

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if os.Getenv(leakyEnv) != "" {
		timeout = 100 * time.Millisecond // the child of TestMainFailsALeakyBinary
	}
	Main(m)
}

func TestSinceFindsANewGoroutineUntilItEnds(t *testing.T) {
	before := Snapshot()
	stop := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		parkedForTheTest(stop)
	}()
	leaked := before.Wait(20 * time.Millisecond)
	if len(leaked) != 1 || !strings.Contains(leaked[0].Stack, "parkedForTheTest") {
		t.Fatalf("want the parked goroutine, got:\n%s", Format(leaked))
	}
	close(stop)
	<-ended
	if left := before.Wait(Timeout); len(left) != 0 {
		t.Fatalf("an ended goroutine is still reported:\n%s", Format(left))
	}
}

func parkedForTheTest(stop <-chan struct{}) { <-stop }

func TestGoroutinesPutsTheCallerFirst(t *testing.T) {
	gs := Goroutines()
	if len(gs) == 0 || !strings.Contains(gs[0].Stack, "TestGoroutinesPutsTheCallerFirst") {
		t.Fatalf("first goroutine:\n%s", Format(gs[:min(1, len(gs))]))
	}
}

func TestFDsCountsAnOpenFile(t *testing.T) {
	before, ok := FDs()
	if !ok {
		t.Skip("descriptors are counted on Linux only")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := FDs(); n != before+1 {
		t.Fatalf("%d descriptors with a file open, %d before", n, before)
	}
	if n, open := WaitFDs(before, 10*time.Millisecond); n != before+1 || !strings.Contains(strings.Join(open, "\n"), f.Name()) {
		t.Fatalf("WaitFDs = %d, %q; want %d and the file", n, open, before+1)
	}
	f.Close()
	if n, open := WaitFDs(before, Timeout); n != before || open != nil {
		t.Fatalf("WaitFDs after close = %d, %q; want %d", n, open, before)
	}
}

// Check passes for a test that cleans up after itself; its cleanup runs
// after the ones registered later.
func TestCheckAfterCleanups(t *testing.T) {
	t.Run("clean", func(t *testing.T) {
		Check(t)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { defer close(done); <-stop }()
		f, err := os.Create(filepath.Join(t.TempDir(), "f"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { close(stop); <-done; f.Close() })
	})
}

// fakeTB records what Check reports.
type fakeTB struct {
	testing.TB
	cleanups []func()
	errs     []string
}

func (f *fakeTB) Helper()                   {}
func (f *fakeTB) Cleanup(fn func())         { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Errorf(s string, a ...any) { f.errs = append(f.errs, fmt.Sprintf(s, a...)) }

func TestCheckReportsALeakedGoroutineAndDescriptor(t *testing.T) {
	defer func(d time.Duration) { timeout = d }(timeout)
	timeout = 100 * time.Millisecond
	fake := &fakeTB{TB: t}
	Check(fake)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); parkedForTheTest(stop) }()
	f, err := os.Create(filepath.Join(t.TempDir(), "leaked"))
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range fake.cleanups {
		fn()
	}
	close(stop)
	<-done
	f.Close()
	all := strings.Join(fake.errs, "\n")
	if !strings.Contains(all, "parkedForTheTest") || !(strings.Contains(all, "leaked") || runtime.GOOS != "linux") {
		t.Fatalf("Check reported:\n%s", all)
	}
}

// A test binary whose tests leave a goroutine running exits with 1 and
// prints its stack.
func TestMainFailsALeakyBinary(t *testing.T) {
	if os.Getenv(leakyEnv) != "" {
		go parkedForTheTest(make(chan struct{}))
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainFailsALeakyBinary$")
	cmd.Env = append(os.Environ(), leakyEnv+"=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !bytes.Contains(out, []byte("parkedForTheTest")) {
		t.Fatalf("leaky binary: %v\n%s", err, out)
	}
}

const leakyEnv = "LEAKCHECK_TEST_LEAK"
