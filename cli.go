package workerman

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Workerman's command line: `php start.php start -d` becomes `./server start -d`
// in a program whose main calls Main after declaring its workers.

var (
	// PidFile is where `start` records the server's process ID (for
	// systemd's PIDFile= and scripts); the control socket that stop,
	// restart, status and connections talk to is the same path with
	// ".sock" appended. Workerman's Worker::$pidFile. Default:
	// workerman-<program>.pid in os.TempDir(). Set it before Main.
	PidFile string

	// StdoutFile receives the standard output and error of a server
	// started with `start -d` (Workerman's Worker::$stdoutFile). Default:
	// os.DevNull. Set it before Main.
	StdoutFile string
)

const cliUsage = `Usage: %[1]s <command> [mode]

Commands:
  start        start the workers in the foreground; -d: as a daemon
  stop         stop, closing connections gracefully within each worker's StopTimeout;
               -g: stop accepting and wait until every connection has closed by itself
  restart      stop, then start; -d: as a daemon
  reload       start the program again as a daemon (a new binary, say) on the same addresses,
               then stop the old one as stop does; -g: as stop -g. The old one serves on
               if the new one fails to start
  status       show the running server's workers; -d: refresh every second
  connections  list the running server's connections
`

// errNotRunning is what the commands that need a running server return
// when there is none.
var errNotRunning = errors.New("workerman: not running")

// daemonEnv tells a process started by `start -d` that it is the daemon
// and which file descriptor reports its start-up to the command.
const daemonEnv = "WORKERMAN_DAEMON_READY_FD"

// Main runs Workerman's command line on os.Args: `start` (`-d` for a
// daemon), `stop` (`-g` graceful), `restart`, `reload` (start the binary
// on disk, then stop the running one; `-g` graceful), `status` (`-d` live)
// and `connections`. A program declares its workers with NewWorker and then
// calls Main instead of RunAll:
//
//	w := workerman.NewWorker("websocket://0.0.0.0:8000")
//	w.OnMessage = ...
//	workerman.Main() // ./server start -d, ./server status, ./server stop
//
// On an error it prints it with the usage to stderr and exits with status 1.
// `start` returns when the workers stopped (SIGINT, SIGTERM, SIGQUIT for a
// graceful stop, or `stop` from another terminal).
func Main() {
	if err := Command(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if errors.Is(err, errUsage) {
			fmt.Fprintf(os.Stderr, cliUsage, filepath.Base(os.Args[0]))
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("workerman: bad command line")

// Command runs one command of Workerman's command line (see Main) with its
// arguments, writing what it reports to out. `start` blocks while the
// workers run; the other commands talk to the server that `start` runs,
// found through PidFile, and return.
func Command(args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command", errUsage)
	}
	cmd := args[0]
	var d, graceful bool // -d: a daemon (start, restart) or live (status)
	for _, a := range args[1:] {
		switch {
		case a == "-d" && (cmd == "start" || cmd == "restart" || cmd == "status"):
			d = true
		case a == "-g" && (cmd == "stop" || cmd == "reload"):
			graceful = true
		default:
			return fmt.Errorf("%w: %q is not an option of %s", errUsage, a, cmd)
		}
	}
	switch cmd {
	case "start", "restart", "reload":
		if fd := os.Getenv(daemonEnv); fd != "" {
			return serveDaemon(fd) // this process is what start -d started
		}
		if cmd == "reload" {
			return reload(out, graceful)
		}
		if cmd == "restart" {
			if err := stopServer(out, false); err != nil && !errors.Is(err, errNotRunning) {
				return err
			}
		}
		if d {
			return startDaemon(out)
		}
		return serveCLI(out, nil)
	case "stop":
		return stopServer(out, graceful)
	case "status":
		return showStatus(out, d)
	case "connections":
		return control(out, "connections")
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
}

func pidFile() string {
	if PidFile != "" {
		return PidFile
	}
	return filepath.Join(os.TempDir(), "workerman-"+filepath.Base(os.Args[0])+".pid")
}

func controlPath() string { return pidFile() + ".sock" }

// serveDaemon runs the workers in the process that start -d started; fd
// is the pipe on which that command waits to hear how the start went.
func serveDaemon(fd string) error {
	os.Unsetenv(daemonEnv)
	n, err := strconv.Atoi(fd)
	if err != nil {
		return fmt.Errorf("workerman: bad %s=%q", daemonEnv, fd)
	}
	return serveCLI(os.Stdout, os.NewFile(uintptr(n), "workerman-ready"))
}

// startDaemon starts this program again, detached, with the same
// arguments (so that it sets itself up the same way before it reaches
// Command), and returns once its workers listen or it failed to start.
func startDaemon(out io.Writer) error {
	attr, err := daemonAttr()
	if err != nil {
		return err
	}
	if pid, err := serverPid(); err == nil {
		return fmt.Errorf("workerman: already running (pid %d)", pid)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("workerman: start -d: %w", err)
	}
	logPath := StdoutFile
	if logPath == "" {
		logPath = os.DevNull
	}
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("workerman: start -d: stdout file: %w", err)
	}
	defer logFile.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("workerman: start -d: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.ExtraFiles = []*os.File{w} // descriptor 3
	cmd.Env = append(os.Environ(), daemonEnv+"=3")
	cmd.SysProcAttr = attr
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("workerman: start -d: %w", err)
	}
	pid := cmd.Process.Pid
	cmd.Process.Release()
	// The daemon writes OK once its workers listen, or why it failed; the
	// pipe closes without a word if it died.
	msg, _ := io.ReadAll(r)
	switch s := strings.TrimSpace(string(msg)); {
	case s == "OK":
		fmt.Fprintf(out, "%s started as a daemon, pid %d (pid file %s)\n", filepath.Base(exe), pid, pidFile())
		return nil
	case s == "" && StdoutFile == "":
		return errors.New("workerman: start -d: the daemon exited while starting (set workerman.StdoutFile to keep its output)")
	case s == "":
		return fmt.Errorf("workerman: start -d: the daemon exited while starting (its output: %s)", logPath)
	default:
		return errors.New(s)
	}
}

// serveCLI runs the workers with the pid file and the control socket
// until a signal or `stop`. ready, for a daemon, hears "OK" or the error.
func serveCLI(out io.Writer, ready *os.File) (err error) {
	report := func(msg string) {
		if ready != nil {
			ready.WriteString(msg + "\n")
			ready.Close()
			ready = nil
		}
	}
	defer func() {
		if err != nil {
			report(err.Error())
		}
	}()
	if pid, err := serverPid(); err == nil {
		return fmt.Errorf("workerman: already running (pid %d)", pid)
	}
	ctx, cancel := context.WithCancel(context.Background())
	graceful := make(chan struct{}, 1)
	ctl, err := listenControl(controlPath(), func(g bool) {
		if !g {
			cancel()
			return
		}
		select {
		case graceful <- struct{}{}:
		default:
		}
	})
	if err != nil {
		cancel()
		return err
	}
	defer ctl.close()
	path := pidFile()
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if err := os.WriteFile(path, pid, 0o644); err != nil {
		cancel()
		return fmt.Errorf("workerman: pid file: %w", err)
	}
	defer func() {
		// After a reload the file is the new server's.
		if b, _ := os.ReadFile(path); string(b) == string(pid) {
			os.Remove(path)
		}
	}()

	quit := make(chan os.Signal, 1)
	notifyGraceful(quit)
	defer signal.Stop(quit)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-quit:
		case <-graceful:
		case <-ctx.Done():
			return
		}
		// Graceful stop: no new connections; stop once the last one closed.
		for _, w := range runningWorkers() {
			select {
			case <-w.drain():
			case <-ctx.Done():
				return
			}
		}
		cancel()
	}()
	defer func() {
		cancel()
		wg.Wait()
	}()
	return runAll(ctx, func() {
		ws := runningWorkers()
		addrs := make([]string, len(ws))
		for i, w := range ws {
			addrs[i] = w.listenURI()
		}
		fmt.Fprintf(out, "workerman-go started, pid %d, listening on %s; Ctrl+C stops\n", os.Getpid(), strings.Join(addrs, ", "))
		report("OK")
	})
}

// listenURI is the worker's URI with the port it really listens on.
func (w *Worker) listenURI() string {
	a := w.Addr()
	if a == nil {
		return w.URI
	}
	scheme, _, _ := strings.Cut(w.URI, "://")
	return scheme + "://" + a.String()
}

// ---- the control socket ----

// controlServer answers the commands of other processes on a unix socket:
// "pid", "status", "connections", "wait" (kept open until the server
// stops) and "reload" (see reloadSession).
type controlServer struct {
	path    string
	stop    func(graceful bool)
	started time.Time
	stopped chan struct{}
	wg      sync.WaitGroup
	lnMu    sync.Mutex
	ln      net.Listener

	mu       sync.Mutex
	lastAt   time.Time
	lastReqs map[*Worker]uint64
}

func listenControl(path string, stop func(graceful bool)) (*controlServer, error) {
	s := &controlServer{path: path, stop: stop, started: time.Now(), stopped: make(chan struct{})}
	if err := s.listen(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *controlServer) listen() error {
	os.Remove(s.path) // left by a server that died: nobody answered on it
	ln, err := net.Listen("unix", s.path)
	if err != nil {
		return fmt.Errorf("workerman: control socket: %w", err)
	}
	s.lnMu.Lock()
	s.ln = ln
	s.lnMu.Unlock()
	s.wg.Add(1)
	go s.run(ln)
	return nil
}

// unlisten closes the control socket (and removes its file).
func (s *controlServer) unlisten() {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	s.ln.Close()
}

func (s *controlServer) run(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			s.answer(c)
		}()
	}
}

func (s *controlServer) answer(c net.Conn) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(io.LimitReader(c, 256))
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	switch cmd := strings.TrimSpace(line); cmd {
	case "pid":
		fmt.Fprintln(c, os.Getpid())
	case "status":
		s.writeStatus(c)
	case "connections":
		writeConnections(c)
	case "wait":
		c.SetDeadline(time.Time{})
		<-s.stopped
	case "reload", "reload -g":
		s.reloadSession(c, r, cmd == "reload -g")
	}
}

// reloadSession hands the addresses over to a new server: it stops
// listening (workers with ReusePort go on accepting, the new server joins
// them) and lets go of the control socket, answers READY, then waits for
// the reload command to say COMMIT (the new server runs: stop, as stop or
// stop -g would) or ABORT (listen again and serve on).
func (s *controlServer) reloadSession(c net.Conn, r *bufio.Reader, graceful bool) {
	ws := runningWorkers()
	for _, w := range ws {
		if !w.ReusePort {
			w.Unlisten()
		}
	}
	s.unlisten()
	fmt.Fprintln(c, "READY")
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	line, _ := r.ReadString('\n')
	if strings.TrimSpace(line) == "COMMIT" {
		c.SetDeadline(time.Time{})
		s.stop(graceful)
		<-s.stopped
		return
	}
	var errs []error
	for _, w := range ws {
		if err := w.Listen(); err != nil && !errors.Is(err, ErrWorkerStarted) {
			errs = append(errs, err)
		}
	}
	if err := s.listen(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(c, "RESTORED with errors: %v\n", err)
		return
	}
	fmt.Fprintln(c, "RESTORED")
}

func (s *controlServer) close() {
	// Stop answering before releasing the "wait" connections: a `restart`
	// starts the new server as soon as its `stop` returns, and must not
	// find this one still answering "pid".
	s.unlisten()
	close(s.stopped)
	s.wg.Wait()
}

// eventLoop names the engine the workers run on, as Workerman's status
// names its event loop: "epoll", "io_uring" or "goroutine".
func eventLoop(ws []*Worker) string {
	for _, w := range ws {
		w.mu.Lock()
		r := w.r
		w.mu.Unlock()
		if r != nil {
			return r.eng.Name()
		}
	}
	return "none"
}

func (s *controlServer) writeStatus(out io.Writer) {
	ws := runningWorkers()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	now := time.Now()
	up := now.Sub(s.started)
	fmt.Fprintf(out, "---------------------------------------------- WORKERMAN-GO ----------------------------------------------\n")
	fmt.Fprintf(out, "workerman-go version: %s   Go version: %s   event-loop: %s   pid: %d\n", moduleVersion(), runtime.Version(), eventLoop(ws), os.Getpid())
	fmt.Fprintf(out, "start time: %s   run %d days %d hours %d minutes   load average: %s\n",
		s.started.Format("2006-01-02 15:04:05"), int(up.Hours())/24, int(up.Hours())%24, int(up.Minutes())%60, loadAverage())
	fmt.Fprintf(out, "memory: %s (Go runtime, %s heap in use)   goroutines: %d   timers: %d\n",
		humanBytes(ms.Sys), humanBytes(ms.HeapInuse), runtime.NumGoroutine(), Timer.Count())
	fmt.Fprintf(out, "---------------------------------------------- WORKER STATUS ---------------------------------------------\n")

	s.mu.Lock()
	since := now.Sub(s.lastAt)
	last := s.lastReqs
	if last == nil {
		since = up
	}
	s.lastReqs, s.lastAt = make(map[*Worker]uint64, len(ws)), now
	tw := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "listening\tworker_name\tcount\tconnections\tsend_fail\ttotal_request\tqps")
	var count int
	var sum Stats
	var qps uint64
	stats := make([]Stats, len(ws))
	for i, w := range ws {
		st := w.Stats()
		stats[i] = st
		r := st.MessagesReceived
		q := uint64(float64(r-last[w]) / max(since.Seconds(), 1e-3))
		s.lastReqs[w] = r
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\n", w.listenURI(), w.name(), w.loops(), st.Connections, st.SendDropped, r, q)
		count, qps = count+w.loops(), qps+q
		sum.add(st)
	}
	s.mu.Unlock()
	fmt.Fprintf(tw, "Summary\t%d workers\t%d\t%d\t%d\t%d\t%d\n", len(ws), count, sum.Connections, sum.SendDropped, sum.MessagesReceived, qps)
	tw.Flush()

	// The same figures as Worker.Stats, and the client side's
	// (AsyncConnection) when it was used.
	names := make([]string, len(ws))
	for i, w := range ws {
		names[i] = w.name()
	}
	if cs := clientSideStats(); cs.ConnectionsTotal > 0 {
		names, stats = append(names, "(clients)"), append(stats, cs)
	}
	fmt.Fprintf(out, "---------------------------------------------- WORKER TRAFFIC --------------------------------------------\n")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "worker_name\tconns_total\tmsgs_in\tmsgs_out\tbytes_in\tbytes_out\tbuffer_full\tpool_queued\tpool_waits\tpool_wait_avg")
	for i, st := range stats {
		avg := time.Duration(0)
		if st.PoolWaitCount > 0 {
			avg = st.PoolWaitDuration / time.Duration(st.PoolWaitCount)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%d\t%d\t%d\t%v\n", names[i], st.ConnectionsTotal, st.MessagesReceived, st.MessagesSent,
			humanBytes(st.BytesReceived), humanBytes(st.BytesSent), st.SendBufferFull, st.PoolQueued, st.PoolWaitCount, avg.Round(time.Microsecond))
	}
	tw.Flush()
	fmt.Fprintf(out, "---------------------------------------------- CODEC ERRORS ----------------------------------------------\n")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "worker_name\tbad_packet\ttoo_large\thandshake\tidle_timeout\thandshake_timeout\theartbeat_timeout\thead_timeout")
	for i, st := range stats {
		e := st.CodecErrors
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", names[i], e.BadPacket, e.PackageTooLarge, e.HandshakeFailed,
			e.IdleTimeout, e.HandshakeTimeout, e.HeartbeatTimeout, e.RequestHeadTimeout)
	}
	tw.Flush()
}

func writeConnections(out io.Writer) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "worker\tinstance\tid\ttransport\tprotocol\trecv-q\tsend-q\tbytes_read\tbytes_written\tstatus\tlocal_address\tremote_address")
	for _, w := range runningWorkers() {
		for _, c := range w.Connections() {
			status := "ESTABLISHED"
			if c.closing.Load() {
				status = "CLOSING"
			}
			c.mu.Lock()
			recvQ := c.pendingIn
			c.mu.Unlock()
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", w.name(), c.WorkerID(), c.ID(),
				c.Transport(), c.Protocol(), recvQ, c.tc.Queued(), c.BytesRead(), c.BytesWritten(), status,
				c.LocalAddress(), c.RemoteAddress())
		}
	}
	tw.Flush()
}

func (w *Worker) loops() int {
	if r := w.reactor(); r != nil {
		return len(r.insts)
	}
	return 0
}

// control sends cmd to the running server and copies its answer to out.
func control(out io.Writer, cmd string) error {
	c, err := dialControl(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(out, c); err != nil {
		return fmt.Errorf("workerman: %s: %w", cmd, err)
	}
	return nil
}

// dialControl connects to the running server's control socket and sends
// cmd; the caller reads the answer and closes the connection.
func dialControl(cmd string) (net.Conn, error) {
	c, err := net.DialTimeout("unix", controlPath(), 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w (no server answers on %s)", errNotRunning, controlPath())
	}
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		c.Close()
		return nil, fmt.Errorf("workerman: %s: %w", cmd, err)
	}
	c.SetWriteDeadline(time.Time{})
	return c, nil
}

// serverPid asks the running server for its process ID.
func serverPid() (int, error) {
	var b strings.Builder
	if err := control(&b, "pid"); err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(b.String()))
	if err != nil {
		return 0, fmt.Errorf("workerman: the control socket %s answered %q", controlPath(), b.String())
	}
	return pid, nil
}

// stopTimeoutCLI bounds how long `stop` waits for the server (whose workers
// give up on blocked callbacks after their StopTimeout) to exit.
const stopTimeoutCLI = time.Minute

func stopServer(out io.Writer, graceful bool) error {
	pid, err := serverPid()
	if err != nil {
		return err
	}
	// A connection that the server keeps open until it has stopped.
	wait, err := dialControl("wait")
	if err != nil {
		return err
	}
	defer wait.Close()
	if err := signalStop(pid, graceful); err != nil {
		return fmt.Errorf("workerman: stop pid %d: %w", pid, err)
	}
	return awaitStop(out, wait, wait, pid, graceful, "stopped")
}

// awaitStop waits until the server stopping on conn (read through r) has
// closed it, which it does when it exits, then says done.
func awaitStop(out io.Writer, conn net.Conn, r io.Reader, pid int, graceful bool, done string) error {
	if graceful {
		fmt.Fprintf(out, "stopping pid %d gracefully: no new connections, waiting for the open ones to close\n", pid)
	} else {
		fmt.Fprintf(out, "stopping pid %d\n", pid)
		conn.SetReadDeadline(time.Now().Add(stopTimeoutCLI))
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("workerman: stop fail: pid %d still running after %v: %w", pid, stopTimeoutCLI, err)
	}
	fmt.Fprintln(out, done)
	return nil
}

// reload starts a new server (this program's binary as it is now on disk)
// on the addresses of the running one, then stops the running one.
func reload(out io.Writer, graceful bool) error {
	pid, err := serverPid()
	if err != nil {
		return err
	}
	cmd := "reload"
	if graceful {
		cmd = "reload -g"
	}
	c, err := dialControl(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || line != "READY\n" {
		return fmt.Errorf("workerman: reload: pid %d answered %q, %v", pid, line, err)
	}
	c.SetDeadline(time.Time{})
	if err := startDaemon(out); err != nil {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "ABORT\n")
		line, _ := r.ReadString('\n')
		return fmt.Errorf("workerman: reload: the new server did not start (%w); pid %d: %s", err, pid, strings.TrimSpace(line))
	}
	if _, err := io.WriteString(c, "COMMIT\n"); err != nil {
		return fmt.Errorf("workerman: reload: pid %d: %w", pid, err)
	}
	return awaitStop(out, c, r, pid, graceful, "reloaded")
}

func showStatus(out io.Writer, live bool) error {
	if !live {
		return control(out, "status")
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		var b strings.Builder
		if err := control(&b, "status"); err != nil {
			return err
		}
		fmt.Fprint(out, "\033[H\033[2J"+b.String()+"\n(refreshing every second; Ctrl+C quits)\n")
		<-tick.C
	}
}

func moduleVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	const path = "github.com/workerman-go/workerman"
	if bi.Main.Path == path {
		return bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == path {
			return d.Version
		}
	}
	return "unknown"
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], ", ")
	}
	return "-"
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
