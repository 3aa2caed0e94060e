package main

import (
	"encoding/json"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/workerman-go/workerman/bench/internal/procstat"
)

// suite is the orchestrator's state for one run.
type suite struct {
	o       options
	srv     atomic.Pointer[serverProc] // nil while the server restarts
	addr    string
	steady  []*child
	churn   []*child
	faults  *child
	clients []*child // all of the above

	before, after resources
	peak          resources
	peakMu        sync.Mutex

	restart  restartResult
	frozen   map[string]frozenConn
	waves    []waveResult
	settled  time.Duration
	settleOK bool
	setupT   time.Duration

	// CPU during the faults: the machine's (busy, total) and the suite's
	// processes', to tell a slow server from a busy machine.
	cpuBusy, cpuTotal, cpuSuite time.Duration
	cpuKilled                   time.Duration // the first server's, at the kill

	statsBefore serverStats // the first server's counters, taken before the kill
	statsEnd    serverStats
	reports     []clientReport
	fatal       []string // what stopped the run early
	crashed     bool

	pushLost uint64 // -target push: unicasts accepted but lost with the killed server (informative)
	// -target push: the binary, its temporary directory, the API address.
	pushBin, pushDir, pushAPI string
}

type restartResult struct {
	done                      bool
	freezeAt, killAt, readyAt time.Time
	reconnected               time.Duration // from the kill to all long-lived clients back
	reconnectedOK             bool
	frozenConns               int
}

type waveResult struct {
	mode     string
	conns    int
	detected bool
	took     time.Duration
}

func (s *suite) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	log.Print("FATAL: " + msg)
	s.fatal = append(s.fatal, msg)
}

func (s *suite) toClients(line string) {
	for _, c := range s.clients {
		c.send(line)
	}
}

func run(o options) int {
	s := &suite{o: o}
	start := time.Now()
	log.Printf("%d long-lived clients in %d processes, %v (warm-up %v, then faults), churn %d/s (%.0f%% resets), %d non-readers, %d slowloris, %d garbage/s, half-open waves of %d, restart %v",
		o.clients, o.procs, o.duration, o.warmup(), o.churn, o.resetFrac*100, o.nonreaders, o.slowloris, o.garbage, o.halfOpen, o.restart)
	defer s.cleanup()
	if !s.setup() {
		return s.finish()
	}
	s.setupT = time.Since(start)
	log.Printf("set up in %v: %d clients connected", s.setupT.Round(time.Millisecond), o.clients)

	// Warm-up: the steady load alone, then the level before the faults.
	if !s.wait(time.Now().Add(o.warmup())) {
		return s.finish()
	}
	if !s.waitSettled(20 * time.Second) {
		s.fail("before the faults the server did not hold exactly the %d long-lived clients", o.clients)
		return s.finish()
	}
	var err error
	s.toClients("PHASE " + phaseNames[phaseMeasuring])
	if s.before, err = s.srv.Load().measure("before"); err != nil {
		s.fail("measuring before: %v", err)
		return s.finish()
	}
	log.Printf("before: RSS %s, %s goroutines, %d fds, %d connections", human(s.before.RSS), goroutines(s.before.Goroutines), s.before.FDs, s.before.Conns)

	// Faults.
	stopSampler := s.sample()
	busy0, total0 := machineCPU()
	suite0 := s.suiteCPU()
	s.toClients("PHASE " + phaseNames[phaseFaults])
	for _, c := range append(append([]*child{}, s.churn...), s.faults) {
		c.send("START")
	}
	s.faultLoop(time.Now().Add(o.duration - o.warmup()))
	for _, c := range append(append([]*child{}, s.churn...), s.faults) {
		c.send("STOP")
	}
	busy1, total1 := machineCPU()
	s.cpuBusy, s.cpuTotal, s.cpuSuite = busy1-busy0, total1-total0, s.suiteCPU()+s.cpuKilled-suite0
	s.toClients("PHASE " + phaseNames[phaseRecovery])
	log.Printf("faults stopped")

	// Recovery: the server must come back to the long-lived clients alone,
	// and to its level before.
	if s.srv.Load() != nil {
		t0 := time.Now()
		s.settleOK = s.waitSettled(30*time.Second + o.detectBound())
		s.settled = time.Since(t0)
		s.measureAfter()
	}
	stopSampler()
	s.collect()
	return s.finish()
}

// setup starts the server and the client processes and waits for every
// long-lived client to be connected.
func (s *suite) setup() bool {
	o := s.o
	srv, err := s.startServer("127.0.0.1:0")
	if err != nil {
		s.fail("starting the server: %v", err)
		return false
	}
	s.srv.Store(srv)
	s.addr = srv.addr
	common := []string{"-addr", s.addr, "-ping", o.ping.String(), "-handshake-timeout", o.handshakeTimeout.String(), "-target", o.target}
	for i := range o.procs {
		n := o.clients / o.procs
		if i < o.clients%o.procs {
			n++
		}
		c, err := spawn(fmt.Sprintf("steady%d", i), append([]string{"-role", "steady", "-id", fmt.Sprintf("s%d", i), "-n", strconv.Itoa(n)}, common...)...)
		if err != nil {
			s.fail("starting a client process: %v", err)
			return false
		}
		s.steady = append(s.steady, c)
	}
	for i := range max(1, (o.churn+399)/400) {
		rate := o.churn / max(1, (o.churn+399)/400)
		c, err := spawn(fmt.Sprintf("churn%d", i), append([]string{"-role", "churn", "-id", fmt.Sprintf("c%d", i),
			"-churn", strconv.Itoa(rate), "-reset-frac", fmt.Sprint(o.resetFrac)}, common...)...)
		if err != nil {
			s.fail("starting a client process: %v", err)
			return false
		}
		s.churn = append(s.churn, c)
	}
	f, err := spawn("faults", append([]string{"-role", "faults", "-id", "f", "-nonreaders", strconv.Itoa(o.nonreaders),
		"-nonreader-life", o.nonreaderLife().String(), "-slowloris", strconv.Itoa(o.slowloris), "-garbage", strconv.Itoa(o.garbage)}, common...)...)
	if err != nil {
		s.fail("starting a client process: %v", err)
		return false
	}
	s.faults = f
	s.clients = append(append(append([]*child{}, s.steady...), s.churn...), s.faults)
	for _, c := range s.steady {
		if _, err := c.expect("UP ", 60*time.Second+time.Duration(o.clients)*5*time.Millisecond); err != nil {
			s.fail("connecting the long-lived clients: %v", err)
			return false
		}
	}
	return true
}

// startServer starts the server under test on addr: the suite's own
// server role, or (-target push) cmd/workerman-push, built on the first
// call, with the backend that feeds it.
func (s *suite) startServer(addr string) (*serverProc, error) {
	if s.o.target != "push" {
		return startServer(s.o, addr)
	}
	if s.pushBin == "" {
		dir, err := os.MkdirTemp("", "soak-push-")
		if err != nil {
			return nil, err
		}
		s.pushDir = dir
		t0 := time.Now()
		if s.pushBin, err = buildPush(dir); err != nil {
			return nil, err
		}
		log.Printf("built cmd/workerman-push in %v", time.Since(t0).Round(time.Millisecond))
		if addr, err = freePort(); err != nil {
			return nil, err
		}
		if s.pushAPI, err = freePort(); err != nil {
			return nil, err
		}
		backend = newPushBackend(s.o, s.pushAPI)
		pushHook = backend.line
	}
	return startPush(s.o, s.pushBin, addr, s.pushAPI)
}

// suiteCPU is the CPU time the server and the client processes used.
func (s *suite) suiteCPU() time.Duration {
	d := procstat.CPU(os.Getpid()) // the proxies run here
	for _, c := range s.clients {
		d += procstat.CPU(c.pid())
	}
	if srv := s.srv.Load(); srv != nil {
		d += procstat.CPU(srv.pid())
	}
	return d
}

// wait paces the run until t; false if the server died meanwhile.
func (s *suite) wait(t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	srv := s.srv.Load()
	if srv == nil {
		<-timer.C
		return true
	}
	select {
	case <-timer.C:
		return true
	case <-srv.exited:
		s.crashed = true
		s.fail("the server process exited unexpectedly")
		return false
	}
}

// waitSettled polls the server until it holds the long-lived clients and
// nothing else; false if that did not happen within d.
func (s *suite) waitSettled(d time.Duration) bool {
	if s.o.target == "push" {
		// The push server tells only how many clients it holds (welcomed).
		return s.poll(d, func(st serverStats) bool { return st.Conns == s.o.clients })
	}
	return s.poll(d, func(st serverStats) bool {
		for k, v := range st.Open {
			if (k == kindSteady && v != int64(s.o.clients)) || (k != kindSteady && v != 0) {
				return false
			}
		}
		return st.Conns == s.o.clients && st.Open[kindSteady] == int64(s.o.clients)
	})
}

// poll asks the server for its counters every 250 ms until cond holds or d
// has passed.
func (s *suite) poll(d time.Duration, cond func(serverStats) bool) bool {
	deadline := time.Now().Add(d)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		srv := s.srv.Load()
		if srv == nil || !srv.alive() {
			return false
		}
		if st, err := srv.stats(); err == nil && cond(st) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		<-t.C
	}
}

// sample keeps the peak of the server's resources during the faults.
func (s *suite) sample() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			srv := s.srv.Load()
			if srv == nil {
				continue
			}
			st, err := srv.stats()
			if err != nil {
				continue
			}
			r := resources{RSS: procstat.RSS(srv.pid()), FDs: countFDs(srv.pid()), Goroutines: st.Goroutines, Conns: st.Conns}
			s.peakMu.Lock()
			s.peak.RSS, s.peak.FDs = max(s.peak.RSS, r.RSS), max(s.peak.FDs, r.FDs)
			s.peak.Goroutines, s.peak.Conns = max(s.peak.Goroutines, r.Goroutines), max(s.peak.Conns, r.Conns)
			newPeak := st.HeapInuse > s.peak.HeapInuse+s.peak.HeapInuse/10
			s.peak.HeapInuse = max(s.peak.HeapInuse, st.HeapInuse)
			s.peakMu.Unlock()
			if dir := os.Getenv("SOAK_PROFILE_DIR"); dir != "" && newPeak && !srv.push {
				// What the heap is made of at its peak: the runtime's own
				// structures stay sized for it.
				srv.request(fmt.Sprintf("HEAPPROFILE %s/peak-%d.pprof", dir, srv.pid()), "PROFILED", 30*time.Second)
			}
			if s.o.verbose && time.Since(last) >= time.Second {
				last = time.Now()
				if s.o.target == "push" {
					log.Printf("push server: RSS %s, %d fds, %d clients", human(r.RSS), r.FDs, r.Conns)
					continue
				}
				b, _ := json.Marshal(st.Open)
				log.Printf("server: RSS %s, %d goroutines, %d fds, %d connections %s, drops %v, slowest push round %.1f ms, slowest broadcast %.1f ms",
					human(r.RSS), r.Goroutines, r.FDs, r.Conns, b, st.Drops, st.SlowestTickMs, st.SlowestBroadcastMs)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// faultLoop runs the fault phase until end: the churn and the bad clients
// run by themselves in their processes; here, half-open waves one after
// another and the restart in the middle, never overlapping.
func (s *suite) faultLoop(end time.Time) {
	o := s.o
	restartAt := time.Now().Add(time.Until(end) / 2)
	pendingRestart := o.restart
	waveBudget := 5*time.Second + o.detectBound()
	nextWave := time.Now().Add(2 * time.Second)
	for wave := 0; ; {
		now := time.Now()
		if !now.Before(end) || len(s.fatal) > 0 {
			return
		}
		limit := end
		if pendingRestart {
			limit = restartAt
			if !now.Before(restartAt) {
				s.doRestart()
				pendingRestart = false
				continue
			}
		}
		if o.halfOpen > 0 && !now.Before(nextWave) && now.Add(waveBudget).Before(limit) {
			s.runWave(wave)
			wave++
			nextWave = time.Now().Add(2 * time.Second)
			continue
		}
		wake := limit
		if o.halfOpen > 0 && nextWave.After(now) && nextWave.Add(waveBudget).Before(limit) {
			wake = nextWave
		}
		if !s.wait(wake) {
			return
		}
	}
}

// runWave connects a wave of half-open peers through a new proxy, lets
// them receive for a moment, makes them vanish and measures how long the
// server takes to close all of them.
func (s *suite) runWave(wave int) {
	mode := []string{"blackhole", "timeout"}[wave%2]
	res := waveResult{mode: mode}
	defer func() { s.waves = append(s.waves, res) }()
	if s.o.target == "push" {
		s.runPushWave(wave, mode, &res)
		return
	}
	srv := s.srv.Load()
	st0, err := srv.stats()
	if err != nil {
		return
	}
	base := st0.Open[kindHalfOpen]
	px, err := newHalfOpenProxy(fmt.Sprintf("halfopen%d", wave), s.addr)
	if err != nil {
		s.fail("proxy: %v", err)
		return
	}
	defer px.close()
	name := strconv.Itoa(wave)
	s.faults.send(fmt.Sprintf("HALFOPEN %s %s %d", name, px.addr(), s.o.halfOpen))
	got, err := s.faults.expect("HALFOPEN-UP "+name+" ", 30*time.Second)
	if err != nil {
		s.fail("half-open wave %d: %v", wave, err)
		return
	}
	res.conns, _ = strconv.Atoi(strings.TrimSpace(got))
	s.poll(5*time.Second, func(st serverStats) bool { return st.Open[kindHalfOpen] >= base+int64(res.conns) })
	if !s.wait(time.Now().Add(1500 * time.Millisecond)) { // they receive normally for a moment
		return
	}
	if err := px.vanish(mode); err != nil {
		s.fail("%v", err)
		return
	}
	s.faults.send("VANISH " + name)
	t0 := time.Now()
	res.detected = s.poll(s.o.detectBound(), func(st serverStats) bool { return st.Open[kindHalfOpen] <= base })
	res.took = time.Since(t0)
	s.faults.send("HALFOPEN-END " + name)
	if s.o.verbose {
		log.Printf("half-open wave %d (%s, %d peers): closed by the server: %v after %v", wave, mode, res.conns, res.detected, res.took.Round(time.Millisecond))
	}
}

// runPushWave is runWave against the push server, which cannot count
// connections by kind: the wave's clients report their client IDs, and the
// suite asks isOnline for each until none is.
func (s *suite) runPushWave(wave int, mode string, res *waveResult) {
	px, err := newHalfOpenProxy(fmt.Sprintf("halfopen%d", wave), s.addr)
	if err != nil {
		s.fail("proxy: %v", err)
		return
	}
	defer px.close()
	name := strconv.Itoa(wave)
	s.faults.send(fmt.Sprintf("HALFOPEN %s %s %d", name, px.addr(), s.o.halfOpen))
	got, err := s.faults.expect("HALFOPEN-UP "+name+" ", 30*time.Second)
	if err != nil {
		s.fail("half-open wave %d: %v", wave, err)
		return
	}
	res.conns, _ = strconv.Atoi(strings.TrimSpace(got))
	prefix := "f.h" + name + "." // the faults process's cids of this wave (runFaults)
	var ids []string
	deadline := time.Now().Add(5 * time.Second)
	for len(ids) < res.conns && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // bounded wait for their welcomes to be reported
		ids = backend.idsWithPrefix(prefix)
	}
	if len(ids) < res.conns {
		s.fail("half-open wave %d: %d connected, %d reported a client ID", wave, res.conns, len(ids))
		return
	}
	if !s.wait(time.Now().Add(1500 * time.Millisecond)) { // they receive normally for a moment
		return
	}
	if err := px.vanish(mode); err != nil {
		s.fail("%v", err)
		return
	}
	s.faults.send("VANISH " + name)
	t0 := time.Now()
	res.detected = s.pollFn(s.o.detectBound(), func() bool {
		for _, id := range ids {
			if on, err := backend.online(id); err != nil || on {
				return false
			}
		}
		return true
	})
	res.took = time.Since(t0)
	s.faults.send("HALFOPEN-END " + name)
	if s.o.verbose {
		log.Printf("half-open wave %d (%s, %d peers): closed by the push server: %v after %v", wave, mode, res.conns, res.detected, res.took.Round(time.Millisecond))
	}
}

// pollFn checks cond every 250 ms until it holds or d has passed; false
// also when the server is down.
func (s *suite) pollFn(d time.Duration, cond func() bool) bool {
	return s.poll(d, func(serverStats) bool { return cond() })
}

// doRestartPush kills the push server (kill -9) in the middle of the
// faults and starts it again on the same ports. Nothing is resumed
// without history: the backend stops pushing first and keeps what it had
// sent to each client, so that each client's messages before the kill can
// be checked as a prefix of those; the clients reconnect, get new client
// IDs, and everything after is checked as before.
func (s *suite) doRestartPush() {
	old := s.srv.Load()
	s.faults.send("RESTART 1")
	defer s.faults.send("RESTART 0")
	s.restart.freezeAt = time.Now()
	s.restart.frozenConns = backend.freeze()
	s.srv.Store(nil)
	s.cpuKilled = procstat.CPU(old.pid())
	old.kill()
	s.restart.killAt = time.Now()
	srv, err := s.startServer(s.addr)
	if err != nil {
		s.fail("restart: starting the push server again on %s: %v", s.addr, err)
		return
	}
	backend.thaw()
	s.restart.readyAt = time.Now()
	s.srv.Store(srv)
	s.restart.done = true
	s.restart.reconnectedOK = s.pollFn(30*time.Second, func() bool { return backend.steadyBackSince(s.restart.killAt) >= s.o.clients })
	s.restart.reconnected = time.Since(s.restart.killAt)
	log.Printf("restart: push server killed (kill -9) with %d clients, listening again after %v, all %d long-lived clients back after %v",
		s.restart.frozenConns, s.restart.readyAt.Sub(s.restart.killAt).Round(time.Millisecond), s.o.clients, s.restart.reconnected.Round(time.Millisecond))
}

// doRestart kills the server in the middle of the faults and starts it
// again on the same address. Before the kill the server stops pushing and
// reports what it sent to each connection, so that what each client got
// can be checked exactly although the server dies.
func (s *suite) doRestart() {
	if s.o.target == "push" {
		s.doRestartPush()
		return
	}
	old := s.srv.Load()
	if st, err := old.stats(); err == nil {
		s.statsBefore = st
	}
	s.faults.send("RESTART 1")
	defer s.faults.send("RESTART 0")
	s.restart.freezeAt = time.Now()
	frozen, err := old.freeze()
	if err != nil {
		s.fail("restart: %v", err)
		return
	}
	s.frozen = frozen
	s.restart.frozenConns = len(frozen)
	s.srv.Store(nil)
	s.cpuKilled = procstat.CPU(old.pid())
	old.kill()
	s.restart.killAt = time.Now()
	srv, err := s.startServer(s.addr)
	if err != nil {
		s.fail("restart: starting the server again on %s: %v", s.addr, err)
		return
	}
	s.restart.readyAt = time.Now()
	s.srv.Store(srv)
	s.restart.done = true
	budget := 30 * time.Second
	s.restart.reconnectedOK = s.poll(budget, func(st serverStats) bool { return st.Open[kindSteady] >= int64(s.o.clients) })
	s.restart.reconnected = time.Since(s.restart.killAt)
	log.Printf("restart: killed after freezing %d connections, listening again after %v, all %d long-lived clients back after %v",
		len(frozen), s.restart.readyAt.Sub(s.restart.killAt).Round(time.Millisecond), s.o.clients, s.restart.reconnected.Round(time.Millisecond))
}

// measureAfter reads the server's level after the faults, again and again
// (bounded) until it is within the tolerance of the level before.
func (s *suite) measureAfter() {
	srv := s.srv.Load()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s.toClients("PHASE " + phaseNames[phaseMeasuring])
		r, err := srv.measure("after")
		s.toClients("PHASE " + phaseNames[phaseRecovery])
		if err != nil {
			s.fail("measuring after: %v", err)
			return
		}
		s.after = r
		if s.withinTolerance() || time.Now().After(deadline) {
			break
		}
		if !s.wait(time.Now().Add(time.Second)) {
			return
		}
	}
	log.Printf("after: RSS %s, %s goroutines, %d fds, %d connections", human(s.after.RSS), goroutines(s.after.Goroutines), s.after.FDs, s.after.Conns)
}

func within(after, before int64, tol float64) bool {
	return withinSlack(after, before, tol, 0)
}

// withinSlack: after is at most tol above before, or at most slack above
// it. Below is always fine: the checks look for what the faults left
// behind, and the level after is read with the traffic stopped, when the
// callback pool's idle goroutines have expired (175 before, 12 after in a
// 30-minute run) and the runtime may have returned memory.
func withinSlack(after, before int64, tol float64, slack int64) bool {
	d := after - before
	return d <= 0 || float64(d) <= tol*float64(before) || d <= slack
}

func (s *suite) withinTolerance() bool {
	return withinSlack(s.after.RSS, s.before.RSS, s.o.tolerance, s.o.rssSlack) &&
		(s.after.Goroutines < 0 || within(int64(s.after.Goroutines), int64(s.before.Goroutines), s.o.tolerance)) &&
		within(int64(s.after.FDs), int64(s.before.FDs), s.o.tolerance)
}

// collect ends the clients: each long-lived one asks the server what it
// sent and checks it; then every process reports.
func (s *suite) collect() {
	if srv := s.srv.Load(); srv != nil {
		if st, err := srv.stats(); err == nil {
			s.statsEnd = st
		}
	}
	s.toClients("PHASE " + phaseNames[phaseMeasuring]) // the end: byes from everyone at once
	s.toClients("FINISH")
	for _, c := range s.clients {
		l, err := c.expect("REPORT ", 90*time.Second)
		if err != nil {
			s.fail("%v", err)
			continue
		}
		var r clientReport
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			s.fail("%s: bad report: %v", c.name, err)
			continue
		}
		s.reports = append(s.reports, r)
	}
	if srv := s.srv.Load(); srv != nil {
		if st, err := srv.stats(); err == nil {
			s.statsEnd = st
		}
		if !srv.alive() {
			s.crashed = true
		}
	}
}

func (s *suite) cleanup() {
	for _, c := range s.clients {
		if c != nil && c.alive() {
			c.stop(10 * time.Second)
		}
	}
	if srv := s.srv.Load(); srv != nil && srv.alive() {
		srv.stop(15 * time.Second)
	}
	if backend != nil {
		backend.close()
	}
	if s.pushDir != "" {
		os.RemoveAll(s.pushDir)
	}
}

// goroutines prints a goroutine count, n/a when the server does not tell
// it (-target push).
func goroutines(n int) string {
	if n < 0 {
		return "n/a"
	}
	return strconv.Itoa(n)
}
