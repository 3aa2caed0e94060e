package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/workerman-go/workerman"
)

// serverOptions configure the -role server child.
type serverOptions struct {
	addr             string
	loops            int
	rate             int // unicast messages per second to each well-behaved connection
	broadcastEvery   time.Duration
	maxSendBuffer    int
	handshakeTimeout time.Duration
	ping             time.Duration
	pingLimit        int
	nonreaderPad     int
}

// connState is what the soak server keeps for one upgraded connection (its
// Connection.Value).
type connState struct {
	cid   string
	kind  int
	phase uint64 // spreads the unicast pushes over the ticks of a second
	drops atomic.Uint64

	mu         sync.Mutex
	registered bool   // the welcome was sent: broadcasts after bStart are for it
	finished   bool   // bye answered: nothing more is pushed
	gone       bool   // Send said closed
	sent       uint64 // unicast 1..sent were accepted by Send
	bStart     uint64
}

// soakServer is the plain library's WebSocket server under test, with the
// bookkeeping that lets the suite check delivery.
type soakServer struct {
	o serverOptions
	w *workerman.Worker

	// bmu orders broadcasts against registrations and byes: a broadcast
	// runs whole under it, so "every broadcast after bStart" and "every
	// broadcast up to blast" are exact. Callbacks never wait for it (see
	// withBroadcastLock).
	bmu  sync.Mutex
	bseq uint64

	pmu     sync.Mutex
	pending []func() // registrations and byes that came during a broadcast, in order

	goPeak atomic.Int64 // the most goroutines seen at once (sampled every 10 ms)

	freeze chan chan struct{} // stops the pusher
	paused atomic.Bool        // no pushes, no broadcasts: the suite is measuring

	accepted, upgraded            atomic.Uint64
	open                          [7]atomic.Int64 // upgraded connections by kind
	drops, bufferFull, heartbeats [7]atomic.Uint64
	handshakeTimeouts, badHS      atomic.Uint64
	unicastSent, unicastDropped   atomic.Uint64
	broadcasts, broadcastTaken    atomic.Uint64
	byes, unexpected              atomic.Uint64
	slowestTick, slowestBroadcast atomic.Int64 // ns, since the last STATS
	broadcastNs, broadcastMaxNs   atomic.Int64 // all broadcasts: total and slowest
	broadcastCPU                  atomic.Int64 // the server's CPU time (all threads) while broadcasting, ns
	broadcastBusy, broadcastAll   atomic.Int64 // the machine's busy and total CPU time while broadcasting, ns
	tickNs, tickMaxNs, ticks      atomic.Int64 // all push rounds

	errMu     sync.Mutex
	closeErrs map[int]uint64
	otherErrs map[string]uint64
}

// serverStats is the answer to STATS on the side channel.
type serverStats struct {
	Goroutines         int               `json:"goroutines"`
	GoroutinePeak      int64             `json:"goroutine_peak"` // the most at once in this process so far
	HeapInuse          int64             `json:"heap_inuse"`
	HeapAlloc          int64             `json:"heap_alloc"`
	HeapObjects        int64             `json:"heap_objects"`
	StackInuse         int64             `json:"stack_inuse"`
	HeapUnused         int64             `json:"heap_unused"`
	HeapFree           int64             `json:"heap_free"`
	Metadata           int64             `json:"metadata"`
	SpanMetadata       int64             `json:"span_metadata"` // of which span descriptors (never returned: the most spans the heap had)
	Conns              int               `json:"conns"`
	Open               map[string]int64  `json:"open"`
	Accepted           uint64            `json:"accepted"`
	Upgraded           uint64            `json:"upgraded"`
	Drops              map[string]uint64 `json:"drops"`
	BufferFull         map[string]uint64 `json:"buffer_full"`
	HeartbeatTimeouts  map[string]uint64 `json:"heartbeat_timeouts"`
	HandshakeTimeouts  uint64            `json:"handshake_timeouts"`
	HandshakeErrors    uint64            `json:"handshake_errors"`
	CloseErrors        map[string]uint64 `json:"close_errors"`
	OtherErrors        map[string]uint64 `json:"other_errors"`
	UnicastSent        uint64            `json:"unicast_sent"`
	UnicastDropped     uint64            `json:"unicast_dropped"`
	Broadcasts         uint64            `json:"broadcasts"`
	BroadcastTaken     uint64            `json:"broadcast_taken"`
	Byes               uint64            `json:"byes"`
	Unexpected         uint64            `json:"unexpected"`
	SlowestTickMs      float64           `json:"slowest_tick_ms"`      // one round of unicast pushes, since the last STATS
	SlowestBroadcastMs float64           `json:"slowest_broadcast_ms"` // one Worker.Broadcast, since the last STATS
	BroadcastNs        int64             `json:"broadcast_ns"`         // all Worker.Broadcast calls, in total
	BroadcastMaxNs     int64             `json:"broadcast_max_ns"`
	BroadcastCPUNs     int64             `json:"broadcast_cpu_ns"`  // the server's CPU time during them
	BroadcastBusyNs    int64             `json:"broadcast_busy_ns"` // the machine's busy CPU time during them (all cores)
	BroadcastAllNs     int64             `json:"broadcast_all_ns"`  // the machine's CPU time during them (all cores)
	Ticks              int64             `json:"ticks"`
	TickNs             int64             `json:"tick_ns"`
	TickMaxNs          int64             `json:"tick_max_ns"`
}

func runServer(o serverOptions) {
	if os.Getenv("SOAK_PROFILE_DIR") != "" {
		// Heap profiles fine enough to tell objects of a few hundred bytes
		// kept per connection (the default samples one per 512 KiB).
		runtime.MemProfileRate = 1024
	}
	s := &soakServer{o: o, freeze: make(chan chan struct{}), closeErrs: map[int]uint64{}, otherErrs: map[string]uint64{}}
	w := &workerman.Worker{URI: "websocket://" + o.addr, Name: "soak"}
	w.Count = o.loops
	w.MaxSendBufferSize = o.maxSendBuffer
	w.WebSocket.NoCompression = true
	w.WebSocket.HandshakeTimeout = o.handshakeTimeout
	w.WebSocket.PingInterval = o.ping
	w.WebSocket.PingNotResponseLimit = o.pingLimit
	w.OnConnect = func(*workerman.Connection) { s.accepted.Add(1) }
	w.OnWebSocketConnect = s.onHandshake
	w.OnWebSocketConnected = s.onConnected
	w.OnMessage = s.onMessage
	w.OnClose = s.onClose
	w.OnError = s.onError
	w.OnBufferFull = func(c *workerman.Connection) { s.bufferFull[s.kindOf(c)].Add(1) }
	s.w = w
	if err := w.Listen(); err != nil {
		log.Fatalf("server: %v", err)
	}
	go s.pusher()
	go s.broadcaster()
	go func() {
		for range time.Tick(10 * time.Millisecond) {
			storeMax(&s.goPeak, int64(runtime.NumGoroutine()))
		}
	}()

	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	say := func(format string, args ...any) {
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	say("READY %s", w.Addr())
	for {
		select {
		case <-sig:
			s.stop()
			return
		case l, ok := <-lines:
			if !ok {
				s.stop()
				return
			}
			if path, ok := strings.CutPrefix(l, "HEAPPROFILE "); ok {
				if f, err := os.Create(path); err == nil {
					pprof.WriteHeapProfile(f)
					f.Close()
				}
				say("PROFILED")
				continue
			}
			switch l {
			case "STATS":
				b, _ := json.Marshal(s.stats())
				say("STATS %s", b)
			case "PAUSE":
				s.paused.Store(true)
				say("PAUSED")
			case "RESUME":
				s.paused.Store(false)
				say("RESUMED")
			case "GC":
				runtime.GC()
				debug.FreeOSMemory()
				say("GC")
			case "FREEZE":
				s.freezeAndReport(say)
			}
		}
	}
}

func (s *soakServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.w.Shutdown(ctx)
}

func (s *soakServer) kindOf(c *workerman.Connection) int {
	if st, ok := c.Value().(*connState); ok {
		return st.kind
	}
	return len(kinds)
}

func (s *soakServer) onHandshake(c *workerman.Connection, r *workerman.WebSocketRequest) error {
	q := r.Query()
	st := &connState{cid: q.Get("cid"), kind: kindIndex(q.Get("kind")), phase: c.ID() % 10}
	c.SetValue(st)
	s.open[st.kind].Add(1)
	return nil
}

// onConnected registers the connection: from here on it gets unicast
// pushes and every broadcast after bStart, which the welcome tells it.
func (s *soakServer) onConnected(c *workerman.Connection, _ *workerman.WebSocketRequest) {
	st, ok := c.Value().(*connState)
	if !ok {
		return
	}
	s.upgraded.Add(1)
	s.withBroadcastLock(func() {
		st.mu.Lock()
		defer st.mu.Unlock()
		st.bStart = s.bseq
		st.registered = true
		c.Send(appendMsg(nil, 'w', st.bStart))
	})
}

// onMessage answers bye with what was sent to the connection. Under bmu
// and the connection's lock no push and no broadcast can slip in between.
func (s *soakServer) onMessage(c *workerman.Connection, data []byte) {
	st, ok := c.Value().(*connState)
	if !ok || string(data) != "bye" {
		s.unexpected.Add(1)
		return
	}
	s.byes.Add(1)
	s.withBroadcastLock(func() {
		st.mu.Lock()
		defer st.mu.Unlock()
		st.finished = true
		c.Send(appendMsg(nil, 'f', st.sent, s.bseq, st.drops.Load()))
	})
}

// withBroadcastLock runs f under bmu: at once when no broadcast runs, else
// right after the running one, by the goroutine that ran it, before it
// lets go of bmu. Either way f runs under bmu and in the order of the
// calls (a connection's bye after its registration). A callback never
// waits for a broadcast: one that did held a goroutine of the callback
// pool for up to a broadcast's 5,000 writes, and the pool started more for
// the callbacks queued behind (a 30-minute run peaked at 1,036), whose
// descriptors the Go runtime keeps for good (about 500 bytes each).
func (s *soakServer) withBroadcastLock(f func()) {
	s.pmu.Lock()
	if len(s.pending) > 0 || !s.bmu.TryLock() {
		s.pending = append(s.pending, f)
		s.pmu.Unlock()
		return
	}
	s.pmu.Unlock()
	f()
	s.unlockBroadcast()
}

// unlockBroadcast runs what came for bmu while it was held, then releases
// it. Checking for more and releasing under pmu means that a call of
// withBroadcastLock either finds bmu free or is run here.
func (s *soakServer) unlockBroadcast() {
	for {
		s.pmu.Lock()
		fs := s.pending
		if len(fs) == 0 {
			s.bmu.Unlock()
			s.pmu.Unlock()
			return
		}
		s.pending = nil
		s.pmu.Unlock()
		for _, f := range fs {
			f()
		}
	}
}

func (s *soakServer) onClose(c *workerman.Connection) {
	if st, ok := c.Value().(*connState); ok {
		s.open[st.kind].Add(-1)
		st.mu.Lock()
		st.gone = true
		st.mu.Unlock()
	}
}

func (s *soakServer) onError(c *workerman.Connection, err error) {
	var ce *workerman.CloseError
	var he *workerman.HandshakeError
	switch {
	case errors.Is(err, workerman.ErrSendBufferFull):
		s.drops[s.kindOf(c)].Add(1)
		if st, ok := c.Value().(*connState); ok {
			st.drops.Add(1)
		}
	case errors.Is(err, workerman.ErrHeartbeatTimeout):
		s.heartbeats[s.kindOf(c)].Add(1)
	case errors.Is(err, workerman.ErrHandshakeTimeout):
		s.handshakeTimeouts.Add(1)
	case errors.As(err, &he):
		s.badHS.Add(1)
	case errors.As(err, &ce):
		s.errMu.Lock()
		s.closeErrs[ce.Code]++
		s.errMu.Unlock()
	default:
		s.errMu.Lock()
		if _, seen := s.otherErrs[err.Error()]; seen || len(s.otherErrs) < 30 {
			s.otherErrs[err.Error()]++
		}
		s.errMu.Unlock()
	}
}

// pusher sends each registered connection its own numbered messages at a
// steady rate, spread over ten ticks a second; non-readers get a padded
// message every tick so that their send buffers fill.
func (s *soakServer) pusher() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	buf := make([]byte, 0, 64+s.o.nonreaderPad)
	pad := bytes.Repeat([]byte{'.'}, s.o.nonreaderPad)
	for tick := uint64(0); ; tick++ {
		select {
		case ack := <-s.freeze:
			close(ack)
			return
		case <-t.C:
		}
		if s.paused.Load() {
			continue
		}
		r := uint64(s.o.rate)
		t0 := time.Now()
		for _, c := range s.w.Connections() {
			st, ok := c.Value().(*connState)
			if !ok {
				continue
			}
			n := ((tick+1)*r+st.phase)/10 - (tick*r+st.phase)/10
			if kindName(st.kind) == kindNonreader {
				buf = s.push(c, st, buf, pad)
				continue
			}
			for range n {
				buf = s.push(c, st, buf, nil)
			}
		}
		d := int64(time.Since(t0))
		storeMax(&s.slowestTick, d)
		storeMax(&s.tickMaxNs, d)
		s.tickNs.Add(d)
		s.ticks.Add(1)
	}
}

func (s *soakServer) push(c *workerman.Connection, st *connState, buf, pad []byte) []byte {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.registered || st.finished || st.gone {
		return buf
	}
	buf = appendMsg(buf[:0], 'u', st.sent+1, uint64(time.Now().UnixNano()))
	if len(pad) > 0 {
		buf = append(append(buf, ' '), pad...)
	}
	switch err := c.Send(buf); {
	case err == nil:
		st.sent++
		s.unicastSent.Add(1)
	case errors.Is(err, workerman.ErrSendBufferFull):
		s.unicastDropped.Add(1)
	default:
		st.gone = true
	}
	return buf
}

// broadcaster numbers and sends a broadcast to every connection with
// Worker.Broadcast at a steady rate.
func (s *soakServer) broadcaster() {
	t := time.NewTicker(s.o.broadcastEvery)
	defer t.Stop()
	var buf []byte
	for range t.C {
		if s.paused.Load() {
			continue
		}
		s.bmu.Lock()
		s.bseq++
		cpu0 := selfCPU()
		busy0, all0 := machineCPU()
		t0 := time.Now()
		buf = appendMsg(buf[:0], 'b', s.bseq, uint64(t0.UnixNano()))
		n := s.w.Broadcast(buf)
		d := int64(time.Since(t0))
		busy1, all1 := machineCPU()
		s.broadcastCPU.Add(int64(selfCPU() - cpu0))
		s.broadcastBusy.Add(int64(busy1 - busy0))
		s.broadcastAll.Add(int64(all1 - all0))
		s.unlockBroadcast()
		storeMax(&s.slowestBroadcast, d)
		storeMax(&s.broadcastMaxNs, d)
		s.broadcastNs.Add(d)
		s.broadcasts.Add(1)
		s.broadcastTaken.Add(uint64(n))
	}
}

// freezeAndReport prepares the kill of a restart: it stops the pushes and
// the broadcasts for good, stops accepting, lets the queues of readers
// drain, and reports what was sent to every connection, one line each:
//
//	C <cid> <kind> <registered 0|1> <finished 0|1> <sent> <bstart> <blast>
//
// then FROZEN <count>. The suite checks what the clients got against it.
func (s *soakServer) freezeAndReport(say func(string, ...any)) {
	ack := make(chan struct{})
	s.freeze <- ack
	<-ack
	s.bmu.Lock() // never released: the process is about to be killed
	s.w.PauseAccept()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		queued := 0
		for _, c := range s.w.Connections() {
			if st, ok := c.Value().(*connState); ok && wellBehaved(kindName(st.kind)) {
				queued += c.SendQueueSize()
			}
		}
		if queued == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond) // bounded poll for the writers to drain
	}
	n := 0
	for _, c := range s.w.Connections() {
		st, ok := c.Value().(*connState)
		if !ok {
			continue
		}
		st.mu.Lock()
		say("C %s %s %d %d %d %d %d", st.cid, kindName(st.kind), b2i(st.registered), b2i(st.finished), st.sent, st.bStart, s.bseq)
		st.mu.Unlock()
		n++
	}
	say("FROZEN %d", n)
}

func storeMax(a *atomic.Int64, v int64) {
	for {
		m := a.Load()
		if v <= m || a.CompareAndSwap(m, v) {
			return
		}
	}
}

// selfCPU is the CPU time the process used so far, all threads, user and
// system.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memClass reads one of runtime/metrics' /memory/classes.
func memClass(name string) int64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *soakServer) stats() serverStats {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := serverStats{
		Goroutines:    runtime.NumGoroutine(),
		GoroutinePeak: s.goPeak.Load(),
		HeapInuse:     int64(ms.HeapInuse),
		HeapAlloc:     int64(ms.HeapAlloc),
		HeapObjects:   int64(ms.HeapObjects),
		StackInuse:    int64(ms.StackInuse),
		HeapUnused:    memClass("/memory/classes/heap/unused:bytes"),
		HeapFree:      memClass("/memory/classes/heap/free:bytes"),
		SpanMetadata:  memClass("/memory/classes/metadata/mspan/inuse:bytes") + memClass("/memory/classes/metadata/mspan/free:bytes"),
		Metadata: memClass("/memory/classes/metadata/mspan/inuse:bytes") + memClass("/memory/classes/metadata/mspan/free:bytes") +
			memClass("/memory/classes/metadata/mcache/inuse:bytes") + memClass("/memory/classes/metadata/mcache/free:bytes") +
			memClass("/memory/classes/metadata/other:bytes"),
		Conns:              s.w.ConnectionCount(),
		Open:               map[string]int64{},
		Accepted:           s.accepted.Load(),
		Upgraded:           s.upgraded.Load(),
		Drops:              map[string]uint64{},
		BufferFull:         map[string]uint64{},
		HeartbeatTimeouts:  map[string]uint64{},
		HandshakeTimeouts:  s.handshakeTimeouts.Load(),
		HandshakeErrors:    s.badHS.Load(),
		CloseErrors:        map[string]uint64{},
		OtherErrors:        map[string]uint64{},
		UnicastSent:        s.unicastSent.Load(),
		UnicastDropped:     s.unicastDropped.Load(),
		Broadcasts:         s.broadcasts.Load(),
		BroadcastTaken:     s.broadcastTaken.Load(),
		Byes:               s.byes.Load(),
		Unexpected:         s.unexpected.Load(),
		SlowestTickMs:      float64(s.slowestTick.Swap(0)) / 1e6,
		SlowestBroadcastMs: float64(s.slowestBroadcast.Swap(0)) / 1e6,
		BroadcastNs:        s.broadcastNs.Load(),
		BroadcastMaxNs:     s.broadcastMaxNs.Load(),
		BroadcastCPUNs:     s.broadcastCPU.Load(),
		BroadcastBusyNs:    s.broadcastBusy.Load(),
		BroadcastAllNs:     s.broadcastAll.Load(),
		Ticks:              s.ticks.Load(),
		TickNs:             s.tickNs.Load(),
		TickMaxNs:          s.tickMaxNs.Load(),
	}
	for i := range s.open {
		k := kindName(i)
		if i == len(kinds) {
			k = "none"
		}
		if v := s.open[i].Load(); v != 0 {
			st.Open[k] = v
		}
		if v := s.drops[i].Load(); v != 0 {
			st.Drops[k] = v
		}
		if v := s.bufferFull[i].Load(); v != 0 {
			st.BufferFull[k] = v
		}
		if v := s.heartbeats[i].Load(); v != 0 {
			st.HeartbeatTimeouts[k] = v
		}
	}
	s.errMu.Lock()
	for code, v := range s.closeErrs {
		st.CloseErrors[strconv.Itoa(code)] = v
	}
	for msg, v := range s.otherErrs {
		st.OtherErrors[msg] = v
	}
	s.errMu.Unlock()
	return st
}
