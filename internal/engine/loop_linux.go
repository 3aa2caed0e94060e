//go:build linux

package engine

import (
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// # The event loops
//
// One engine of N loops, each the owner of the connections and listening
// sockets it holds, over one of two ways of talking to the kernel:
//
//   - epoll (the default, epoll_linux.go): readiness events, a read system
//     call per readable connection into the loop's buffer; and, where the
//     kernel allows io_uring, a small ring for the writes of each pass
//     (below);
//   - io_uring (opt-in, NewUring; uring_linux.go): completions, a
//     multishot receive per connection into a ring of buffers the loop
//     shares, no read system call.
//
// On both, the writes that a pass's callbacks make (Config.AfterPass) are
// corked: kept in each connection's queue and sent when the pass ends,
// one send request per connection, all submitted with one io_uring_enter
// (uring_linux.go: cork, sendCorked). A pass that answers a hundred
// messages makes one system call for them, not a hundred.
//
// Everything else is the same code whatever the backend: the connection
// (fdConn: its states, writes, output queue, close and linger, pause and
// resume; conn_linux.go), TLS on the loops (tls_linux.go), listeners,
// accepting and dialing (socket_linux.go), and the loop's tasks (below).
// A backend provides the loop's run, registering a descriptor and keeping
// what the kernel watches in step with a connection's state.
//
// The loops do not block an OS thread. Each loop is parked in the Go
// runtime's netpoller on one descriptor (the epoll set, or an eventfd the
// ring signals), so a loop is an ordinary goroutine for the scheduler: with
// GOMAXPROCS=1 the callbacks on the pool and the loops share the one P
// without waiting for sysmon to hand it over.
//
// # Callbacks on the loop, and the watchdog
//
// With Config.AfterPass the owner runs callbacks on the loop's goroutine
// after each pass over ready events, outside the RawRead the loop parks in
// (it polls again before it parks, so nothing that became ready meanwhile
// is missed). A watchdog goroutine (one per engine, parked while the loops
// are idle) looks at the loops every watchdogTick: a loop still running
// the same pass's work as at the previous look is handed to a new
// goroutine, which goes on serving the loop, and the work not started
// goes to the owner's other goroutines (Work.Abandon). The blocked
// goroutine, when its work returns, leaves without touching the loop. A
// callback that blocks (a database call, a sleep) so delays the loop's
// other connections by one to two ticks; one that computes without
// blocking, until the runtime preempts it (about 10 ms) when GOMAXPROCS
// is 1.

const (
	maxIovecs    = 1024 // IOV_MAX on Linux
	acceptBatch  = 64   // connections accepted per readiness event
	minReadRoom  = 4 << 10
	maxBufferCap = 1 << 30

	watchdogTick  = time.Millisecond
	watchdogQuiet = 20 // ticks without a busy loop before the watchdog parks
)

// loopEngine is the engine of event loops, over epoll or io_uring.
type loopEngine struct {
	cfg     Config
	uring   bool
	plain   bool // epoll loops without a ring for sends (tests)
	loops   []*loop
	wg      sync.WaitGroup // the loops (their current goroutines)
	stopped atomic.Bool

	// The watchdog, with AfterPass.
	wdParked atomic.Bool
	wdWake   chan struct{}
	wdStop   chan struct{}
	wdDone   chan struct{}
}

func newPlatform(cfg Config) (Engine, error) {
	e, err := newLoopEngine(cfg, false, false)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// NewUring returns the engine with its loops over io_uring, or an error
// wrapping ErrUringUnavailable when the kernel refuses io_uring (the caller
// then uses New).
func NewUring(cfg Config) (Engine, error) {
	e, err := newLoopEngine(cfg.withDefaults(), true, false)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUringUnavailable, err)
	}
	return e, nil
}

// newLoopEngine makes the loops: over io_uring, or over epoll with a ring
// for sends unless plain (or the kernel refuses io_uring).
func newLoopEngine(cfg Config, uring, plain bool) (*loopEngine, error) {
	e := &loopEngine{cfg: cfg, uring: uring, plain: plain}
	for i := 0; i < cfg.Loops; i++ {
		l := &loop{e: e, id: i, listeners: make(map[int]*fdListener)}
		setup := l.setupEpoll
		if uring {
			setup = l.setupUring
		}
		err := setup()
		if err == nil {
			if l.park, err = l.newPark(); err != nil {
				l.release()
			}
		}
		if err != nil {
			for _, l := range e.loops {
				l.park.file.Close()
				l.release()
			}
			return nil, err
		}
		e.loops = append(e.loops, l)
	}
	for _, l := range e.loops {
		e.wg.Add(1)
		go l.run()
	}
	if cfg.AfterPass != nil {
		e.wdWake = make(chan struct{}, 1)
		e.wdStop = make(chan struct{})
		e.wdDone = make(chan struct{})
		go e.watchdog()
	}
	return e, nil
}

func (e *loopEngine) Loops() int { return len(e.loops) }

func (e *loopEngine) Name() string {
	if e.uring {
		return "io_uring"
	}
	return "epoll"
}

func (e *loopEngine) Held() int {
	n := 0
	for _, l := range e.loops {
		n += int(l.n.Load())
	}
	return n
}

// leastLoaded picks the loop holding the fewest connections, so that
// long-lived connections spread evenly even when they close unevenly.
func (e *loopEngine) leastLoaded() *loop {
	best := e.loops[0]
	for _, l := range e.loops[1:] {
		if l.n.Load() < best.n.Load() {
			best = l
		}
	}
	return best
}

func (e *loopEngine) Stop() {
	if !e.stopped.CompareAndSwap(false, true) {
		return
	}
	for _, l := range e.loops {
		l.post(task{kind: taskStop})
	}
	e.wg.Wait()
	if e.wdStop != nil {
		close(e.wdStop)
		<-e.wdDone
	}
}

// loop is one event loop: the backend's kernel objects, a wake-up eventfd,
// the connections and listening sockets it holds and the tasks other
// goroutines give it.
type loop struct {
	e      *loopEngine
	id     int
	wakefd int   // written by post (and, for io_uring, by the kernel)
	park   *park // where the loop's goroutine parks
	iov    [][]byte
	iovecs []unix.Iovec // rawWritev's
	// tlsRaw is, during a TLS connection's OnRead with crypto/tls's record
	// layer, the loop's bytes crypto/tls has not taken yet (tlsWire.Read):
	// loop-owned, one connection at a time.
	tlsRaw []byte

	conns     []*fdConn // indexed by fd; loop-owned
	listeners map[int]*fdListener
	n         atomic.Int32 // connections held

	tmu        sync.Mutex
	tasks      []task
	spare      []task
	wakeQueued atomic.Bool
	stopping   bool
	stopped    bool // under tmu: tasks posted from now on are dropped

	// busy is the number of the pass whose AfterPass call runs, 0 between
	// calls; the watchdog hands the loop over when it stays the same.
	busy   atomic.Uint64
	passes uint64 // loop-owned
	work   Work   // the work of pass busy; read by the watchdog once busy

	co coalescer // loop-owned

	epollLoop // the backend's state: one of the two is used
	uringLoop
}

type taskKind uint8

const (
	taskStop taskKind = iota
	taskAdopt
	taskClose
	taskLinger
	taskResume
	taskListen
	taskUnlisten
	taskPauseListen
	taskResumeListen
	taskDial
	taskDialTimeout
	taskSync   // io_uring: arm or cancel a connection's requests
	taskAccept // io_uring: accept what a full batch left pending
)

type task struct {
	kind taskKind
	c    *fdConn
	ln   *fdListener
	fd   int
	peer rawPeer // taskAdopt
	done chan struct{}
}

// park is the descriptor a loop's goroutine parks on in the netpoller: a
// dup of the epoll set or of the io_uring loop's eventfd.
type park struct {
	file *os.File
	rc   syscall.RawConn
}

func (l *loop) newPark() (*park, error) {
	target := l.epfd
	if l.e.uring {
		target = l.wakefd
	}
	fd, err := unix.FcntlInt(uintptr(target), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("workerman: dup: %w", err)
	}
	file := os.NewFile(uintptr(fd), "loop")
	rc, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, err
	}
	return &park{file, rc}, nil
}

// run serves the loop on this goroutine until the loop stops or is handed
// to another goroutine (while its work blocks).
func (l *loop) run() {
	for {
		var w Work
		if l.e.uring {
			w = l.pollUring()
		} else {
			w = l.pollEpoll()
		}
		if l.stopping {
			if w != nil {
				w.Abandon() // the last pass's callbacks run elsewhere
			}
			break
		}
		if w != nil && !l.runWork(w) {
			return // handed off: the loop goes on in another goroutine
		}
	}
	l.park.file.Close()
	l.shutdown()
	l.e.wg.Done()
}

// takeWork asks the owner for what the pass queued.
func (l *loop) takeWork() Work {
	if f := l.e.cfg.AfterPass; f != nil {
		return f(l.id)
	}
	return nil
}

// runWork runs a pass's work. It returns false when the loop was handed to
// another goroutine meanwhile: the caller then leaves the loop alone.
func (l *loop) runWork(w Work) bool {
	l.passes++
	pass := l.passes
	l.work = w
	l.busy.Store(pass)
	if l.e.wdParked.Load() {
		l.e.wakeWatchdog()
	}
	w.Run(Turn{&l.busy, pass})
	if !l.busy.CompareAndSwap(pass, 0) {
		return false
	}
	l.work = nil
	w.Done()
	return true
}

// watchdog hands a loop stuck in one AfterPass call for a tick to a new
// goroutine; it parks while no loop runs AfterPass.
func (e *loopEngine) watchdog() {
	defer close(e.wdDone)
	t := time.NewTicker(watchdogTick)
	defer t.Stop()
	seen := make([]uint64, len(e.loops))
	quiet := 0
	for {
		select {
		case <-t.C:
		case <-e.wdStop:
			return
		}
		busy := false
		for i, l := range e.loops {
			b := l.busy.Load()
			if b != 0 {
				busy = true
				if b == seen[i] && e.handOff(l, b) {
					b = 0
				}
			}
			seen[i] = b
		}
		if busy {
			quiet = 0
			continue
		}
		if quiet++; quiet < watchdogQuiet {
			continue
		}
		// Park. A loop that starts a call stores busy, then reads
		// wdParked: it sees the flag, or the check below sees it busy.
		e.wdParked.Store(true)
		for _, l := range e.loops {
			if l.busy.Load() != 0 {
				busy = true
			}
		}
		if !busy {
			t.Stop()
			select {
			case <-e.wdWake:
			case <-e.wdStop:
				return
			}
			t.Reset(watchdogTick)
		}
		e.wdParked.Store(false)
		quiet = 0
		clear(seen)
	}
}

func (e *loopEngine) wakeWatchdog() {
	if e.wdParked.CompareAndSwap(true, false) {
		select {
		case e.wdWake <- struct{}{}:
		default:
		}
	}
}

// handOff moves loop l, stuck in pass, to a new goroutine. It fails when
// the pass ended meanwhile.
func (e *loopEngine) handOff(l *loop, pass uint64) bool {
	if !l.busy.CompareAndSwap(pass, 0) {
		return false
	}
	// The pass's goroutine will not touch the loop again (it runs its
	// work outside the park): the work's rest goes elsewhere, and the
	// loop to a goroutine of its own.
	w := l.work
	go l.run()
	w.Abandon()
	return true
}

func (l *loop) post(t task) {
	l.tmu.Lock()
	if l.stopped {
		l.tmu.Unlock()
		l.dropTask(t)
		return
	}
	l.tasks = append(l.tasks, t)
	if l.wakeQueued.CompareAndSwap(false, true) {
		eventfdAdd(l.wakefd) // under tmu: the eventfd stays open
	}
	l.tmu.Unlock()
}

// wake makes the loop poll, from any goroutine.
func (l *loop) wake() {
	if l.wakeQueued.CompareAndSwap(false, true) {
		l.tmu.Lock()
		if !l.stopped {
			eventfdAdd(l.wakefd)
		}
		l.tmu.Unlock()
	}
}

func (l *loop) runTasks() {
	// Order matters. A poster appends, then sets wakeQueued, and writes the
	// eventfd only if it was the one to set it. Draining the eventfd (in
	// the epoll set, which is level-triggered; the io_uring loop parks on
	// the eventfd itself, where every write is a new edge) before clearing
	// the flag means every write that happens after the clear is still
	// pending for the next wake-up, and every post that found the flag set
	// appended its task before the swap below.
	if !l.e.uring {
		eventfdDrain(l.wakefd)
	}
	l.wakeQueued.Store(false)
	l.tmu.Lock()
	tasks := l.tasks
	l.tasks = l.spare[:0]
	l.tmu.Unlock()
	for i := range tasks {
		l.exec(&tasks[i])
		tasks[i] = task{}
	}
	// The two lists take turns; one that a burst grew (thousands of
	// connections handed over at once) is not kept for the next.
	if cap(tasks) > maxSpareTasks {
		tasks = nil
	}
	l.spare = tasks[:0]
}

// maxSpareTasks is the most tasks a spare list keeps room for.
const maxSpareTasks = 256

func (l *loop) exec(t *task) {
	switch t.kind {
	case taskStop:
		l.stopping = true
	case taskAdopt:
		l.adopt(t.fd, t.peer, t.ln)
	case taskClose:
		t.c.closeFD(nil) // keeps the recorded cause
	case taskLinger:
		t.c.startLinger()
	case taskResume:
		t.c.resume()
	case taskSync:
		c := t.c
		c.mu.Lock()
		c.events &^= uSyncQueued
		c.syncLocked()
		c.mu.Unlock()
	case taskListen:
		l.listeners[t.fd] = t.ln
		l.syncListener(t.ln, t.fd)
		close(t.done)
	case taskUnlisten:
		if ln, ok := l.listeners[t.fd]; ok {
			delete(l.listeners, t.fd)
			l.unwatchListener(ln, t.fd)
			// Not listening from now on, even while an io_uring request
			// still holds the socket open until its cancel completes.
			unix.Shutdown(t.fd, unix.SHUT_RDWR)
			unix.Close(t.fd)
		}
		close(t.done)
	case taskPauseListen, taskResumeListen:
		if ln := l.listeners[t.fd]; ln != nil {
			l.syncListener(ln, t.fd)
		}
	case taskAccept:
		if ln := l.listeners[t.fd]; ln == t.ln && !ln.paused.Load() {
			l.accept(ln, t.fd)
		}
	case taskDial:
		l.startDial(t.c)
	case taskDialTimeout:
		if d := t.c.dialing(); d != nil {
			t.c.dialFailed(fmt.Errorf("workerman: connect %s: %w", d.addr, os.ErrDeadlineExceeded))
		}
	}
}

// syncListener starts or stops watching a listening socket to match its
// pause (loop goroutine).
func (l *loop) syncListener(ln *fdListener, fd int) {
	want := !ln.paused.Load() && !ln.closed.Load()
	switch {
	case want && !ln.watched[l.id]:
		ln.watched[l.id] = l.watchListener(fd)
	case !want && ln.watched[l.id]:
		l.unwatchListener(ln, fd)
	}
}

// unwatchListener stops watching a listening socket.
func (l *loop) unwatchListener(ln *fdListener, fd int) {
	if !ln.watched[l.id] {
		return
	}
	ln.watched[l.id] = false
	if l.e.uring {
		l.unwatchListenerUring(fd)
	} else {
		unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	}
}

// watchListener starts watching a listening socket; it reports whether it
// did.
func (l *loop) watchListener(fd int) bool {
	if l.e.uring {
		l.watchListenerUring(fd)
		return true
	}
	return l.ctl(unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN) == nil
}

// dropTask undoes a task posted after the loop stopped.
func (l *loop) dropTask(t task) {
	if t.done != nil {
		close(t.done)
	}
	switch t.kind {
	case taskAdopt:
		unix.Close(t.fd)
	case taskDial:
		t.c.dialFailed(errEngineStopped)
	}
}

// shutdown runs when the loop stops: every connection is destroyed (its
// owner hears OnClose) and the descriptors are released.
func (l *loop) shutdown() {
	for _, c := range l.conns {
		if c != nil {
			if c.state.Load() == stConnecting {
				c.dialFailed(errEngineStopped)
			} else {
				c.closeFD(errEngineStopped)
			}
		}
	}
	for fd := range l.listeners {
		unix.Close(fd)
	}
	// Tasks posted after the stop (a Listen racing Stop) must not hang.
	l.tmu.Lock()
	tasks := l.tasks
	l.tasks = nil
	l.stopped = true
	l.tmu.Unlock()
	for _, t := range tasks {
		l.dropTask(t)
	}
	if l.r != nil {
		l.drain() // io_uring, or epoll's sends
	}
	l.release()
}

// release frees what the loop's setup made.
func (l *loop) release() {
	if l.e.uring {
		l.releaseUring()
		return
	}
	if l.r != nil {
		l.r.close()
		unix.Close(l.sendfd)
	}
	unix.Close(l.epfd)
	unix.Close(l.wakefd)
}

var errEngineStopped = fmt.Errorf("workerman: engine stopped: %w", net.ErrClosed)

// growConns makes room in the descriptor table for fd. The table is a
// pointer per descriptor of every connection held: growing it by a quarter
// (the kernel hands out the lowest free descriptor, so it is dense) costs
// at most a quarter more, where doubling cost up to twice the size.
func (l *loop) growConns(fd int32) {
	if int(fd) < len(l.conns) {
		return
	}
	n := max(len(l.conns)+len(l.conns)/4, int(fd)+1, 64)
	conns := make([]*fdConn, n)
	copy(conns, l.conns)
	l.conns = conns
	if l.e.uring {
		slots := make([]uSlot, n)
		copy(slots, l.slots)
		l.slots = slots
	}
}

// register adds c to the loop and has the kernel watch it; the caller holds
// c.mu.
func (l *loop) register(c *fdConn) error {
	l.growConns(c.fd)
	if l.e.uring {
		l.registerUring(c)
		return nil
	}
	c.events = c.wantedEventsLocked()
	if err := l.ctl(unix.EPOLL_CTL_ADD, int(c.fd), c.events&^corkFlags); err != nil {
		return err
	}
	l.conns[c.fd] = c
	return nil
}
