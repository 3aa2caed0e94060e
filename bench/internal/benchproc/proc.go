// Package benchproc is what the push benchmarks (bench/cmd/pushbench,
// bench/cmd/clusterbench) share beyond their subscriber processes
// (bench/internal/pushsub): the server processes they start, pin and
// stop, the pinning of the benchmark itself with taskset, the builds of
// workerman-push and Centrifugo, and the helpers of their reports.
package benchproc

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/workerman-go/workerman/bench/internal/procstat"
)

// Proc is a running server process, its output in a log file.
type Proc struct {
	Cmd     *exec.Cmd
	LogPath string
	exited  chan struct{} // closed when the process ended
}

// Start starts args[0] with the arguments args[1:], its standard output
// and error in a new file at logPath.
func Start(logPath string, args ...string) (*Proc, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	p := &Proc{LogPath: logPath, exited: make(chan struct{})}
	p.Cmd = exec.Command(args[0], args[1:]...)
	p.Cmd.Stdout, p.Cmd.Stderr = logFile, logFile
	p.Cmd.Env = os.Environ()
	if err := p.Cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.Cmd.Wait(); close(p.exited) }()
	return p, nil
}

func (p *Proc) Pid() int           { return p.Cmd.Process.Pid }
func (p *Proc) RSS() int64         { return procstat.RSS(p.Pid()) }
func (p *Proc) CPU() time.Duration { return procstat.CPU(p.Pid()) }

// LogTail is the last 20 lines of the process's log.
func (p *Proc) LogTail() string { return Tail(p.LogPath, 20) }

// WaitReady calls probe every 100 ms until it succeeds, for at most d;
// with exitEarly, a process that exits meanwhile ends the wait at once.
func (p *Proc) WaitReady(d time.Duration, exitEarly bool, probe func(hc *http.Client) error) error {
	deadline := time.Now().Add(d)
	hc := &http.Client{Timeout: 2 * time.Second}
	var exited <-chan struct{}
	if exitEarly {
		exited = p.exited
	}
	for {
		err := probe(hc)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", d, err)
		}
		select {
		case <-exited:
			return fmt.Errorf("exited at start (%v)", p.Cmd.ProcessState)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM and waits up to 15 s for the process to end, then
// kills it.
func (p *Proc) Stop() {
	p.Cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(p.Pid(), 0) != nil {
			return
		}
		// a zombie (exited, not yet reaped) counts as stopped
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid())); err != nil || strings.Contains(string(st), ") Z ") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.Cmd.Process.Kill()
}

// DialWS checks that the host of the ws:// URL ws accepts a connection.
func DialWS(ws string) error {
	host := strings.TrimPrefix(ws, "ws://")
	host = host[:strings.IndexByte(host, '/')]
	c, err := net.DialTimeout("tcp", host, time.Second)
	if err != nil {
		return err
	}
	c.Close()
	return nil
}

// FreePort is a TCP port free on 127.0.0.1 at the time of the call.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Tail is the last n lines of the file at path ("" if unreadable).
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
