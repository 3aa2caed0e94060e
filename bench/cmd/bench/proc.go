package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/workerman-go/workerman/bench/internal/procstat"
)

// server is a benchserver process pinned to its own core.
type server struct {
	impl, proto string
	cmd         *exec.Cmd
	stdin       io.WriteCloser
	lines       chan string
	addr        string
}

func startServer(bin, impl, proto string, cpu int) (*server, error) {
	run := impl
	env := os.Environ()
	if impl == uringServer {
		run = "workerman"
		env = append(env, "WORKERMAN_ENGINE=io_uring")
	}
	args := []string{bin, "-impl", run, "-proto", proto}
	if cpu >= 0 && haveTaskset {
		args = append([]string{"taskset", "-c", strconv.Itoa(cpu)}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = env
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{impl: impl, proto: proto, cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	l, err := s.expect("READY ", 20*time.Second)
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("%s/%s: %w", impl, proto, err)
	}
	s.addr = l
	return s, nil
}

func (s *server) expect(prefix string, timeout time.Duration) (string, error) {
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				return "", fmt.Errorf("server exited while waiting for %q", prefix)
			}
			if rest, found := strings.CutPrefix(l, prefix); found || l == strings.TrimSpace(prefix) {
				return rest, nil
			}
		case <-deadline:
			return "", fmt.Errorf("timed out waiting for %q", prefix)
		}
	}
}

// gc makes the server collect garbage and return free memory to the OS.
func (s *server) gc() error {
	s.cmd.Process.Signal(syscall.SIGUSR1)
	_, err := s.expect("GC", 30*time.Second)
	return err
}

// broadcast asks the server to push size bytes to every client.
func (s *server) broadcast(size int) error {
	fmt.Fprintf(s.stdin, "BROADCAST %d\n", size)
	_, err := s.expect("SENT ", 60*time.Second)
	return err
}

// rss is the server's resident set size in bytes.
func (s *server) rss() int64 { return procstat.RSS(s.cmd.Process.Pid) }

// cpu is the CPU time (user+system, all threads) the server used so far.
func (s *server) cpu() time.Duration { return procstat.CPU(s.cmd.Process.Pid) }

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

var haveTaskset = func() bool {
	_, err := exec.LookPath("taskset")
	return err == nil
}()
