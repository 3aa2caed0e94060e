// Command soak is the soak-and-fault suite of the WebSocket server: it runs
// the plain library's websocket:// Worker in a child process, thousands of
// clients in other child processes, and faults (churn, clients that never
// read, slowloris handshakes, garbage, half-open peers behind a proxy,
// resets, a server kill and restart) for a while, then checks that every
// well-behaved client received every message sent to it, once and in
// order, reports delivery latency, and checks that the server's memory,
// goroutines and descriptors came back to their level before the faults.
//
//	cd bench && go run ./cmd/soak -ci              # 60 s, 500 clients (CI)
//	cd bench && go run ./cmd/soak                  # 5 min, 5,000 clients
//	cd bench && go run ./cmd/soak -duration 30m
//	cd bench && go run ./cmd/soak -ci -target push # against cmd/workerman-push
//
// With -target push the server under test is cmd/workerman-push, built and
// run by the suite, and a backend in the suite pushes the numbered
// messages through its HTTP API (push.go).
// It exits with status 1 when an assertion fails. See README.md beside
// this file for what is checked and how.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"time"
)

type options struct {
	ci             bool
	clients        int
	duration       time.Duration
	procs          int
	churn          int
	resetFrac      float64
	nonreaders     int
	slowloris      int
	garbage        int
	halfOpen       int
	restart        bool
	rate           int
	broadcastEvery time.Duration
	p99Budget      time.Duration
	latencyAssert  bool
	tolerance      float64
	rssSlack       int64
	verbose        bool
	target         string // "library" (the suite's own server role) or "push" (cmd/workerman-push)

	// Server settings.
	loops            int
	maxSendBuffer    int
	handshakeTimeout time.Duration
	ping             time.Duration
	pingLimit        int
	nonreaderPad     int
}

func main() {
	var (
		o    options
		role = flag.String("role", "", "internal: run as the server or a client process (server, steady, churn, faults)")
		addr = flag.String("addr", "127.0.0.1:0", "internal: the server's address")
		id   = flag.String("id", "", "internal: client process id")
		n    = flag.Int("n", 0, "internal: steady connections in this process")
		life = flag.Duration("nonreader-life", 15*time.Second, "internal: how long a non-reading client stays")
	)
	flag.BoolVar(&o.ci, "ci", false, "CI mode: 60 s with 500 clients (explicit -duration and -clients win)")
	flag.IntVar(&o.clients, "clients", 5000, "well-behaved long-lived clients (the faulty ones come on top)")
	flag.DurationVar(&o.duration, "duration", 5*time.Minute, "warm-up plus faults; setup and the final checks come on top")
	flag.IntVar(&o.procs, "procs", 0, "client processes for the long-lived clients (0: one per 1,500, at least 2)")
	flag.IntVar(&o.churn, "churn", 300, "short-lived connections opened (and closed) per second during the faults")
	flag.Float64Var(&o.resetFrac, "reset-frac", 0.25, "fraction of the churn that ends with an RST instead of a close")
	flag.IntVar(&o.nonreaders, "nonreaders", -1, "clients that never read (-1: 1% of -clients, at least 5)")
	flag.IntVar(&o.slowloris, "slowloris", 50, "slowloris handshakes kept open at any time")
	flag.IntVar(&o.garbage, "garbage", 20, "connections a second sending garbage instead of a handshake (or a bad frame after it)")
	flag.IntVar(&o.halfOpen, "halfopen", 20, "half-open peers per wave (0: none)")
	flag.BoolVar(&o.restart, "restart", true, "kill the server in the middle of the faults and start it again")
	flag.IntVar(&o.rate, "rate", 1, "server: unicast messages a second to each connection")
	flag.DurationVar(&o.broadcastEvery, "broadcast-every", time.Second, "server: interval of Worker.Broadcast")
	flag.DurationVar(&o.p99Budget, "p99-budget", 100*time.Millisecond, "budget for the p99 delivery latency during the faults")
	flag.BoolVar(&o.latencyAssert, "latency-assert", false, "make the latency budget a check that fails the run (by default it is reported: the machine is shared)")
	flag.Float64Var(&o.tolerance, "tolerance", 0.10, "how far RSS, goroutines and fds may end above their level before the faults (below is fine)")
	flag.Int64Var(&o.rssSlack, "rss-slack", 2<<20, "RSS may always end this many bytes above its level before (code pages first touched by the faults, tables sized for their peak): the tolerance matters at thousands of clients")
	flag.BoolVar(&o.verbose, "v", false, "log progress every 10 s")
	flag.StringVar(&o.target, "target", "library", "the server under test: library (the plain library's websocket:// Worker, the suite's own server role) or push (cmd/workerman-push, built and run, fed by a backend in the suite through its HTTP API)")
	flag.IntVar(&o.loops, "loops", 2, "server: event loops (Worker.Count)")
	flag.IntVar(&o.maxSendBuffer, "max-send-buffer", 256<<10, "server: Worker.MaxSendBufferSize")
	flag.DurationVar(&o.handshakeTimeout, "handshake-timeout", 5*time.Second, "server: WebSocket.HandshakeTimeout")
	flag.DurationVar(&o.ping, "ping", 3*time.Second, "server: WebSocket.PingInterval")
	flag.IntVar(&o.pingLimit, "ping-limit", 2, "server: WebSocket.PingNotResponseLimit")
	flag.IntVar(&o.nonreaderPad, "nonreader-pad", 64<<10, "server: padding of each message to a non-reading client")
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })

	switch *role {
	case "server":
		runServer(serverOptions{addr: *addr, loops: o.loops, rate: o.rate, broadcastEvery: o.broadcastEvery,
			maxSendBuffer: o.maxSendBuffer, handshakeTimeout: o.handshakeTimeout, ping: o.ping, pingLimit: o.pingLimit,
			nonreaderPad: o.nonreaderPad})
		return
	case "steady", "churn", "faults":
		co := clientOptions{role: *role, id: *id, addr: *addr, n: *n, churn: o.churn, resetFrac: o.resetFrac,
			nonreaders: o.nonreaders, nonreaderLife: *life, slowloris: o.slowloris, garbageRate: o.garbage,
			handshakeTimeout: o.handshakeTimeout, ping: o.ping, push: o.target == "push"}
		switch *role {
		case "steady":
			runSteady(co)
		case "churn":
			runChurn(co)
		default:
			runFaults(co)
		}
		return
	case "":
	default:
		log.Fatalf("unknown -role %q", *role)
	}

	if o.ci {
		if !set["duration"] {
			o.duration = 60 * time.Second
		}
		if !set["clients"] {
			o.clients = 500
		}
	}
	switch o.target {
	case "library":
	case "push":
		if set["handshake-timeout"] || set["max-send-buffer"] || set["ping-limit"] {
			log.Fatal("-target push: the push server's handshake timeout (10 s), send buffer (1 MiB) and ping limit (2) are fixed")
		}
		o.handshakeTimeout, o.maxSendBuffer, o.pingLimit = 10*time.Second, 1<<20, 2
	default:
		log.Fatalf("unknown -target %q (library or push)", o.target)
	}
	if o.nonreaders < 0 {
		o.nonreaders = max(5, o.clients/100)
	}
	if o.procs <= 0 {
		o.procs = max(2, (o.clients+1499)/1500)
	}
	if o.clients < o.procs || o.duration < 30*time.Second {
		log.Fatal("need -clients >= -procs and -duration >= 30s")
	}
	log.SetFlags(log.Ltime)
	log.SetPrefix("soak ")
	os.Exit(run(o))
}

// warmup is the part of -duration before the faults start: long enough
// for the steady load to settle.
func (o options) warmup() time.Duration {
	return min(30*time.Second, max(5*time.Second, o.duration/12))
}

// nonreaderLife: each non-reading client stays this long, then another
// takes its place (so that the restart does not end the fault).
func (o options) nonreaderLife() time.Duration {
	return min(15*time.Second, max(5*time.Second, (o.duration-o.warmup())/4))
}

// detectBound is how long the server may take to close a vanished peer:
// PingNotResponseLimit silent intervals, one more tick, the close's linger
// (2 s, internal/engine.LingerTimeout) and some slack.
func (o options) detectBound() time.Duration {
	return o.ping*time.Duration(o.pingLimit+1) + 2*time.Second + 3*time.Second
}

func human(n int64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 10<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
