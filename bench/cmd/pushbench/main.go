// Command pushbench compares push servers side by side in one run: our push
// server (cmd/workerman-push), Centrifugo v6 (built from the Go module proxy
// once and cached) and a gorilla/websocket chat-hub baseline.
//
// Each server runs in its own process pinned to CPU 0; the subscribers are
// spread over several child processes (and 127.x source addresses) pinned,
// with the orchestrator, to CPU 1. Servers are interleaved round by round;
// per-round figures are reported as medians, latencies pooled over rounds.
//
// With -servers ours+history,centrifugo+history (beside ours and
// centrifugo) the same scenarios run with history on: the cost of
// history per delivery, history on / off, in the same run.
//
// Scenario 1: N WebSocket subscribers of one group; a sendToGroup of 64 B,
// repeated (each push waits until every subscriber has it): server CPU per
// delivered message, time from the push call to the last delivery, RSS per
// connected subscriber. Scenario 2: every subscriber gets its own uid;
// sendToUid through the HTTP API from several keep-alive callers: calls per
// second, every message counted at its client.
//
//	cd bench && go run ./cmd/pushbench                 # full run, writes results/push-<date>.md
//	cd bench && go run ./cmd/pushbench -smoke          # tiny sizes, under a minute once Centrifugo is cached
//	cd bench && go run ./cmd/pushbench -subscribers 5000 -servers ours,centrifugo
package main

import (
	"flag"
	"log"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/workerman-go/workerman/bench/internal/benchproc"
	"github.com/workerman-go/workerman/bench/internal/pushsub"
)

type options struct {
	subscribers int
	pushes      int
	size        int
	uidCalls    int
	callers     int
	rounds      int
	children    int
	parallel    int
	settle      time.Duration
	servers     []string
	out         string
	centrifugo  string // binary; "" builds it (cached)
	perf        string // directory: perf record each server during the group pushes
	smoke       bool
}

// allServers run by default; knownServers may be asked for: the two push
// servers with history (a stream of the last 100 messages per uid and
// group, pushes as envelopes; Centrifugo's history with recovery on every
// channel), to see what history costs per delivery.
var (
	allServers   = []string{"ours", "gorilla-hub", "centrifugo"}
	knownServers = append(slices.Clone(allServers), "ours+history", "centrifugo+history")
)

// historySize is what the +history servers keep per stream or channel.
const historySize = 100

// kindOf is the kind of server name is: ours, centrifugo, gorilla-hub.
func kindOf(name string) string { return strings.TrimSuffix(name, "+history") }

func withHistory(name string) bool { return strings.HasSuffix(name, "+history") }

func main() {
	var (
		opt     options
		servers = flag.String("servers", strings.Join(allServers, ","), "servers to run, comma-separated: ours, gorilla-hub, centrifugo, ours+history, centrifugo+history")
		// child and server roles of this same binary
		childMode = flag.Bool("child", false, "internal: run as a subscriber process")
		hubMode   = flag.Bool("hub", false, "internal: run the gorilla-hub server")
		kind      = flag.String("kind", "", "internal: server kind of a child")
		wsURL     = flag.String("ws", "", "internal: the WebSocket URL of a child, the listen address of -hub")
		apiURL    = flag.String("api", "", "internal: the API URL of a child, the API address of -hub")
		key       = flag.String("key", "", "internal: the API key")
		n         = flag.Int("n", 0, "internal: a child's clients")
		base      = flag.Int("base", 0, "internal: a child's first client index")
		srcs      = flag.String("sources", "", "internal: a child's source addresses")
		group     = flag.String("group", "bench", "internal: the group")
	)
	flag.IntVar(&opt.subscribers, "subscribers", 10000, "WebSocket subscribers (also the uids online)")
	flag.IntVar(&opt.pushes, "pushes", 50, "group pushes measured per round (after one warm-up)")
	flag.IntVar(&opt.size, "size", 64, "bytes per pushed message")
	flag.IntVar(&opt.uidCalls, "uid-calls", 20000, "sendToUid calls per round")
	flag.IntVar(&opt.callers, "callers", 8, "concurrent keep-alive HTTP callers of sendToUid")
	flag.IntVar(&opt.rounds, "rounds", 3, "rounds, servers interleaved in each")
	flag.IntVar(&opt.children, "children", 4, "subscriber processes")
	flag.IntVar(&opt.parallel, "parallel", 100, "connects (and setup calls) in flight per subscriber process")
	flag.DurationVar(&opt.settle, "settle", 3*time.Second, "wait after connecting before the memory is read")
	flag.StringVar(&opt.out, "out", "results", "directory of push-<date>.md/.json/.png (empty: stdout only)")
	flag.StringVar(&opt.centrifugo, "centrifugo-bin", "", "a centrifugo v6 binary to use instead of building "+benchproc.CentrifugoModule+"@"+benchproc.CentrifugoVersion)
	flag.StringVar(&opt.perf, "perf", "", "directory: record each server with perf during the group pushes (perf-<server>-<round>.data)")
	flag.BoolVar(&opt.smoke, "smoke", false, "tiny sizes, one round: checks that the benchmark runs")
	flag.Parse()

	if *childMode {
		var sources []*net.TCPAddr
		for _, s := range strings.Split(*srcs, ",") {
			sources = append(sources, &net.TCPAddr{IP: net.ParseIP(s)})
		}
		pushsub.RunSubscriber(pushsub.Options{Kind: *kind, WS: *wsURL, API: *apiURL, Key: *key, N: *n,
			Sources: sources, Parallel: opt.parallel, Group: *group, Name: "pushbench", UIDs: true, Base: *base})
		return
	}
	if *hubMode {
		runHub(*wsURL, *apiURL, *key)
		return
	}

	opt.servers = nil
	for _, s := range strings.Split(*servers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			if !slices.Contains(knownServers, s) {
				log.Fatalf("unknown server %q (want %s)", s, strings.Join(knownServers, ", "))
			}
			opt.servers = append(opt.servers, s)
		}
	}
	if opt.smoke {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		def := func(name string, p *int, v int) {
			if !set[name] {
				*p = v
			}
		}
		def("subscribers", &opt.subscribers, 200)
		def("pushes", &opt.pushes, 5)
		def("uid-calls", &opt.uidCalls, 400)
		def("rounds", &opt.rounds, 1)
		def("children", &opt.children, 2)
		if !set["settle"] {
			opt.settle = 300 * time.Millisecond
		}
		if !set["out"] {
			opt.out = ""
		}
	}
	if opt.subscribers < opt.children {
		opt.children = max(1, opt.subscribers)
	}
	if opt.size < 16 {
		log.Fatal("-size: at least 16 bytes (the message carries its sequence number)")
	}
	if opt.subscribers/opt.children > 18000 {
		log.Fatalf("-subscribers %d over %d processes: more than 18,000 descriptors per process (the limit is 20,000); raise -children", opt.subscribers, opt.children)
	}
	pinning.Self()
	if err := run(opt); err != nil {
		log.Fatal(err)
	}
}

// pinning: this program and its subscriber processes on CPU 1, the
// servers on CPU 0.
var pinning = benchproc.Pinning{PinnedEnv: "PUSHBENCH_PINNED"}
