// Command bench runs the benchmark suite: each server implementation in its
// own process pinned to CPU 0, the load generator pinned to CPU 1, several
// rounds with the implementations interleaved, medians reported with ratios
// against a baseline measured in the same run.
//
//	cd bench && go run ./cmd/bench -scenarios idle,echo -proto tcp
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

type options struct {
	impls     []string
	baseline  string
	proto     string
	rounds    int
	duration  time.Duration
	idleConns []int
	echoConns []int
	sizes     []int
	inflight  []int
	out       string
	bin       string
}

func main() {
	var (
		opt       options
		impls     = flag.String("impls", "workerman,netconn", "servers to compare")
		scenarios = flag.String("scenarios", "idle,echo", "idle, echo")
		idle      = flag.String("idle-conns", "10000", "idle connection counts")
		echo      = flag.String("echo-conns", "100", "echo connection counts")
		sizes     = flag.String("sizes", "64", "echo payload sizes")
		inflight  = flag.String("inflight", "1", "echo messages in flight per connection")
		smoke     = flag.Bool("smoke", false, "tiny sizes, one round: checks that the suite runs")
	)
	flag.StringVar(&opt.baseline, "baseline", "netconn", "server the ratios compare against")
	flag.StringVar(&opt.proto, "proto", "tcp", "tcp or websocket")
	flag.IntVar(&opt.rounds, "rounds", 3, "rounds per measurement (median reported)")
	flag.DurationVar(&opt.duration, "duration", 3*time.Second, "echo measurement time per round")
	flag.StringVar(&opt.out, "out", "", "also write the markdown table to this file")
	flag.Parse()
	opt.impls = strings.Split(*impls, ",")
	opt.idleConns = ints(*idle)
	opt.echoConns = ints(*echo)
	opt.sizes = ints(*sizes)
	opt.inflight = ints(*inflight)
	if *smoke {
		opt.rounds, opt.duration = 1, 300*time.Millisecond
		opt.idleConns, opt.echoConns = []int{50}, []int{4}
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
	for _, sc := range strings.Split(*scenarios, ",") {
		switch sc {
		case "idle":
			for _, n := range opt.idleConns {
				runIdle(opt, rep, n)
			}
		case "echo":
			for _, n := range opt.echoConns {
				for _, size := range opt.sizes {
					for _, k := range opt.inflight {
						runEcho(opt, rep, n, size, k)
					}
				}
			}
		default:
			log.Fatalf("unknown scenario %q", sc)
		}
	}
	md := rep.markdown()
	fmt.Print(md)
	if opt.out != "" {
		if err := os.WriteFile(opt.out, []byte(md), 0o644); err != nil {
			log.Fatal(err)
		}
	}
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

// runIdle measures resident memory per idle connection.
func runIdle(opt options, rep *report, n int) {
	name := fmt.Sprintf("idle %s connections: %d", opt.proto, n)
	for round := 0; round < opt.rounds; round++ {
		for _, impl := range opt.impls {
			s, err := startServer(opt.bin, impl, opt.proto, serverCPU())
			if err != nil {
				rep.fail(name, impl, err)
				continue
			}
			err = func() error {
				if err := s.gc(); err != nil {
					return err
				}
				base := s.rss()
				conns, err := dialMany(opt.proto, s.addr, n)
				defer closeAll(conns)
				if err != nil {
					return err
				}
				raw := s.rss()
				if err := s.gc(); err != nil {
					return err
				}
				after := s.rss()
				rep.add(name, impl, "bytes/conn", float64(after-base)/float64(n))
				rep.add(name, impl, "bytes/conn before GC", float64(raw-base)/float64(n))
				return nil
			}()
			if err != nil {
				rep.fail(name, impl, err)
			}
			s.stop()
		}
	}
}

// runEcho measures throughput and server CPU per message.
func runEcho(opt options, rep *report, n, size, inflight int) {
	name := fmt.Sprintf("echo %s %d B, %d connections, %d in flight", opt.proto, size, n, inflight)
	for round := 0; round < opt.rounds; round++ {
		for _, impl := range opt.impls {
			s, err := startServer(opt.bin, impl, opt.proto, serverCPU())
			if err != nil {
				rep.fail(name, impl, err)
				continue
			}
			msgs, cpu, elapsed, err := echoLoad(opt.proto, s, n, size, inflight, opt.duration)
			if err != nil {
				rep.fail(name, impl, err)
			} else if msgs > 0 {
				rep.add(name, impl, "msg/s", float64(msgs)/elapsed.Seconds())
				rep.add(name, impl, "server µs CPU/msg", float64(cpu.Microseconds())/float64(msgs))
			}
			s.stop()
		}
	}
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
