// Command bench runs the benchmark suite: each server implementation in its
// own process pinned to CPU 0, the load generator pinned to CPU 1, several
// rounds with the implementations interleaved, medians reported with ratios
// against a baseline measured in the same run.
//
//	cd bench && go run ./cmd/bench            # everything: results/results.md and charts
//	cd bench && go run ./cmd/bench -smoke     # tiny sizes: checks that the suite runs
//
// Single scenarios: -only idle|echo|broadcast|storm, -proto tcp|websocket|wss;
// some servers only: -servers workerman,workerman-uring.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

type options struct {
	rounds    int
	duration  time.Duration
	idleConns []int
	echoConns []int
	sizes     []int
	inflight  []int
	bcastConn int
	bcastN    int
	stormConn int
	stormPar  int
	bin       string
	settle    time.Duration
}

var (
	wsServers  = []string{"workerman", uringServer, "gorilla", "gobwas", "nbio"}
	tcpServers = []string{"workerman", uringServer, "netconn", "gnet"}
	// wss: the WebSocket servers over TLS.
	wssServers = []string{"workerman", uringServer, "gorilla", "gobwas", "nbio"}
)

// uringServer is our server on the io_uring engine: the workerman
// benchserver run with WORKERMAN_ENGINE=io_uring.
const uringServer = "workerman-uring"

func main() {
	var (
		opt   options
		only  = flag.String("only", "", "run one scenario: idle, echo, broadcast or storm")
		proto = flag.String("proto", "", "run one protocol: tcp, websocket or wss (WebSocket over TLS)")
		idle  = flag.String("idle-conns", "1000,5000,10000,15000", "idle WebSocket connection counts")
		idleT = flag.Int("idle-tcp", 10000, "idle TCP connections (0: skip)")
		idleS = flag.Int("idle-wss", 8000, "idle wss:// connections (0: skip)")
		echo  = flag.String("echo-conns", "100,1000", "echo connection counts")
		sizes = flag.String("sizes", "64,4096", "echo payload sizes")
		infl  = flag.String("inflight", "1,16", "echo messages in flight per connection")
		out   = flag.String("out", "results", "directory for results.md and the charts (empty: stdout only)")
		smoke = flag.Bool("smoke", false, "tiny sizes, one round: checks that the suite runs")
		rep0  = flag.String("replot", "", "make results.md and the charts again from this results.json, without measuring")
		impls = flag.String("servers", "", "comma-separated servers to run (empty: all); the baselines gorilla and netconn are always run")
	)
	flag.IntVar(&opt.rounds, "rounds", 3, "rounds per measurement (medians reported)")
	flag.DurationVar(&opt.duration, "duration", 1500*time.Millisecond, "echo measurement time per round")
	flag.DurationVar(&opt.settle, "settle", 2200*time.Millisecond, "idle time before the memory of idle connections is measured")
	flag.IntVar(&opt.bcastConn, "broadcast-conns", 10000, "clients that receive each broadcast")
	flag.IntVar(&opt.bcastN, "broadcasts", 10, "broadcasts measured per round")
	flag.IntVar(&opt.stormConn, "storm-conns", 10000, "clients in the connect storm")
	flag.IntVar(&opt.stormPar, "storm-parallel", 500, "clients connecting at any moment in the storm")
	flag.Parse()
	opt.idleConns, opt.echoConns, opt.sizes, opt.inflight = ints(*idle), ints(*echo), ints(*sizes), ints(*infl)
	if *impls != "" {
		wsServers, tcpServers = onlyServers(wsServers, *impls, "gorilla"), onlyServers(tcpServers, *impls, "netconn")
		wssServers = onlyServers(wssServers, *impls, "gorilla")
	}
	if *smoke {
		opt.rounds, opt.duration = 1, 300*time.Millisecond
		opt.idleConns, opt.echoConns, opt.sizes, opt.inflight = []int{50}, []int{4}, []int{64}, []int{1}
		opt.bcastConn, opt.bcastN, opt.stormConn, opt.stormPar = 50, 3, 200, 50
		opt.settle = 0
		if *out == "results" {
			*out = ""
		}
	}
	if *rep0 != "" {
		rep, err := loadReport(*rep0)
		if err != nil {
			log.Fatal(err)
		}
		write(rep, *out)
		return
	}
	pinSelf()

	dir, err := os.MkdirTemp("", "bench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	opt.bin = filepath.Join(dir, "benchserver")
	build := exec.Command("go", "build", "-o", opt.bin, "./cmd/benchserver")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		log.Fatalf("building benchserver: %v", err)
	}

	rep := newReport(opt)
	run := func(name, p string) bool {
		return (*only == "" || *only == name) && (*proto == "" || *proto == p)
	}
	started := time.Now()
	if run("idle", "websocket") {
		for _, n := range opt.idleConns {
			runIdle(opt, rep, "websocket", wsServers, n)
		}
	}
	if run("idle", "tcp") && *idleT > 0 {
		if *smoke {
			*idleT = 50
		}
		runIdle(opt, rep, "tcp", tcpServers, *idleT)
	}
	if run("idle", "wss") && *idleS > 0 {
		if *smoke {
			*idleS = 50
		}
		runIdle(opt, rep, "wss", wssServers, *idleS)
	}
	if run("echo", "websocket") {
		runEchoMatrix(opt, rep, "websocket", wsServers, "gorilla")
	}
	if run("echo", "tcp") {
		runEchoMatrix(opt, rep, "tcp", tcpServers, "netconn")
	}
	if run("broadcast", "websocket") {
		runBroadcast(opt, rep, wsServers)
	}
	if run("echo", "wss") {
		runEchoMatrix(opt, rep, "wss", wssServers, "gorilla")
	}
	if run("storm", "websocket") {
		runStorm(opt, rep, "websocket", wsServers)
	}
	if run("storm", "wss") {
		runStorm(opt, rep, "wss", wssServers)
	}
	rep.Took = time.Since(started)
	write(rep, *out)
}

// onlyServers keeps the servers named in list (comma-separated), and the
// baseline.
func onlyServers(all []string, list, baseline string) []string {
	keep := []string{}
	want := strings.Split(list, ",")
	for _, s := range all {
		if s == baseline || slices.Contains(want, s) {
			keep = append(keep, s)
		}
	}
	return keep
}

// write prints the tables and, with an output directory, saves them with the
// raw samples and the charts.
func write(rep *report, out string) {
	md := rep.markdown()
	fmt.Print(md)
	if out == "" {
		return
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "results.md"), []byte(md), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := rep.save(filepath.Join(out, "results.json")); err != nil {
		log.Fatal(err)
	}
	if err := rep.charts(out); err != nil {
		log.Fatalf("charts: %v", err)
	}
	log.Printf("wrote %s/results.md, results.json and charts", out)
}

// pinSelf re-runs the process on CPU 1 so that the load generator and the
// server (on CPU 0) do not share a core.
func pinSelf() {
	if os.Getenv("BENCH_PINNED") != "" || !haveTaskset || runtime.NumCPU() < 2 {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	cmd := exec.Command("taskset", append([]string{"-c", "1", exe}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), "BENCH_PINNED=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			os.Exit(ee.ExitCode())
		}
		log.Fatal(err)
	}
	os.Exit(0)
}

func serverCPU() int {
	if runtime.NumCPU() < 2 {
		return -1
	}
	return 0
}

// rounds runs f for every server, opt.rounds times, servers interleaved so
// that a noisy moment of the machine hits all of them alike.
func rounds(opt options, rep *report, sc *scenario, servers []string, proto string, f func(s *server) error) {
	for round := 0; round < opt.rounds; round++ {
		for _, impl := range servers {
			s, err := startServer(opt.bin, impl, proto, serverCPU())
			if err != nil {
				rep.fail(sc, impl, err)
				continue
			}
			if err := f(s); err != nil {
				rep.fail(sc, impl, err)
			}
			s.stop()
		}
	}
}

// warmConns connections are opened and closed before the baseline of an
// idle measurement is read, warmSettle before it.
const (
	warmConns  = 50
	warmSettle = 300 * time.Millisecond
)

// runIdle measures resident memory per idle connection.
func runIdle(opt options, rep *report, proto string, servers []string, n int) {
	baseline := "gorilla"
	if proto == "tcp" {
		baseline = "netconn"
	}
	sc := rep.scenario(fmt.Sprintf("idle %s connections: %s", proto, thousands(n)), baseline, "bytes/conn", lower)
	if proto == "websocket" {
		sc.Chart, sc.Group = "idle", thousands(n)
	}
	rounds(opt, rep, sc, servers, proto, func(s *server) error {
		// The baseline is a server that has served connections like the
		// ones measured (handshake, an echo, a close): what it pages in
		// once, its code and pools, is not a cost per connection.
		warm, err := dialMany(proto, s.addr, warmConns, warmConns)
		closeAll(warm)
		if err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		time.Sleep(warmSettle) // the server sees the closes
		if err := s.gc(); err != nil {
			return err
		}
		base := s.rss()
		conns, err := dialMany(proto, s.addr, n, 200)
		defer closeAll(conns)
		if err != nil {
			return err
		}
		raw := s.rss()
		// Idle means idle: let what served the burst of handshakes settle
		// (goroutine pools release idle workers after a second), the same
		// wait for every server.
		time.Sleep(opt.settle)
		if err := s.gc(); err != nil {
			return err
		}
		rep.add(sc, s.impl, "bytes/conn", float64(s.rss()-base)/float64(n))
		rep.add(sc, s.impl, "bytes/conn before GC", float64(raw-base)/float64(n))
		return nil
	})
}

func runEchoMatrix(opt options, rep *report, proto string, servers []string, baseline string) {
	for _, n := range opt.echoConns {
		for _, size := range opt.sizes {
			for _, k := range opt.inflight {
				name := fmt.Sprintf("echo %s %s, %s connections, %d in flight", proto, sizeName(size), thousands(n), k)
				sc := rep.scenario(name, baseline, "server µs CPU/msg", lower)
				sc.Chart = "echo-" + proto
				sc.Group = fmt.Sprintf("%s ×%s ×%d", sizeName(size), thousands(n), k)
				rounds(opt, rep, sc, servers, proto, func(s *server) error {
					msgs, cpu, elapsed, err := echoLoad(proto, s, n, size, k, opt.duration)
					if err != nil {
						return err
					}
					rep.add(sc, s.impl, "msg/s", float64(msgs)/elapsed.Seconds())
					rep.add(sc, s.impl, "server µs CPU/msg", float64(cpu.Microseconds())/float64(msgs))
					return nil
				})
			}
		}
	}
}

// runBroadcast pushes a 100-byte message to every client and times the
// arrival at the last one.
func runBroadcast(opt options, rep *report, servers []string) {
	sc := rep.scenario(fmt.Sprintf("broadcast of 100 B to %s WebSocket clients", thousands(opt.bcastConn)), "gorilla", "p50 ms to the last client", lower)
	sc.Chart = "broadcast"
	rounds(opt, rep, sc, servers, "websocket", func(s *server) error {
		samples, err := broadcastLoad(s, opt.bcastConn, opt.bcastN)
		if err != nil {
			return err
		}
		for _, d := range samples {
			ms := float64(d.Microseconds()) / 1000
			rep.add(sc, s.impl, "p50 ms to the last client", ms)
			rep.add(sc, s.impl, "p99 ms to the last client", ms)
			rep.add(sc, s.impl, "deliveries/s", float64(opt.bcastConn)/d.Seconds())
		}
		return nil
	})
	sc.Percentile["p99 ms to the last client"] = 0.99
}

// runStorm connects many clients, some hundreds at a time, and measures how
// fast the server accepts and upgrades them.
func runStorm(opt options, rep *report, proto string, servers []string) {
	kind := "WebSocket"
	if proto == "wss" {
		kind = "wss://"
	}
	sc := rep.scenario(fmt.Sprintf("connect storm: %s %s clients, %d connecting at a time", thousands(opt.stormConn), kind, opt.stormPar), "gorilla", "connections/s", higher)
	if proto == "websocket" {
		sc.Chart = "storm"
	}
	rounds(opt, rep, sc, servers, proto, func(s *server) error {
		c0 := s.cpu()
		start := time.Now()
		conns, err := dialMany(proto, s.addr, opt.stormConn, opt.stormPar)
		el := time.Since(start)
		cpu := s.cpu() - c0
		closeAll(conns)
		if err != nil {
			return err
		}
		rep.add(sc, s.impl, "connections/s", float64(opt.stormConn)/el.Seconds())
		rep.add(sc, s.impl, "server µs CPU/connection", float64(cpu.Microseconds())/float64(opt.stormConn))
		return nil
	})
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			log.Fatalf("bad number %q", f)
		}
		out = append(out, n)
	}
	return out
}

func thousands(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

func sizeName(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}
