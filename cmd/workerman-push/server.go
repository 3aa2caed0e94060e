package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/gateway"
	"github.com/workerman-go/workerman/natsbroker"
)

// splitList splits a comma-separated flag, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// server is one push node: a client worker (WebSocket, and GET
// /workerman-push.js on the same port), a gateway on it, the HTTP API and
// the webhook sender.
type server struct {
	cfg    config
	log    *slog.Logger
	secret []byte // JWT secret; nil: anonymous clients
	wsPath string

	w      *workerman.Worker
	g      *gateway.Gateway
	hooks  *webhook           // nil without -webhook
	broker *natsbroker.Broker // nil on a single node

	api      *http.Server
	apiLn    net.Listener
	apiDone  chan struct{}
	draining atomic.Bool
	counters *counters
	ready    atomic.Bool // s.g is set: other nodes may ask for nodeStats

	keyGenerated bool
	// announced holds the client IDs whose connect event went to the
	// webhook, so that a client that closed before it was reachable gets
	// no close event without a connect.
	announced sync.Map
}

// identity is what a valid token said, kept on the connection (its Value)
// from the handshake to OnConnect.
type identity struct {
	uid    string
	groups []string
}

func newServer(cfg config, log *slog.Logger) (*server, error) {
	s := &server{cfg: cfg, log: log, counters: newCounters()}
	workerURI, path, secure, err := parseListen(cfg.Listen)
	if err != nil {
		return nil, err
	}
	if secure && cfg.TLSCert == "" {
		return nil, fmt.Errorf("-listen %q: wss needs -tls-cert and -tls-key", cfg.Listen)
	}
	s.wsPath = path
	if _, err := parseAPI(cfg.API); err != nil {
		return nil, err
	}
	if s.cfg.APIKey == "" {
		s.cfg.APIKey = randomKey()
		s.keyGenerated = true
	}
	if cfg.JWTSecret != "" {
		s.secret = []byte(cfg.JWTSecret)
	}

	w := workerman.NewWorker(workerURI)
	w.Name = "workerman-push"
	w.Count = cfg.Count
	w.Logger = log
	w.StopTimeout = cfg.StopTimeout
	w.WebSocket.Path = path
	w.WebSocket.PingInterval = cfg.PingInterval
	if cfg.PingInterval > 0 {
		w.WebSocket.PingNotResponseLimit = 2
	}
	if cfg.TLSCert != "" {
		// TLS runs on the event loops: an idle wss client costs a few
		// kilobytes, not a goroutine.
		certs, err := loadCertFiles(cfg.TLSCert, cfg.TLSKey, log)
		if err != nil {
			return nil, err
		}
		w.Transport = "ssl"
		w.TLSConfig = certs.config()
	}
	w.OnWebSocketConnect = s.authenticate
	w.OnRequest = s.serveHTTP
	s.w = w

	opt := gateway.Options{Node: cfg.NodeID, Logger: log}
	if cfg.NATS != "" || cfg.Cluster != "" {
		bo := natsbroker.Options{
			URLs:    splitList(cfg.NATS),
			Cluster: cfg.Cluster,
			Peers:   splitList(cfg.Peers),
			Logger:  log,
		}
		if cfg.HistorySize > 0 {
			// The cluster's history, in JetStream: a client resumes on any node.
			bo.History = &natsbroker.HistoryOptions{Size: cfg.HistorySize, TTL: cfg.HistoryTTL,
				Replicas: cfg.HistoryReplicas, File: cfg.HistoryFile, StoreDir: cfg.NATSStore}
		}
		b, err := natsbroker.New(bo)
		if err != nil {
			return nil, err
		}
		s.broker = b
		opt.Broker = &statsBroker{Broker: b, stats: s.nodeStatsIfReady}
		opt.History = b.History()
	} else if cfg.HistorySize > 0 {
		opt.History = gateway.NewMemoryHistory(gateway.MemoryHistoryOptions{Size: cfg.HistorySize, TTL: cfg.HistoryTTL})
	}
	g, err := gateway.New(w, opt)
	if err != nil {
		return nil, err
	}
	s.g = g
	s.ready.Store(true)
	g.OnConnect = s.onConnect
	g.Welcome = s.welcome
	if cfg.Webhook != "" {
		var secret []byte
		if cfg.WebhookSecret != "" {
			secret = []byte(cfg.WebhookSecret)
		}
		s.hooks = newWebhook(cfg.Webhook, secret, cfg.Hook, log)
		g.OnMessage = s.onMessage
		g.OnClose = s.onClose
	}
	return s, nil
}

// start listens on both endpoints and logs one line saying where.
func (s *server) start() error {
	apiAddr, _ := parseAPI(s.cfg.API)
	ln, err := net.Listen("tcp", apiAddr)
	if err != nil {
		s.g.Close()
		return fmt.Errorf("-api %s: %w", s.cfg.API, err)
	}
	if err := s.w.Listen(); err != nil {
		ln.Close()
		s.g.Close()
		return fmt.Errorf("-listen %s: %w", s.cfg.Listen, err)
	}
	if s.hooks != nil {
		s.hooks.start()
	}
	s.apiLn = ln
	s.api = &http.Server{
		Handler:           s.apiMux(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.apiDone = make(chan struct{})
	go func() {
		defer close(s.apiDone)
		if err := s.api.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("API server stopped", "err", err)
		}
	}()

	attrs := []any{
		"clients", s.clientsURL(),
		"js", s.jsURL(),
		"api", s.apiURL(),
		"node", s.g.Node(),
		"jwt", s.secret != nil,
		"tls", s.w.TLSConfig != nil,
		"webhook", s.cfg.Webhook,
		"hook_signed", s.cfg.WebhookSecret != "",
		"count", s.cfg.Count,
		"ping_interval", s.cfg.PingInterval.String(),
		"history_size", s.cfg.HistorySize,
	}
	if s.cfg.HistorySize > 0 {
		where := "memory"
		if s.broker != nil {
			where = "jetstream"
		}
		attrs = append(attrs, "history_ttl", s.cfg.HistoryTTL.String(), "history", where)
	}
	if s.broker != nil {
		if a := s.broker.ClusterAddr(); a != nil {
			attrs = append(attrs, "cluster", a.String())
		} else {
			attrs = append(attrs, "nats", s.cfg.NATS)
		}
	}
	if s.keyGenerated {
		// Printed only when generated: a key given by the operator is
		// theirs already and should not land in logs.
		attrs = append(attrs, "api_key", s.cfg.APIKey)
	}
	s.log.Info("workerman-push started", attrs...)
	return nil
}

// shutdown stops accepting, closes every client (1001, flushing what was
// queued), stops the API, then sends what the webhook still holds, all
// within ctx.
func (s *server) shutdown(ctx context.Context) error {
	s.draining.Store(true)
	start := time.Now()
	timeout := "none"
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl).Round(time.Millisecond).String()
	}
	s.log.Info("workerman-push stopping", "connections", s.w.ConnectionCount(), "timeout", timeout)
	var errs []error
	if err := s.w.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("clients: %w", err))
	}
	if err := s.api.Shutdown(ctx); err != nil {
		s.api.Close()
		errs = append(errs, fmt.Errorf("API: %w", err))
	}
	<-s.apiDone
	s.g.Close()
	if s.hooks != nil {
		if err := s.hooks.stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("webhook: %w", err))
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		s.log.Warn("workerman-push stopped", "took", time.Since(start).Round(time.Millisecond).String(), "err", err)
	} else {
		s.log.Info("workerman-push stopped", "took", time.Since(start).Round(time.Millisecond).String())
	}
	return err
}

// ---- client side ----

// authenticate checks the token of a WebSocket handshake when a JWT secret
// is set: a refusal is an HTTP 401, before the upgrade.
func (s *server) authenticate(c *workerman.Connection, r *workerman.WebSocketRequest) error {
	if s.secret == nil {
		return nil
	}
	id, err := verifyToken(s.secret, r.Query().Get("token"))
	if err != nil {
		s.log.Info("client rejected", "remote", c.RemoteAddress(), "reason", err.Error())
		return workerman.RejectWebSocket(http.StatusUnauthorized, "invalid token")
	}
	c.SetValue(id)
	return nil
}

// onConnect binds the token's uid and joins its groups before the client
// becomes reachable, so the welcome names the uid and a push to any of
// them that follows the welcome reaches the client.
func (s *server) onConnect(clientID string) {
	c := s.g.Connection(clientID)
	if c == nil {
		return
	}
	id, _ := c.Value().(*identity)
	if id == nil {
		return
	}
	c.SetValue(nil)
	ctx := context.Background() // a local client: no cluster round trip
	if err := s.g.BindUID(ctx, clientID, id.uid); err != nil {
		return // the client is gone already
	}
	for _, grp := range id.groups {
		if err := s.g.JoinGroup(ctx, clientID, grp); err != nil {
			return
		}
	}
}

type welcomeFrame struct {
	Type     string `json:"type"`
	ClientID string `json:"client_id"`
	UID      string `json:"uid"`
}

// welcome is every client's first frame. It runs under the gateway's lock
// once the client is reachable: it only encodes, and queues the connect
// event without waiting.
func (s *server) welcome(c gateway.ClientInfo) gateway.Message {
	b, _ := json.Marshal(welcomeFrame{Type: "welcome", ClientID: c.ID, UID: c.UID})
	if s.hooks != nil {
		s.announced.Store(c.ID, struct{}{})
		s.hooks.enqueue(c.ID, hookEvent{Event: "connect", ClientID: c.ID, UID: c.UID})
	}
	return gateway.Message{Data: b}
}

func (s *server) onMessage(clientID string, m gateway.Message) {
	uid, _ := s.g.UIDByClientID(context.Background(), clientID)
	ev := hookEvent{Event: "message", ClientID: clientID, UID: uid}
	if m.Binary {
		ev.setBinary(m.Data)
	} else {
		ev.setText(m.Data)
	}
	s.hooks.enqueue(clientID, ev)
}

func (s *server) onClose(clientID string, last gateway.ClientInfo) {
	if _, ok := s.announced.LoadAndDelete(clientID); !ok {
		return
	}
	s.hooks.enqueue(clientID, hookEvent{Event: "close", ClientID: clientID, UID: last.UID})
}

// serveHTTP answers the plain HTTP requests of the client port.
func (s *server) serveHTTP(c *workerman.Connection, r *workerman.Request) {
	switch {
	case r.Path() == "/workerman-push.js":
		s.serveClientJS(c, r)
	case r.Path() == s.wsPath:
		c.SendResponse(workerman.NewResponse(http.StatusUpgradeRequired,
			[]byte("workerman-push: connect here with a WebSocket client\n")).
			WithHeader("Content-Type", "text/plain; charset=utf-8").
			WithHeader("Upgrade", "websocket"))
	default:
		c.SendResponse(workerman.NewResponse(http.StatusNotFound, []byte("not found\n")).
			WithHeader("Content-Type", "text/plain; charset=utf-8"))
	}
}

// ---- backend side ----

func (s *server) apiMux() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/", s.apiHandler())
	mux.Handle("/api/"+nodeStatsMethod, s.nodeStatsHandler())
	health := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if why := s.unhealthy(); why != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, why)
			return
		}
		fmt.Fprintln(w, "ok")
	}
	mux.HandleFunc("GET /healthz", health)
	mux.HandleFunc("GET /readyz", health)
	mux.Handle("GET /metrics", s.metricsHandler())
	mux.HandleFunc("GET /{$}", serveDashboard)
	return mux
}

// observeAPI counts every API call, and logs every one that did not
// succeed, one line each: at warning level when the server failed (5xx),
// at info level when the caller did (4xx: a wrong key, a malformed body,
// an unknown client).
func (s *server) observeAPI(method string, status int) {
	s.counters.countAPI(method, status)
	switch {
	case status >= 500:
		s.log.Warn("API error", "method", method, "status", status)
	case status >= 400:
		s.log.Info("API error", "method", method, "status", status)
	}
}

// ---- addresses ----

// parseListen reads -listen (websocket://host:port, optionally with the
// path clients connect to, "/" by default) as the http:// worker that
// serves both the WebSocket and the JS client. wss:// says that the port
// must be served over TLS (secure).
func parseListen(s string) (workerURI, path string, secure bool, err error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "", "", false, fmt.Errorf("-listen %q: want websocket://host:port", s)
	}
	switch strings.ToLower(u.Scheme) {
	case "websocket", "ws":
	case "wss":
		secure = true
	default:
		return "", "", false, fmt.Errorf("-listen %q: want websocket://host:port (or wss:// with -tls-cert and -tls-key)", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", "", false, fmt.Errorf("-listen %q: want websocket://host:port[/path]", s)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return "", "", false, fmt.Errorf("-listen %q: %w", s, err)
	}
	path = u.Path
	if path == "" {
		path = "/"
	}
	if path == "/workerman-push.js" {
		return "", "", false, fmt.Errorf("-listen %q: that path serves the JS client", s)
	}
	return "http://" + u.Host, path, secure, nil
}

// parseAPI reads -api (http://host:port) as a TCP address.
func parseAPI(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("-api %q: want http://host:port", s)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return "", fmt.Errorf("-api %q: %w", s, err)
	}
	return u.Host, nil
}

func (s *server) clientsURL() string {
	if s.w.TLSConfig != nil {
		return "wss://" + s.w.Addr().String() + s.wsPath
	}
	return "ws://" + s.w.Addr().String() + s.wsPath
}

func (s *server) jsURL() string {
	if s.w.TLSConfig != nil {
		return "https://" + s.w.Addr().String() + "/workerman-push.js"
	}
	return "http://" + s.w.Addr().String() + "/workerman-push.js"
}

func (s *server) apiURL() string {
	return "http://" + s.apiLn.Addr().String() + "/api/"
}

func randomKey() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
