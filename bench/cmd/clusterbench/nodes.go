package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/workerman-go/workerman/bench/internal/benchproc"
	"github.com/workerman-go/workerman/bench/internal/pushsub"
)

const (
	apiKey = "clusterbench-key"
	group  = "bench"
)

// binaries are the programs a run starts.
type binaries struct {
	self       string // this program: subscriber processes and the nats-server
	ours       string
	centrifugo string
	oursRev    string
}

func prepare(opt options, tmp string) (binaries, error) {
	var b binaries
	var err error
	if b.self, err = os.Executable(); err != nil {
		return b, err
	}
	wantOurs := slices.Contains(opt.kinds, pushsub.Ours) || slices.Contains(opt.kinds, oursHistory)
	if wantOurs && opt.oursBin != "" {
		b.ours, b.oursRev = opt.oursBin, opt.oursRev
		if b.oursRev == "" {
			b.oursRev = "a given binary (" + opt.oursBin + ")"
		}
	} else if wantOurs {
		if b.ours, b.oursRev, err = benchproc.BuildOurs(tmp); err != nil {
			return b, err
		}
	}
	if slices.Contains(opt.kinds, pushsub.Centrifugo) {
		if b.centrifugo, err = benchproc.CentrifugoBinary(opt.centrifugo); err != nil {
			return b, err
		}
	}
	return b, nil
}

// node is one running push server process of a cluster.
type node struct {
	*benchproc.Proc
	kind    string
	name    string
	ws, api string // the client URL, the API base URL
}

// startNode starts node i of a cluster of kind on the nats-server at
// natsURL.
func startNode(kind string, i int, bin binaries, tmp, natsURL string) (*node, error) {
	p1, err := benchproc.FreePort()
	if err != nil {
		return nil, err
	}
	p2, err := benchproc.FreePort()
	if err != nil {
		return nil, err
	}
	n := &node{kind: kind, name: fmt.Sprintf("node%d", i)}
	logPath := filepath.Join(tmp, fmt.Sprintf("%s-node%d.log", kind, i))
	var args []string
	switch kindOf(kind) {
	case pushsub.Ours:
		n.ws = fmt.Sprintf("ws://127.0.0.1:%d/", p1)
		n.api = fmt.Sprintf("http://127.0.0.1:%d", p2)
		args = []string{bin.ours, "-listen", fmt.Sprintf("websocket://127.0.0.1:%d", p1),
			"-api", n.api, "-api-key", apiKey, "-nats", natsURL, "-node-id", n.name}
		if kind == oursHistory {
			args = append(args, "-history-size", "100")
		}
	case pushsub.Centrifugo:
		n.ws = fmt.Sprintf("ws://127.0.0.1:%d/connection/websocket", p1)
		n.api = fmt.Sprintf("http://127.0.0.1:%d", p1)
		cfg := filepath.Join(tmp, fmt.Sprintf("centrifugo-node%d.json", i))
		// the benchmarks' Centrifugo with its NATS broker on the benchmark's
		// nats-server; presence stays with the memory engine (nothing here
		// uses presence)
		if err := os.WriteFile(cfg, benchproc.CentrifugoConfig(p1, apiKey, map[string]any{
			"broker": map[string]any{
				"enabled": true,
				"type":    "nats",
				"nats":    map[string]any{"url": natsURL},
			},
		}), 0o644); err != nil {
			return nil, err
		}
		args = []string{bin.centrifugo, "--config", cfg}
	default:
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	n.Proc, err = benchproc.Start(logPath, pinning.Server(args...)...)
	if err != nil {
		return nil, err
	}
	if err := n.WaitReady(30*time.Second, true, n.probe); err != nil {
		n.Stop()
		return nil, fmt.Errorf("%s %s: %w\n%s", kind, n.name, err, n.LogTail())
	}
	return n, nil
}

// probe succeeds when the client port accepts and the API answers an
// authorized call.
func (n *node) probe(hc *http.Client) error {
	if err := benchproc.DialWS(n.ws); err != nil {
		return err
	}
	if n.kind == pushsub.Centrifugo {
		return pushsub.Call(hc, n.api, apiKey, n.kind, "info", map[string]any{})
	}
	return pushsub.Call(hc, n.api, apiKey, n.kind, "getAllClientCount", map[string]any{})
}
