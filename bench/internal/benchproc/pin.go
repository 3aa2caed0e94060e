package benchproc

import (
	"log"
	"os"
	"os/exec"
	"runtime"
	"strconv"
)

// Pinning is how a benchmark keeps its load generator off the servers'
// core: it re-runs itself on CPU 1 (its subscriber processes inherit it)
// and starts the servers on CPU 0, when the machine has 2 CPUs or more and
// taskset is there.
type Pinning struct {
	// PinnedEnv is set in the re-run process to the machine's CPU count.
	PinnedEnv string
	// OffEnv ("": none), when set to anything, turns pinning off.
	OffEnv string
}

var haveTaskset = func() bool {
	_, err := exec.LookPath("taskset")
	return err == nil
}()

// NumCPU is the machine's CPU count, also in the process pinned to one.
func (p Pinning) NumCPU() int {
	if n, err := strconv.Atoi(os.Getenv(p.PinnedEnv)); err == nil && n > 0 {
		return n
	}
	return runtime.NumCPU()
}

// On tells whether the processes are pinned.
func (p Pinning) On() bool {
	return haveTaskset && p.NumCPU() >= 2 && (p.OffEnv == "" || os.Getenv(p.OffEnv) == "")
}

// Self re-runs the process on CPU 1 and exits with its status, unless it
// is that process already or pinning is off.
func (p Pinning) Self() {
	if os.Getenv(p.PinnedEnv) != "" || !p.On() {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	cmd := exec.Command("taskset", append([]string{"-c", "1", exe}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), p.PinnedEnv+"="+strconv.Itoa(runtime.NumCPU()))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			os.Exit(ee.ExitCode())
		}
		log.Fatal(err)
	}
	os.Exit(0)
}

// Server prefixes a server's command line with taskset to CPU 0 when
// pinning is on.
func (p Pinning) Server(args ...string) []string {
	if p.On() {
		return append([]string{"taskset", "-c", "0"}, args...)
	}
	return args
}
