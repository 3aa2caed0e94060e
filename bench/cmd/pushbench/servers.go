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
	apiKey            = "pushbench-key"
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
	if contains(opt.servers, "ours") {
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
	if contains(opt.servers, "centrifugo") {
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

// centrifugoBinary returns the given binary, or the cached build of
// Centrifugo, building it from the module proxy the first time
// (go install module@version; a few minutes).
func centrifugoBinary(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = filepath.Join(os.TempDir())
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

// server is one running competitor, pinned to CPU 0.
type server struct {
	name    string
	cmd     *exec.Cmd
	ws, api string // the client URL, the API base URL
	logPath string
}

func (s *server) pid() int           { return s.cmd.Process.Pid }
func (s *server) rss() int64         { return procstat.RSS(s.pid()) }
func (s *server) cpu() time.Duration { return procstat.CPU(s.pid()) }
func (s *server) logTail() string    { return tail(s.logPath, 20) }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startServer(name string, bin binaries, tmp string) (*server, error) {
	p1, err := freePort()
	if err != nil {
		return nil, err
	}
	p2, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{name: name, logPath: filepath.Join(tmp, name+".log")}
	var args []string
	switch name {
	case "ours":
		s.ws = fmt.Sprintf("ws://127.0.0.1:%d/", p1)
		s.api = fmt.Sprintf("http://127.0.0.1:%d", p2)
		args = []string{bin.ours, "-listen", fmt.Sprintf("websocket://127.0.0.1:%d", p1),
			"-api", s.api, "-api-key", apiKey}
	case "gorilla-hub":
		s.ws = fmt.Sprintf("ws://127.0.0.1:%d/", p1)
		s.api = fmt.Sprintf("http://127.0.0.1:%d", p2)
		args = []string{bin.self, "-hub", "-ws", fmt.Sprintf("127.0.0.1:%d", p1),
			"-api", fmt.Sprintf("127.0.0.1:%d", p2), "-key", apiKey}
	case "centrifugo":
		s.ws = fmt.Sprintf("ws://127.0.0.1:%d/connection/websocket", p1)
		s.api = fmt.Sprintf("http://127.0.0.1:%d", p1)
		cfg := filepath.Join(tmp, "centrifugo.json")
		if err := os.WriteFile(cfg, centrifugoConfig(p1), 0o644); err != nil {
			return nil, err
		}
		args = []string{bin.centrifugo, "--config", cfg}
	default:
		return nil, fmt.Errorf("unknown server %q", name)
	}
	if haveTaskset && numCPU() >= 2 {
		args = append([]string{"taskset", "-c", "0"}, args...)
	}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	s.cmd = exec.Command(args[0], args[1:]...)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.Env = os.Environ()
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go s.cmd.Wait()
	if err := s.waitReady(30 * time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s: %w\n%s", name, err, s.logTail())
	}
	return s, nil
}

// waitReady waits until the client port accepts and the API answers an
// authorized call.
func (s *server) waitReady(d time.Duration) error {
	deadline := time.Now().Add(d)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		err := s.probe(hc)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *server) probe(hc *http.Client) error {
	host := strings.TrimPrefix(s.ws, "ws://")
	host = host[:strings.IndexByte(host, '/')]
	c, err := net.DialTimeout("tcp", host, time.Second)
	if err != nil {
		return err
	}
	c.Close()
	if s.name == "centrifugo" {
		return pushsub.Call(hc, s.api, apiKey, s.name, "info", map[string]any{})
	}
	// a push to a group nobody is in: 200 when the API is up
	return pushsub.Call(hc, s.api, apiKey, s.name, "sendToGroup", map[string]string{"group": "probe", "message": "probe"})
}

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(s.pid(), 0) != nil {
			return
		}
		// a zombie (exited, not yet reaped) counts as stopped
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.pid())); err != nil || strings.Contains(string(st), ") Z ") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.cmd.Process.Kill()
}

// centrifugoConfig is Centrifugo v6's configuration for the benchmark:
// the HTTP API with a key, anonymous WebSocket clients allowed to connect
// and to subscribe to channels without a namespace, nothing else on
// (no history, no presence, no join/leave, the default ping of 25 s),
// and no usage statistics sent home.
func centrifugoConfig(port int) []byte {
	cfg := map[string]any{
		"log": map[string]any{"level": "error"},
		"http_server": map[string]any{
			"address": "127.0.0.1",
			"port":    port,
		},
		"http_api":    map[string]any{"key": apiKey},
		"usage_stats": map[string]any{"disabled": true},
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
