// Command clusterbench measures cross-node sendToGroup: one group of
// members spread evenly over the nodes of a cluster (one process each)
// joined to one nats-server that the benchmark runs, against the same
// members on one node of that cluster, for our push server
// (cmd/workerman-push -nats) and for Centrifugo v6 on its NATS broker, in
// the same run.
//
// The nats-server runs in a child process (this same binary, -natsd), so
// that what NATS carries is read from its own counters: /varz and /connz
// (the deliveries to each subscription of the push subject), and a tap
// subscriber on ">" that counts every message published, by subject.
//
// As in bench/cmd/pushbench, the servers (the nodes and the nats-server)
// run pinned to CPU 0, the subscriber processes and the orchestrator to
// CPU 1; systems are interleaved round by round.
//
// Per system: push call (through one node's API) to the last delivery on
// any node, pushes one at a time (p50, p90 pooled over rounds); deliveries
// per second while a burst of pushes is sent back to back; NATS messages
// published and delivered per push; server CPU per delivered message.
//
//	cd bench && go run ./cmd/clusterbench -out results   # full run, writes results/cluster-<date>.md
//	cd bench && go run ./cmd/clusterbench -smoke         # ours only, 300 members, well under a minute
package main

import (
	"flag"
	"log"
	"net"
	"os"
	"strings"
	"time"

	"github.com/workerman-go/workerman/bench/internal/benchproc"
	"github.com/workerman-go/workerman/bench/internal/pushsub"
)

type options struct {
	members    int
	nodes      int
	pushes     int
	burst      int
	size       int
	rounds     int
	children   int
	parallel   int
	settle     time.Duration
	kinds      []string
	out        string
	centrifugo string
	oursBin    string
	oursRev    string
	pin        bool
	smoke      bool
}

func main() {
	var (
		opt   options
		kinds = flag.String("servers", "ours,centrifugo", "servers to run, comma-separated: ours, centrifugo, ours+history (ours with -history-size 100: the cluster's history in JetStream)")
		// roles of this same binary
		childMode = flag.Bool("child", false, "internal: run as a subscriber process")
		natsdMode = flag.Bool("natsd", false, "internal: run the nats-server")
		natsdPort = flag.Int("natsd-port", 0, "internal: the nats-server's client port")
		natsdHTTP = flag.Int("natsd-http", 0, "internal: the nats-server's monitoring port")
		kind      = flag.String("kind", "", "internal: server kind of a subscriber process")
		wsURL     = flag.String("ws", "", "internal: the WebSocket URL of a subscriber process")
		apiURL    = flag.String("api", "", "internal: the API URL of a subscriber process")
		n         = flag.Int("n", 0, "internal: a subscriber process's clients")
		srcs      = flag.String("sources", "", "internal: a subscriber process's source addresses")
	)
	flag.IntVar(&opt.members, "members", 9000, "WebSocket members of the group, spread evenly over the nodes")
	flag.IntVar(&opt.nodes, "nodes", 3, "nodes of the cluster (compared with one node holding every member)")
	flag.IntVar(&opt.pushes, "pushes", 50, "pushes one at a time per round, each waiting for its last delivery (after one warm-up)")
	flag.IntVar(&opt.burst, "burst", 100, "pushes per round sent back to back for the deliveries per second")
	flag.IntVar(&opt.size, "size", 64, "bytes per pushed message")
	flag.IntVar(&opt.rounds, "rounds", 5, "rounds, systems interleaved in each")
	flag.IntVar(&opt.children, "children", 6, "subscriber processes (a multiple of -nodes spreads them evenly)")
	flag.IntVar(&opt.parallel, "parallel", 100, "connects (and joinGroup calls) in flight per subscriber process")
	flag.DurationVar(&opt.settle, "settle", time.Second, "wait after every member joined, before the first push")
	flag.StringVar(&opt.out, "out", "", "directory to write cluster-<date>.md into, e.g. results (empty: the report on stdout only)")
	flag.StringVar(&opt.centrifugo, "centrifugo-bin", "", "a centrifugo v6 binary to use instead of building "+benchproc.CentrifugoModule+"@"+benchproc.CentrifugoVersion)
	flag.StringVar(&opt.oursBin, "ours-bin", "", "a workerman-push binary to use instead of building ../cmd/workerman-push")
	flag.StringVar(&opt.oursRev, "ours-rev", "", "with -ours-bin: what to call that binary in the report (its revision)")
	flag.BoolVar(&opt.pin, "pin", true, "servers on CPU 0, subscriber processes and the orchestrator on CPU 1 (as pushbench); false: nothing pinned")
	flag.BoolVar(&opt.smoke, "smoke", false, "ours only, 300 members, 1 round of 5 + 10 pushes: checks that the benchmark runs")
	flag.Parse()

	switch {
	case *natsdMode:
		runNatsd(*natsdPort, *natsdHTTP)
		return
	case *childMode:
		var sources []*net.TCPAddr
		for _, s := range strings.Split(*srcs, ",") {
			if s != "" {
				sources = append(sources, &net.TCPAddr{IP: net.ParseIP(s)})
			}
		}
		pushsub.RunSubscriber(pushsub.Options{Kind: *kind, WS: *wsURL, API: *apiURL, Key: apiKey, N: *n,
			Sources: sources, Parallel: opt.parallel, Group: group, Name: "clusterbench"})
		return
	}

	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if opt.smoke {
		def := func(name string, p *int, v int) {
			if !set[name] {
				*p = v
			}
		}
		def("members", &opt.members, 300)
		def("pushes", &opt.pushes, 5)
		def("burst", &opt.burst, 10)
		def("rounds", &opt.rounds, 1)
		def("children", &opt.children, 3)
		if !set["settle"] {
			opt.settle = 200 * time.Millisecond
		}
		if !set["servers"] {
			*kinds = pushsub.Ours
		}
	}
	for _, s := range strings.Split(*kinds, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if s != pushsub.Ours && s != pushsub.Centrifugo && s != oursHistory {
			log.Fatalf("unknown server %q (want ours, centrifugo, ours+history)", s)
		}
		opt.kinds = append(opt.kinds, s)
	}
	switch {
	case len(opt.kinds) == 0:
		log.Fatal("-servers: none")
	case opt.nodes < 2:
		log.Fatal("-nodes: at least 2 (the baseline is one node)")
	case opt.members < opt.nodes:
		log.Fatal("-members: at least one per node")
	case opt.size < 16:
		log.Fatal("-size: at least 16 bytes (the message carries its push number)")
	case 1+opt.pushes+opt.burst > pushsub.MaxPushes:
		log.Fatal("-pushes, -burst: too many")
	}
	opt.children = max(opt.children, opt.nodes)
	if opt.members/opt.children > 18000 {
		log.Fatalf("-members %d over %d processes: more than 18,000 descriptors per process (the limit is 20,000); raise -children", opt.members, opt.children)
	}
	if !opt.pin {
		os.Setenv("CLUSTERBENCH_NOPIN", "1")
	}
	pinning.Self()
	if err := run(opt); err != nil {
		log.Fatal(err)
	}
}

func logf(format string, a ...any) { log.Printf(format, a...) }

// pinning: this program and its subscriber processes on CPU 1, the
// servers (every node and the nats-server) on CPU 0; -pin=false (which sets
// CLUSTERBENCH_NOPIN) turns it off.
var pinning = benchproc.Pinning{PinnedEnv: "CLUSTERBENCH_PINNED", OffEnv: "CLUSTERBENCH_NOPIN"}
