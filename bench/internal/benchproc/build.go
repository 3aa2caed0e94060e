package benchproc

import (
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The Centrifugo the benchmarks compare with.
const (
	CentrifugoModule  = "github.com/centrifugal/centrifugo/v6"
	CentrifugoVersion = "v6.9.1"
)

// BuildOurs builds cmd/workerman-push of this repository into dir and
// returns the binary and the revision it was built from (git describe).
func BuildOurs(dir string) (bin, rev string, err error) {
	root, err := RepoRoot()
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "workerman-push")
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join(root, "cmd", "workerman-push")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return bin, "", fmt.Errorf("building cmd/workerman-push: %w", err)
	}
	out, _ := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output()
	rev = strings.TrimSpace(string(out))
	log.Printf("built cmd/workerman-push (%s) in %v", rev, time.Since(start).Round(time.Millisecond))
	return bin, rev, nil
}

// RepoRoot is the workspace root: the directory of go.work above the
// current one.
func RepoRoot() (string, error) {
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

// CentrifugoBinary returns the given binary, or the cached build of
// Centrifugo, building it from the module proxy the first time
// (go install module@version; a few minutes).
func CentrifugoBinary(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "workerman-bench", "centrifugo-"+CentrifugoVersion)
	bin := filepath.Join(dir, "centrifugo")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	log.Printf("building Centrifugo %s from the module proxy into %s (once; takes a few minutes)", CentrifugoVersion, dir)
	start := time.Now()
	cmd := exec.Command("go", "install", CentrifugoModule+"@"+CentrifugoVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOWORK=off", "GOFLAGS=")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w", CentrifugoModule, CentrifugoVersion, err)
	}
	log.Printf("built Centrifugo in %v", time.Since(start).Round(time.Second))
	return bin, nil
}

// CentrifugoConfig is Centrifugo v6's configuration for the benchmarks:
// the HTTP API with key, anonymous WebSocket clients allowed to connect
// and to subscribe to channels without a namespace, nothing else on (no
// history, no presence, no join/leave, the default ping of 25 s), and no
// usage statistics sent home; extra adds (or replaces) top-level sections.
func CentrifugoConfig(port int, key string, extra map[string]any) []byte {
	cfg := map[string]any{
		"log": map[string]any{"level": "error"},
		"http_server": map[string]any{
			"address": "127.0.0.1",
			"port":    port,
		},
		"http_api":    map[string]any{"key": key},
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
	for k, v := range extra {
		cfg[k] = v
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	return b
}
