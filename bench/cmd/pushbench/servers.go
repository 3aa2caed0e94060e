package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/workerman-go/workerman/bench/internal/benchproc"
	"github.com/workerman-go/workerman/bench/internal/pushsub"
)

const (
	apiKey = "pushbench-key"
)

// binaries are the programs a run starts: built once per run (ours) or
// once per machine (Centrifugo, cached).
type binaries struct {
	self       string // this program: children and the gorilla hub
	ours       string
	centrifugo string
	oursRev    string
}

// prepare builds what the servers in opt need.
func prepare(opt options, tmp string) (binaries, error) {
	var b binaries
	var err error
	if b.self, err = os.Executable(); err != nil {
		return b, err
	}
	if slices.Contains(opt.servers, "ours") || slices.Contains(opt.servers, "ours+history") {
		if b.ours, b.oursRev, err = benchproc.BuildOurs(tmp); err != nil {
			return b, err
		}
	}
	if slices.Contains(opt.servers, "centrifugo") || slices.Contains(opt.servers, "centrifugo+history") {
		if b.centrifugo, err = benchproc.CentrifugoBinary(opt.centrifugo); err != nil {
			return b, err
		}
	}
	return b, nil
}

// server is one running competitor, pinned to CPU 0.
type server struct {
	*benchproc.Proc
	name    string
	ws, api string // the client URL, the API base URL
}

func startServer(name string, bin binaries, tmp string) (*server, error) {
	p1, err := benchproc.FreePort()
	if err != nil {
		return nil, err
	}
	p2, err := benchproc.FreePort()
	if err != nil {
		return nil, err
	}
	s := &server{name: name}
	logPath := filepath.Join(tmp, name+".log")
	var args []string
	switch kindOf(name) {
	case "ours":
		s.ws = fmt.Sprintf("ws://127.0.0.1:%d/", p1)
		s.api = fmt.Sprintf("http://127.0.0.1:%d", p2)
		args = []string{bin.ours, "-listen", fmt.Sprintf("websocket://127.0.0.1:%d", p1),
			"-api", s.api, "-api-key", apiKey}
		if withHistory(name) {
			args = append(args, "-history-size", strconv.Itoa(historySize))
		}
	case "gorilla-hub":
		s.ws = fmt.Sprintf("ws://127.0.0.1:%d/", p1)
		s.api = fmt.Sprintf("http://127.0.0.1:%d", p2)
		args = []string{bin.self, "-hub", "-ws", fmt.Sprintf("127.0.0.1:%d", p1),
			"-api", fmt.Sprintf("127.0.0.1:%d", p2), "-key", apiKey}
	case "centrifugo":
		s.ws = fmt.Sprintf("ws://127.0.0.1:%d/connection/websocket", p1)
		s.api = fmt.Sprintf("http://127.0.0.1:%d", p1)
		cfg := filepath.Join(tmp, "centrifugo.json")
		var extra map[string]any
		if withHistory(name) {
			// History with recovery on every channel, as ours keeps it for
			// every uid and group.
			extra = map[string]any{"channel": map[string]any{"without_namespace": map[string]any{
				"allow_subscribe_for_client":    true,
				"allow_subscribe_for_anonymous": true,
				"history_size":                  historySize,
				"history_ttl":                   "600s",
				"force_recovery":                true,
			}}}
		}
		if err := os.WriteFile(cfg, benchproc.CentrifugoConfig(p1, apiKey, extra), 0o644); err != nil {
			return nil, err
		}
		args = []string{bin.centrifugo, "--config", cfg}
	default:
		return nil, fmt.Errorf("unknown server %q", name)
	}
	s.Proc, err = benchproc.Start(logPath, pinning.Server(args...)...)
	if err != nil {
		return nil, err
	}
	if err := s.WaitReady(30*time.Second, false, s.probe); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%s: %w\n%s", name, err, s.LogTail())
	}
	return s, nil
}

// probe succeeds when the client port accepts and the API answers an
// authorized call.
func (s *server) probe(hc *http.Client) error {
	if err := benchproc.DialWS(s.ws); err != nil {
		return err
	}
	if kindOf(s.name) == "centrifugo" {
		return pushsub.Call(hc, s.api, apiKey, pushsub.Centrifugo, "info", map[string]any{})
	}
	// a push to a group nobody is in: 200 when the API is up
	return pushsub.Call(hc, s.api, apiKey, kindOf(s.name), "sendToGroup", map[string]string{"group": "probe", "message": "probe"})
}
