// Command workerman-push is a ready-to-run push server: WebSocket clients
// connect to it, a backend in any language pushes to them with one HTTP
// call, and what the clients send reaches the backend as webhook POSTs.
// It is GatewayWorker's model (client IDs, uids, groups, sessions) as one
// binary; README.md has the flags, the wire and the HTTP API.
//
//	go run ./cmd/workerman-push
//
// starts it with no configuration at all: clients on ws://0.0.0.0:8000/,
// the API on http://127.0.0.1:8001/api/ with a random key that it prints.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// Once stopping, a second signal ends the process at once.
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "workerman-push:", err)
		os.Exit(1)
	}
}

// run is the whole program: it reads the flags (and their environment
// variables), serves until ctx is done, then stops cleanly. Logs, and the
// generated API key, go to stdout.
func run(ctx context.Context, args []string, env func(string) string, stdout io.Writer) error {
	cfg, err := parseConfig(args, env, stdout)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, stdout)
}

// serve runs a server with cfg until ctx is done.
func serve(ctx context.Context, cfg config, stdout io.Writer) error {
	s, err := newServer(cfg, newLogger(cfg, stdout))
	if err != nil {
		return err
	}
	return s.run(ctx)
}

// run serves until ctx is done, then stops within the stop timeout.
func (s *server) run(ctx context.Context) error {
	if err := s.start(); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.StopTimeout)
	defer cancel()
	return s.shutdown(sctx)
}

// config is what the flags set.
type config struct {
	Listen        string        // client endpoint, websocket://host:port[/path]
	API           string        // backend endpoint, http://host:port
	APIKey        string        // bearer key of /api/*; generated when empty
	JWTSecret     string        // HS256 secret; "" lets clients connect anonymously
	Webhook       string        // URL of the client events; "" sends none
	WebhookSecret string        // signs the webhook's POSTs; "" signs none
	NodeID        string        // this node's name; "" lets the gateway pick one
	Count         int           // event loops
	PingInterval  time.Duration // 0: no heartbeat
	NATS          string        // URL(s) of an existing NATS cluster, comma-separated
	Cluster       string        // embedded NATS: this node's route address
	Peers         string        // embedded NATS: the peers' route addresses, comma-separated
	HistorySize   int           // messages kept per stream; 0: no history
	HistoryTTL    time.Duration // how long a message is kept
	LogFormat     string        // "text" or "json"
	LogLevel      slog.Level    // lines below it are not written

	// A cluster's history (JetStream): its copies, on disk or in memory,
	// and the embedded server's directory.
	HistoryReplicas int
	HistoryFile     bool
	NATSStore       string
	TLSCert         string
	TLSKey          string

	// Not flags: what tests tune.
	StopTimeout time.Duration // bound of a graceful stop; default 10 s
	Hook        hookOptions
}

// envPrefix names the environment variable of a flag: -api-key is
// WORKERMAN_PUSH_API_KEY.
const envPrefix = "WORKERMAN_PUSH_"

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseConfig reads the command line, then, for every flag the command
// line did not set, its environment variable.
func parseConfig(args []string, env func(string) string, out io.Writer) (config, error) {
	cfg := config{StopTimeout: 10 * time.Second}
	fs := flag.NewFlagSet("workerman-push", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&cfg.Listen, "listen", "websocket://0.0.0.0:8000", "client endpoint; also serves GET /workerman-push.js")
	fs.StringVar(&cfg.API, "api", "http://127.0.0.1:8001", "backend endpoint: /api/*, /metrics, /healthz, /readyz, the dashboard at /")
	fs.StringVar(&cfg.APIKey, "api-key", "", "bearer key for /api/* (default: random, printed at start)")
	fs.StringVar(&cfg.JWTSecret, "jwt-secret", "", "HS256 secret; when set, every client must present a valid token")
	fs.StringVar(&cfg.Webhook, "webhook", "", "URL that receives client events as JSON POSTs")
	fs.StringVar(&cfg.WebhookSecret, "webhook-secret", "", "signs every webhook POST (HMAC-SHA256 of the timestamp and the body, headers Workerman-Push-Timestamp and Workerman-Push-Signature)")
	fs.StringVar(&cfg.NodeID, "node-id", "", "this node's name in the cluster (default host-pid-random)")
	fs.IntVar(&cfg.Count, "count", runtime.NumCPU(), "event loops")
	fs.DurationVar(&cfg.PingInterval, "ping-interval", 25*time.Second, "WebSocket ping interval; 0 turns the heartbeat off")
	fs.StringVar(&cfg.NATS, "nats", "", "NATS URL(s) of an existing NATS cluster to join, comma-separated")
	fs.StringVar(&cfg.Cluster, "cluster", "", "embedded NATS: this node's route address (host:port)")
	fs.StringVar(&cfg.Peers, "peers", "", "embedded NATS: the other nodes' route addresses (host:port, comma-separated)")
	fs.IntVar(&cfg.HistorySize, "history-size", 0, "messages kept per stream (uid, group, all) for clients that resume; 0: no history, pushes sent as they are")
	fs.DurationVar(&cfg.HistoryTTL, "history-ttl", 10*time.Minute, "how long a message is kept for clients that resume")
	fs.IntVar(&cfg.HistoryReplicas, "history-replicas", 0, "with -nats or -cluster: servers that keep a copy of the history in JetStream, 1 to 5 (default: the embedded cluster's nodes up to 3, or 1 with -nats)")
	fs.BoolVar(&cfg.HistoryFile, "history-file", false, "with -nats or -cluster: keep the history on disk, so that it survives a restart of every NATS server (default: in memory)")
	fs.StringVar(&cfg.NATSStore, "nats-store", "", "with -cluster and -history-size: the embedded NATS server's JetStream directory (default <temp dir>/workerman-push/<cluster>/<node-id>)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "certificate chain (PEM) for wss:// on the clients' port (and https:// for the JS client); reloaded when the file changes")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "private key (PEM) of -tls-cert")
	fs.StringVar(&cfg.LogFormat, "log-format", "text", "log line format: text or json (log/slog's)")
	fs.TextVar(&cfg.LogLevel, "log-level", slog.LevelInfo, "lowest level logged: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: workerman-push [flags]\n\nEvery flag is also read from the environment as %s<NAME> (-api-key: %s);\na flag on the command line wins.\n\n", envPrefix, envName("api-key"))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		name := envName(f.Name)
		if v, ok := lookup(env, name); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return cfg, err
	}
	if cfg.Count < 1 {
		return cfg, fmt.Errorf("-count %d: at least 1", cfg.Count)
	}
	if cfg.PingInterval < 0 {
		return cfg, fmt.Errorf("-ping-interval %v: 0 or more", cfg.PingInterval)
	}
	if cfg.HistorySize < 0 {
		return cfg, fmt.Errorf("-history-size %d: 0 (no history) or more", cfg.HistorySize)
	}
	if cfg.HistoryTTL <= 0 {
		return cfg, fmt.Errorf("-history-ttl %v: more than 0", cfg.HistoryTTL)
	}
	if cfg.HistoryReplicas < 0 || cfg.HistoryReplicas > 5 {
		return cfg, fmt.Errorf("-history-replicas %d: 1 to 5 (0: the default)", cfg.HistoryReplicas)
	}
	if cfg.HistorySize > 0 && cfg.Cluster != "" && cfg.Peers == "" {
		return cfg, errors.New("-history-size with -cluster needs -peers: every node's route address, the same list on every node (JetStream clusters its servers by their routes); a single node keeps its history in memory without -cluster")
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return cfg, errors.New("-tls-cert and -tls-key go together")
	}
	if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		return cfg, fmt.Errorf("-log-format %q: text or json", cfg.LogFormat)
	}
	if cfg.NATS != "" && cfg.Cluster != "" {
		return cfg, errors.New("-nats joins an existing NATS cluster, -cluster embeds one: give one of them")
	}
	if cfg.Peers != "" && cfg.Cluster == "" {
		return cfg, errors.New("-peers needs -cluster (this node's own route address)")
	}
	if cfg.WebhookSecret != "" && cfg.Webhook == "" {
		return cfg, errors.New("-webhook-secret needs -webhook")
	}
	if cfg.Webhook != "" {
		u, err := url.Parse(cfg.Webhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cfg, fmt.Errorf("-webhook %q: want an http:// or https:// URL", cfg.Webhook)
		}
	}
	return cfg, nil
}

// newLogger writes cfg's format, from cfg's level up, to out.
func newLogger(cfg config, out io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(out, opts))
	}
	return slog.New(slog.NewTextHandler(out, opts))
}

// lookup reads an environment variable; an empty value counts as unset,
// so that WORKERMAN_PUSH_API_KEY= in a compose file changes nothing.
func lookup(env func(string) string, name string) (string, bool) {
	if env == nil {
		return "", false
	}
	v := env(name)
	return v, v != ""
}
