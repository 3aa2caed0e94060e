package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/workerman-go/workerman/bench/internal/procstat"
	"github.com/workerman-go/workerman/bench/internal/pushsub"
)

const (
	centrifugoModule  = "github.com/centrifugal/centrifugo/v6"
	centrifugoVersion = "v6.9.1"
	apiKey            = "clusterbench-key"
	group             = "bench"
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
	if contains(opt.kinds, pushsub.Ours) && opt.oursBin != "" {
		b.ours, b.oursRev = opt.oursBin, opt.oursRev
		if b.oursRev == "" {
			b.oursRev = "a given binary (" + opt.oursBin + ")"
		}
	} else if contains(opt.kinds, pushsub.Ours) {
		root, err := repoRoot()
		if err != nil {
			return b, err
		}
		b.ours = filepath.Join(tmp, "workerman-push")
		start := time.Now()
		cmd := exec.Command("go", "build", "-o", b.ours, ".")
		cmd.Dir = filepath.Join(root, "cmd", "workerman-push")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return b, fmt.Errorf("building cmd/workerman-push: %w", err)
		}
		out, _ := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output()
		b.oursRev = strings.TrimSpace(string(out))
		logf("built cmd/workerman-push (%s) in %v", b.oursRev, time.Since(start).Round(time.Millisecond))
	}
	if contains(opt.kinds, pushsub.Centrifugo) {
		if b.centrifugo, err = centrifugoBinary(opt.centrifugo); err != nil {
			return b, err
		}
	}
	return b, nil
}

// repoRoot is the workspace root: the directory of go.work above the
// current one.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOWORK").Output()
	if w := strings.TrimSpace(string(out)); err == nil && w != "" && w != "off" {
		return filepath.Dir(w), nil
	}
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "cmd", "workerman-push", "main.go")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("cannot find the repository root (run from bench/)")
		}
	}
}

// centrifugoBinary returns the given binary, or the build of Centrifugo
// that bench/cmd/pushbench caches (the same place), building it from the
// module proxy the first time (go install module@version; a few minutes).
func centrifugoBinary(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "workerman-bench", "centrifugo-"+centrifugoVersion)
	bin := filepath.Join(dir, "centrifugo")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	logf("building Centrifugo %s from the module proxy into %s (once; takes a few minutes)", centrifugoVersion, dir)
	start := time.Now()
	cmd := exec.Command("go", "install", centrifugoModule+"@"+centrifugoVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOWORK=off", "GOFLAGS=")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w", centrifugoModule, centrifugoVersion, err)
	}
	logf("built Centrifugo in %v", time.Since(start).Round(time.Second))
	return bin, nil
}

// node is one running push server process of a cluster.
type node struct {
	kind    string
	name    string
	cmd     *exec.Cmd
	ws, api string // the client URL, the API base URL
	logPath string
	exited  chan struct{} // closed when the process ended
}

func (n *node) pid() int           { return n.cmd.Process.Pid }
func (n *node) rss() int64         { return procstat.RSS(n.pid()) }
func (n *node) cpu() time.Duration { return procstat.CPU(n.pid()) }
func (n *node) logTail() string    { return tail(n.logPath, 20) }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// pinned prefixes a command line with taskset to CPU 0, where the servers
// run (when the machine has 2 CPUs or more and taskset is there).
func pinned(args ...string) []string {
	if pinning() {
		return append([]string{"taskset", "-c", "0"}, args...)
	}
	return args
}

// startNode starts node i of a cluster of kind on the nats-server at
// natsURL.
func startNode(kind string, i int, bin binaries, tmp, natsURL string) (*node, error) {
	p1, err := freePort()
	if err != nil {
		return nil, err
	}
	p2, err := freePort()
	if err != nil {
		return nil, err
	}
	n := &node{kind: kind, name: fmt.Sprintf("node%d", i), logPath: filepath.Join(tmp, fmt.Sprintf("%s-node%d.log", kind, i))}
	var args []string
	switch kind {
	case pushsub.Ours:
		n.ws = fmt.Sprintf("ws://127.0.0.1:%d/", p1)
		n.api = fmt.Sprintf("http://127.0.0.1:%d", p2)
		args = []string{bin.ours, "-listen", fmt.Sprintf("websocket://127.0.0.1:%d", p1),
			"-api", n.api, "-api-key", apiKey, "-nats", natsURL, "-node-id", n.name}
	case pushsub.Centrifugo:
		n.ws = fmt.Sprintf("ws://127.0.0.1:%d/connection/websocket", p1)
		n.api = fmt.Sprintf("http://127.0.0.1:%d", p1)
		cfg := filepath.Join(tmp, fmt.Sprintf("centrifugo-node%d.json", i))
		if err := os.WriteFile(cfg, centrifugoConfig(p1, natsURL), 0o644); err != nil {
			return nil, err
		}
		args = []string{bin.centrifugo, "--config", cfg}
	default:
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	args = pinned(args...)
	logFile, err := os.Create(n.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	n.cmd = exec.Command(args[0], args[1:]...)
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	n.cmd.Env = os.Environ()
	if err := n.cmd.Start(); err != nil {
		return nil, err
	}
	n.exited = make(chan struct{})
	go func() { n.cmd.Wait(); close(n.exited) }()
	if err := n.waitReady(30 * time.Second); err != nil {
		n.stop()
		return nil, fmt.Errorf("%s %s: %w\n%s", kind, n.name, err, n.logTail())
	}
	return n, nil
}

// waitReady waits until the client port accepts and the API answers an
// authorized call.
func (n *node) waitReady(d time.Duration) error {
	deadline := time.Now().Add(d)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		err := n.probe(hc)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", d, err)
		}
		select {
		case <-n.exited:
			return fmt.Errorf("exited at start (%v)", n.cmd.ProcessState)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (n *node) probe(hc *http.Client) error {
	host := strings.TrimPrefix(n.ws, "ws://")
	host = host[:strings.IndexByte(host, '/')]
	c, err := net.DialTimeout("tcp", host, time.Second)
	if err != nil {
		return err
	}
	c.Close()
	if n.kind == pushsub.Centrifugo {
		return pushsub.Call(hc, n.api, apiKey, n.kind, "info", map[string]any{})
	}
	return pushsub.Call(hc, n.api, apiKey, n.kind, "getAllClientCount", map[string]any{})
}

func (n *node) stop() {
	n.cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(n.pid(), 0) != nil {
			return
		}
		// a zombie (exited, not yet reaped) counts as stopped
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.pid())); err != nil || strings.Contains(string(st), ") Z ") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.cmd.Process.Kill()
}

// centrifugoConfig is Centrifugo v6's configuration of one node: that of
// bench/cmd/pushbench (the HTTP API with a key, anonymous WebSocket
// clients allowed to connect and to subscribe to channels without a
// namespace, no history, no presence, no join/leave, no usage statistics)
// with its NATS broker on the benchmark's nats-server. Presence stays with
// the memory engine (nothing here uses presence).
func centrifugoConfig(port int, natsURL string) []byte {
	cfg := map[string]any{
		"log": map[string]any{"level": "error"},
		"http_server": map[string]any{
			"address": "127.0.0.1",
			"port":    port,
		},
		"http_api":    map[string]any{"key": apiKey},
		"usage_stats": map[string]any{"disabled": true},
		"broker": map[string]any{
			"enabled": true,
			"type":    "nats",
			"nats":    map[string]any{"url": natsURL},
		},
		"client": map[string]any{
			"allow_anonymous_connect_without_token": true,
			"allowed_origins":                       []string{"*"},
		},
		"channel": map[string]any{
			"without_namespace": map[string]any{
				"allow_subscribe_for_client":    true,
				"allow_subscribe_for_anonymous": true,
			},
		},
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	return b
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
