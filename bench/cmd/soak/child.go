package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/workerman-go/workerman/bench/internal/procstat"
)

// child is a process of the suite (the server or a client process): the
// same binary run with -role. It reads commands on stdin and answers or
// reports with lines on stdout; its stderr goes to ours, prefixed.
type child struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	exited chan struct{}
	mu     sync.Mutex // one request at a time
}

var stderrMu sync.Mutex

// pushHook, when set (-target push), receives the PUSH lines of the client
// processes (their client IDs and byes) for the backend.
var pushHook func(line string)

func spawn(name string, args ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return spawnCmd(name, exec.Command(exe, args...), false)
}

// spawnCmd starts cmd as a child; logOnly: its stdout is a log (the push
// server's), printed like its stderr.
func spawnCmd(name string, cmd *exec.Cmd, logOnly bool) (*child, error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{name: name, cmd: cmd, stdin: stdin, lines: make(chan string, 4096), exited: make(chan struct{})}
	var pipes sync.WaitGroup
	pipes.Add(2)
	go func() {
		defer pipes.Done()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 256<<20) // reports are long lines
		for sc.Scan() {
			l := sc.Text()
			switch {
			case logOnly && strings.Contains(l, "level=INFO"):
				// The push server logs every API call that failed (404 for a
				// client that just left, which the backend expects) at INFO.
			case logOnly:
				stderrMu.Lock()
				fmt.Fprintf(os.Stderr, "[%s] %s\n", name, l)
				stderrMu.Unlock()
			case pushHook != nil && strings.HasPrefix(l, "PUSH "):
				pushHook(l)
			default:
				c.lines <- l
			}
		}
		close(c.lines)
	}()
	go func() {
		defer pipes.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			stderrMu.Lock()
			fmt.Fprintf(os.Stderr, "[%s] %s\n", name, sc.Text())
			stderrMu.Unlock()
		}
	}()
	go func() {
		pipes.Wait()
		cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) send(line string) {
	fmt.Fprintln(c.stdin, line)
}

// expect returns the rest of the first line starting with prefix, within d;
// other lines are dropped.
func (c *child) expect(prefix string, d time.Duration) (string, error) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				return "", fmt.Errorf("%s exited while the suite waited for %q", c.name, prefix)
			}
			if rest, found := strings.CutPrefix(l, prefix); found {
				return rest, nil
			}
		case <-deadline.C:
			return "", fmt.Errorf("%s: no %q within %v", c.name, strings.TrimSpace(prefix), d)
		}
	}
}

func (c *child) request(cmd, prefix string, d time.Duration) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.send(cmd)
	return c.expect(prefix, d)
}

func (c *child) alive() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// stop asks the process to end (SIGTERM), and kills it after d.
func (c *child) stop(d time.Duration) {
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(d):
		c.cmd.Process.Kill()
		<-c.exited
	}
}

func (c *child) kill() {
	c.cmd.Process.Kill()
	<-c.exited
}

// serverProc is the server child.
type serverProc struct {
	*child
	addr string
	push bool // cmd/workerman-push (-target push): no side channel
}

func startServer(o options, addr string) (*serverProc, error) {
	c, err := spawn("server", "-role", "server", "-addr", addr,
		"-loops", strconv.Itoa(o.loops), "-rate", strconv.Itoa(o.rate), "-broadcast-every", o.broadcastEvery.String(),
		"-max-send-buffer", strconv.Itoa(o.maxSendBuffer), "-handshake-timeout", o.handshakeTimeout.String(),
		"-ping", o.ping.String(), "-ping-limit", strconv.Itoa(o.pingLimit), "-nonreader-pad", strconv.Itoa(o.nonreaderPad))
	if err != nil {
		return nil, err
	}
	got, err := c.expect("READY ", 30*time.Second)
	if err != nil {
		c.kill()
		return nil, err
	}
	return &serverProc{child: c, addr: got}, nil
}

func (s *serverProc) stats() (serverStats, error) {
	if s.push {
		return s.pushStats(backend)
	}
	var st serverStats
	l, err := s.request("STATS", "STATS ", 10*time.Second)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal([]byte(l), &st)
}

func (s *serverProc) gc() error {
	if s.push {
		return nil // the push server cannot be told to collect garbage
	}
	_, err := s.request("GC", "GC", 30*time.Second)
	return err
}

// frozenConn is the server's account of one connection at a restart.
type frozenConn struct {
	kind                 string
	registered, finished bool
	sent, bStart, bLast  uint64
}

// freeze stops the server's pushes and returns what it sent to each
// connection (see soakServer.freezeAndReport).
func (s *serverProc) freeze() (map[string]frozenConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.send("FREEZE")
	out := map[string]frozenConn{}
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				return out, errors.New("server exited during FREEZE")
			}
			if strings.HasPrefix(l, "FROZEN") {
				return out, nil
			}
			f := strings.Fields(l)
			if len(f) != 8 || f[0] != "C" {
				continue
			}
			n := make([]uint64, 5)
			for i := range n {
				n[i], _ = strconv.ParseUint(f[3+i], 10, 64)
			}
			out[f[1]] = frozenConn{kind: f[2], registered: n[0] == 1, finished: n[1] == 1, sent: n[2], bStart: n[3], bLast: n[4]}
		case <-deadline.C:
			return out, errors.New("server did not finish FREEZE within 20 s")
		}
	}
}

// resources is what the suite watches of the server process.
type resources struct {
	RSS        int64 `json:"rss"`
	RSSAnon    int64 `json:"rss_anon"` // of which anonymous (heap, stacks); the rest is mostly the binary's pages
	HeapInuse  int64 `json:"heap_inuse"`
	HeapAlloc  int64 `json:"heap_alloc"` // of which live objects; the rest is the free room of spans in use
	HeapObjs   int64 `json:"heap_objects"`
	StackInuse int64 `json:"stack_inuse"`
	HeapUnused int64 `json:"heap_unused"` // free room in the spans in use (fragmentation)
	HeapFree   int64 `json:"heap_free"`   // free spans not yet returned to the OS
	Metadata   int64 `json:"metadata"`    // the runtime's own structures (span descriptors, GC and page metadata)
	SpanMeta   int64 `json:"span_meta"`   // of which span descriptors
	Threads    int64 `json:"threads"`     // OS threads: each keeps two stacks (g0, signals) for good
	Goroutines int   `json:"goroutines"`
	GoPeak     int64 `json:"go_peak"` // the most goroutines the process had at once: the runtime keeps each one's descriptor
	FDs        int   `json:"fds"`
	Conns      int   `json:"conns"`
}

// machineCPU is the CPU time the whole machine spent busy and in total
// (all cores), from /proc/stat.
func machineCPU() (busy, total time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var idle int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		total += time.Duration(n) * time.Second / 100
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return total - time.Duration(idle)*time.Second/100, total
}

// statusKB reads one "kB" field of /proc/<pid>/status, in bytes.
func statusKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func countFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

// measure reads the server's level in a quiet moment: it pauses the
// server's pushes and broadcasts (the long-lived clients stay connected),
// waits until the goroutine count stops falling (idle workers of the
// callback pool leave after a second) and keeps the least, collects garbage and returns free
// memory to the OS, reads resident memory and open descriptors from /proc
// and goroutines over the side channel, and resumes.
func (s *serverProc) measure(name string) (resources, error) {
	if s.push {
		return s.measurePush()
	}
	if _, err := s.request("PAUSE", "PAUSED", 10*time.Second); err != nil {
		return resources{}, err
	}
	defer s.request("RESUME", "RESUMED", 10*time.Second)
	r := resources{Goroutines: -1}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	// At least 4 s (a ping interval and the pool's purges), until the count
	// has not fallen for 3 s, at most 15 s: the least count seen.
	start, lastDrop := time.Now(), time.Now()
	for time.Since(start) < 4*time.Second || (time.Since(lastDrop) < 3*time.Second && time.Since(start) < 15*time.Second) {
		st, err := s.stats()
		if err != nil {
			return r, err
		}
		if r.Goroutines < 0 || st.Goroutines < r.Goroutines {
			r.Goroutines, lastDrop = st.Goroutines, time.Now()
		}
		<-t.C
	}
	if err := s.gc(); err != nil {
		return r, err
	}
	if dir := os.Getenv("SOAK_PROFILE_DIR"); dir != "" { // heap profiles, to find what stayed
		s.request("HEAPPROFILE "+dir+"/"+name+".pprof", "PROFILED", 30*time.Second)
	}
	st, err := s.stats()
	if err != nil {
		return r, err
	}
	r.RSS, r.RSSAnon, r.FDs = procstat.RSS(s.pid()), statusKB(s.pid(), "RssAnon:"), countFDs(s.pid())
	r.Threads = statusKB(s.pid(), "Threads:") >> 10
	r.Goroutines, r.Conns, r.HeapInuse, r.StackInuse = min(r.Goroutines, st.Goroutines), st.Conns, st.HeapInuse, st.StackInuse
	r.HeapAlloc, r.HeapObjs, r.HeapUnused, r.HeapFree, r.Metadata = st.HeapAlloc, st.HeapObjects, st.HeapUnused, st.HeapFree, st.Metadata
	r.SpanMeta = st.SpanMetadata
	r.GoPeak = st.GoroutinePeak
	return r, nil
}
