//go:build unix

package workerman

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/leakcheck"
)

// program runs this test binary as the server program of cliHelper.
type program struct {
	t    *testing.T
	pid  string
	addr string // listen address; empty: a free port
}

func (p program) cmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	// GORACE: a race-enabled program otherwise sleeps a second at exit.
	cmd.Env = append(os.Environ(), cliHelperEnv+"="+p.pid, cliAddrEnv+"="+p.addr, "GORACE=atexit_sleep_ms=0")
	return cmd
}

// background runs one command while the test goes on; its output, with
// the error if it failed, arrives on the channel.
func (p program) background(args ...string) <-chan string {
	done := make(chan string, 1)
	go func() {
		out, err := p.run(args...)
		if err != nil {
			out += err.Error()
		}
		done <- out
	}()
	return done
}

// run runs one command to its end and returns its output and exit error.
func (p program) run(args ...string) (string, error) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := p.cmd(ctx, args...).CombinedOutput()
	return string(out), err
}

func (p program) ok(args ...string) string {
	p.t.Helper()
	out, err := p.run(args...)
	if err != nil {
		p.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (p program) fails(want string, args ...string) {
	p.t.Helper()
	out, err := p.run(args...)
	if err == nil || !strings.Contains(out, want) {
		p.t.Fatalf("%s: want a failure saying %q, got %v:\n%s", strings.Join(args, " "), want, err, out)
	}
}

var listenRe = regexp.MustCompile(`text://(127\.0\.0\.1:\d+)`)

// workerRow returns the status columns of the worker: listening, name,
// count, connections, send_fail, total_request, qps.
func workerRow(t *testing.T, status string) []string {
	t.Helper()
	for _, line := range strings.Split(status, "\n") {
		if strings.HasPrefix(line, "text://") {
			return strings.Fields(line)
		}
	}
	t.Fatalf("no worker row in status:\n%s", status)
	return nil
}

// sectionRow returns the columns of the row for name in the status
// section headed by title.
func sectionRow(t *testing.T, status, title, name string) []string {
	t.Helper()
	_, section, ok := strings.Cut(status, " "+title+" ")
	_, section, _ = strings.Cut(section, "\n") // the rest of the heading
	if ok {
		for _, line := range strings.Split(section, "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[0] == name {
				return f
			}
			if strings.HasPrefix(line, "-----") {
				break
			}
		}
	}
	t.Fatalf("no %s row in the %s section of status:\n%s", name, title, status)
	return nil
}

func TestCommandLine(t *testing.T) {
	leakcheck.Check(t)
	p := program{t: t, pid: filepath.Join(t.TempDir(), "s.pid")}
	t.Cleanup(func() { p.run("stop") })

	p.fails("not running", "status")
	p.fails("not running", "stop")
	p.fails("Usage:", "start", "-x")
	p.fails("Usage:", "frobnicate")
	p.fails("not running", "reload")

	// start -d returns once the daemon listens.
	out := p.ok("start", "-d")
	m := regexp.MustCompile(`pid (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("start -d said %q", out)
	}
	if b, err := os.ReadFile(p.pid); err != nil || strings.TrimSpace(string(b)) != m[1] {
		t.Fatalf("pid file: %q, %v; start -d said pid %s", b, err, m[1])
	}
	if b, _ := os.ReadFile(p.pid + ".log"); !strings.Contains(string(b), "started, pid "+m[1]) {
		t.Fatalf("the daemon's StdoutFile holds %q", b)
	}
	p.fails("already running (pid "+m[1]+")", "start", "-d")
	p.fails("already running", "start")

	status := p.ok("status")
	if m := regexp.MustCompile(`event-loop: (\S+)`).FindStringSubmatch(status); m == nil ||
		(os.Getenv(EngineEnv) == "goroutine" || runtime.GOOS != "linux") && m[1] != "goroutine" ||
		os.Getenv(EngineEnv) == "" && runtime.GOOS == "linux" && m[1] != "epoll" {
		t.Fatalf("status names no event loop, or the wrong one (%s=%q):\n%s", EngineEnv, os.Getenv(EngineEnv), status)
	}
	addr := listenRe.FindStringSubmatch(status)
	if addr == nil {
		t.Fatalf("status shows no listening address:\n%s", status)
	}
	c := dial(t, addr[1])
	r := bufio.NewReader(c)
	c.Write([]byte("hello\n"))
	if got := readLine(t, r, c); got != "hello\n" {
		t.Fatalf("echo: %q", got)
	}
	status = p.ok("status")
	row := workerRow(t, status)
	if row[1] != "clitest" || row[2] != "2" || row[3] != "1" || row[5] != "1" {
		t.Fatalf("status row %q: want name clitest, count 2, 1 connection, 1 request", row)
	}
	// Worker.Stats: 1 connection, 1 message of 6 bytes each way.
	if traffic := sectionRow(t, status, "WORKER TRAFFIC", "clitest"); strings.Join(traffic[:6], " ") != "clitest 1 1 1 6B 6B" {
		t.Fatalf("traffic row %q: want 1 connection, 1 message and 6 bytes each way", traffic)
	}
	if errs := sectionRow(t, status, "CODEC ERRORS", "clitest"); strings.Join(errs, " ") != "clitest 0 0 0 0 0 0 0" {
		t.Fatalf("codec errors row %q: want none", errs)
	}
	conns := p.ok("connections")
	if !strings.Contains(conns, "clitest") || !strings.Contains(conns, "ESTABLISHED") || !strings.Contains(conns, c.LocalAddr().String()) {
		t.Fatalf("connections does not list %s:\n%s", c.LocalAddr(), conns)
	}

	// stop -g: no new connections, and it waits for the open one.
	stopped := p.background("stop", "-g")
	waitRefused(t, addr[1])
	never(t, stopped, 300*time.Millisecond, "stop -g finishing while a connection is open")
	c.Write([]byte("still served\n"))
	if got := readLine(t, r, c); got != "still served\n" {
		t.Fatalf("echo during a graceful stop: %q", got)
	}
	c.Close()
	if out := wait(t, stopped, "stop -g"); !strings.Contains(out, "stopped") {
		t.Fatalf("stop -g said %q", out)
	}
	if _, err := os.Stat(p.pid); !os.IsNotExist(err) {
		t.Fatalf("pid file after stop: %v", err)
	}
	p.fails("not running", "status")

	// start in the foreground; stop from another process closes the
	// connections (flushing) and ends start with status 0.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fg := p.cmd(ctx, "start")
	stdout, err := fg.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := fg.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr = listenRe.FindStringSubmatch(line)
	if err != nil || addr == nil || !strings.Contains(line, "pid "+strconv.Itoa(fg.Process.Pid)) {
		t.Fatalf("start said %q, %v", line, err)
	}
	c = dial(t, addr[1])
	c.Write([]byte("x\n"))
	readN(t, c, 2)
	stopped = p.background("stop")
	expectEOF(t, c)
	c.Close()
	if out := wait(t, stopped, "stop"); !strings.Contains(out, "stopped") {
		t.Fatalf("stop said %q", out)
	}
	if err := fg.Wait(); err != nil {
		t.Fatalf("start after stop: %v", err)
	}

	// restart -d when nothing runs starts; when it runs, it replaces it.
	first := regexp.MustCompile(`pid (\d+)`).FindStringSubmatch(p.ok("restart", "-d"))
	second := regexp.MustCompile(`daemon, pid (\d+)`).FindStringSubmatch(p.ok("restart", "-d"))
	if first == nil || second == nil || first[1] == second[1] {
		t.Fatalf("restart -d twice: pids %v then %v", first, second)
	}
	p.ok("stop")
}

// waitRefused waits until addr refuses connections.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// echoes checks that c (read through r) is served.
func echoes(t *testing.T, c net.Conn, r *bufio.Reader, msg string) {
	t.Helper()
	c.Write([]byte(msg + "\n"))
	if got := readLine(t, r, c); got != msg+"\n" {
		t.Fatalf("echo of %q: %q", msg, got)
	}
}

var statusPidRe = regexp.MustCompile(`pid: (\d+)`)

// servingPid is the pid that status reports.
func (p program) servingPid() string {
	p.t.Helper()
	m := statusPidRe.FindStringSubmatch(p.ok("status"))
	if m == nil {
		p.t.Fatal("status shows no pid")
	}
	return m[1]
}

func TestCommandLineReload(t *testing.T) {
	leakcheck.Check(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p := program{t: t, pid: filepath.Join(t.TempDir(), "s.pid"), addr: addr}
	t.Cleanup(func() { p.run("stop") })

	p.ok("start", "-d")
	first := p.servingPid()
	c := dial(t, addr)
	r := bufio.NewReader(c)
	echoes(t, c, r, "one")

	// reload: a new server on the same address; the old one closes its
	// connections and exits.
	done := p.background("reload")
	expectEOF(t, c)
	c.Close()
	out := wait(t, done, "reload")
	m := regexp.MustCompile(`daemon, pid (\d+)`).FindStringSubmatch(out)
	if m == nil || m[1] == first || !strings.Contains(out, "reloaded") {
		t.Fatalf("reload said %q (old pid %s)", out, first)
	}
	second := m[1]
	if got := p.servingPid(); got != second {
		t.Fatalf("status answered by pid %s after the reload to %s", got, second)
	}
	if b, _ := os.ReadFile(p.pid); strings.TrimSpace(string(b)) != second {
		t.Fatalf("pid file holds %q after the reload to %s", b, second)
	}
	c = dial(t, addr)
	r = bufio.NewReader(c)
	echoes(t, c, r, "two")

	// A new server that cannot start: the old one listens again and serves on.
	broken := p
	broken.addr = "256.0.0.1:1"
	broken.fails("did not start", "reload")
	echoes(t, c, r, "three")
	if got := p.servingPid(); got != second {
		t.Fatalf("status answered by pid %s after a failed reload, want %s", got, second)
	}
	c3 := dial(t, addr)
	echoes(t, c3, bufio.NewReader(c3), "accepted again")
	c3.Close()

	// reload -g: the new server takes new connections at once; the old one
	// serves its open connection until it closes.
	done = p.background("reload", "-g")
	third := ""
	for deadline := time.Now().Add(30 * time.Second); third == "" || third == second; {
		if time.Now().After(deadline) {
			t.Fatal("no new server answers status during reload -g")
		}
		if out, err := p.run("status"); err == nil {
			if m := statusPidRe.FindStringSubmatch(out); m != nil {
				third = m[1]
			}
		}
	}
	c4 := dial(t, addr)
	echoes(t, c4, bufio.NewReader(c4), "to the new server")
	never(t, done, 300*time.Millisecond, "reload -g finishing while the old server has a connection")
	echoes(t, c, r, "old server still serving")
	c.Close()
	if out := wait(t, done, "reload -g"); !strings.Contains(out, "reloaded") {
		t.Fatalf("reload -g said %q", out)
	}
	c4.Close()
	p.ok("stop")
}
