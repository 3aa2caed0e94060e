package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"go.uber.org/goleak"
)

// httpc is the tests' HTTP client; its idle connections are closed before
// the leak check.
var httpc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: 10 * time.Second}

func TestMain(m *testing.M) {
	// What runs before the tests (the ants pool the library starts at
	// init) is not a leak.
	before := goleak.IgnoreCurrent()
	code := m.Run()
	httpc.CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(before); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// loopback is what every test listens on.
var loopback = []string{"-listen", "websocket://127.0.0.1:0", "-api", "http://127.0.0.1:0"}

func args(extra ...string) []string { return append(append([]string(nil), loopback...), extra...) }

// logBuf is the server's stdout: the tests read its lines as it writes.
type logBuf struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func newLogBuf() *logBuf { return &logBuf{wrote: make(chan struct{}, 1)} }

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	b.buf.Write(p)
	b.mu.Unlock()
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (b *logBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitLine waits for a line matching re and returns its submatches.
func (b *logBuf) waitLine(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		for line := range strings.SplitSeq(b.String(), "\n") {
			if m := re.FindStringSubmatch(line); m != nil {
				return m
			}
		}
		select {
		case <-b.wrote:
		case <-deadline.C:
			t.Fatalf("no log line matches %v; the log:\n%s", re, b.String())
		}
	}
}

// count is how many lines contain s.
func (b *logBuf) count(s string) int { return strings.Count(b.String(), s) }

// node is a running server, as the tests see it from outside.
type node struct {
	clients string // ws://127.0.0.1:port/
	api     string // http://127.0.0.1:port/api/
	key     string
	log     *logBuf
	stop    func() error // cancels run and returns what it returned
	srv     *server      // startCfg's server, to read its counters
	// tlsClient is the client configuration for a wss:// node.
	tlsClient *tls.Config
}

var startedLine = regexp.MustCompile(`msg="workerman-push started" clients=(\S+) js=\S+ api=(\S+) .*?(?:api_key=(\S+))?$`)

// startRun starts the program as main does, with args and env.
func startRun(t *testing.T, argv []string, env map[string]string) *node {
	t.Helper()
	return start(t, func(ctx context.Context, out io.Writer) error {
		return run(ctx, argv, func(k string) string { return env[k] }, out)
	})
}

// startCfg starts a server from parsed flags, tuned by tweak.
func startCfg(t *testing.T, argv []string, tweak func(*config)) *node {
	t.Helper()
	cfg, err := parseConfig(argv, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(&cfg)
	}
	srv := make(chan *server, 1)
	n := start(t, func(ctx context.Context, out io.Writer) error {
		s, err := newServer(cfg, slog.New(slog.NewTextHandler(out, nil)))
		if err != nil {
			return err
		}
		srv <- s
		return s.run(ctx)
	})
	n.srv = <-srv
	return n
}

func start(t *testing.T, runner func(context.Context, io.Writer) error) *node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := newLogBuf()
	done := make(chan error, 1)
	go func() { done <- runner(ctx, out) }()
	var once sync.Once
	var stopErr error
	n := &node{log: out}
	n.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(20 * time.Second):
				stopErr = errors.New("run did not return 20 s after its context ended")
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := n.stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	// Wait for the start line, or for run to fail.
	started := make(chan []string, 1)
	go func() {
		for {
			s := out.String()
			for line := range strings.SplitSeq(s, "\n") {
				if m := startedLine.FindStringSubmatch(line); m != nil {
					started <- m
					return
				}
			}
			select {
			case <-out.wrote:
			case <-ctx.Done():
				return
			}
		}
	}()
	select {
	case m := <-started:
		n.clients, n.api, n.key = m[1], m[2], m[3]
	case err := <-done:
		done <- err
		t.Fatalf("run returned before starting: %v\n%s", err, out.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("no start line:\n%s", out.String())
	}
	return n
}

// call posts to the HTTP API and decodes the answer.
func (n *node) call(t *testing.T, method string, body any) (int, map[string]any) {
	t.Helper()
	return n.callKey(t, n.key, method, body)
}

func (n *node) callKey(t *testing.T, key, method string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, n.api+method, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s answered %d with %q: not a JSON object", method, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// mustCall is call that expects 200.
func (n *node) mustCall(t *testing.T, method string, body any) map[string]any {
	t.Helper()
	code, out := n.call(t, method, body)
	if code != http.StatusOK {
		t.Fatalf("%s %v: %d %v", method, body, code, out)
	}
	return out
}

// wsClient is a raw WebSocket client (gobwas/ws): it answers pings only
// when told to, and reports every frame.
type wsClient struct {
	t    *testing.T
	conn net.Conn
	r    io.Reader
	id   string
	uid  string
}

type welcome struct {
	Type     string `json:"type"`
	ClientID string `json:"client_id"`
	UID      string `json:"uid"`
}

// dial connects to n with query (url.Values encoded, or "") and reads the
// welcome, which must be the first frame.
func dial(t *testing.T, n *node, query string) *wsClient {
	t.Helper()
	u := n.clients
	if query != "" {
		u += "?" + query
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, br, _, err := ws.Dialer{TLSConfig: n.tlsClient}.Dial(ctx, u)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	c := &wsClient{t: t, conn: conn, r: conn}
	if br != nil {
		c.r = br // it holds what came with the 101 (the welcome)
	}
	t.Cleanup(func() { conn.Close() })
	data, op := c.read()
	var w welcome
	if op != ws.OpText || json.Unmarshal(data, &w) != nil || w.Type != "welcome" || w.ClientID == "" {
		t.Fatalf("first frame (%v) %q is not a welcome", op, data)
	}
	// Exactly the three fields of the wire, nothing else.
	var fields map[string]any
	json.Unmarshal(data, &fields)
	if len(fields) != 3 {
		t.Fatalf("welcome %s: want exactly type, client_id and uid", data)
	}
	c.id, c.uid = w.ClientID, w.UID
	return c
}

// read returns the next data frame, answering pings; it fails the test
// on a close or after 10 s.
func (c *wsClient) read() ([]byte, ws.OpCode) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	data, op, err := wsutil.ReadServerData(struct {
		io.Reader
		io.Writer
	}{c.r, c.conn})
	if err != nil {
		c.t.Fatalf("client %s: read: %v", c.id, err)
	}
	return data, op
}

func (c *wsClient) expectText(want string) {
	c.t.Helper()
	data, op := c.read()
	if op != ws.OpText || string(data) != want {
		c.t.Fatalf("client %s got %v %q, want text %q", c.id, op, data, want)
	}
}

func (c *wsClient) expectBinary(want []byte) {
	c.t.Helper()
	data, op := c.read()
	if op != ws.OpBinary || !bytes.Equal(data, want) {
		c.t.Fatalf("client %s got %v %q, want binary %q", c.id, op, data, want)
	}
}

func (c *wsClient) send(op ws.OpCode, data []byte) {
	c.t.Helper()
	if err := wsutil.WriteClientMessage(c.conn, op, data); err != nil {
		c.t.Fatalf("client %s: write: %v", c.id, err)
	}
}

// closeCode reads until the server's close frame and returns its code.
func (c *wsClient) closeCode() int {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		h, err := ws.ReadHeader(c.r)
		if err != nil {
			c.t.Fatalf("client %s: no close frame: %v", c.id, err)
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(c.r, payload); err != nil {
			c.t.Fatalf("client %s: %v", c.id, err)
		}
		if h.OpCode == ws.OpClose {
			code, _ := ws.ParseCloseFrameData(payload)
			return int(code)
		}
	}
}

// handshakeStatus sends a WebSocket upgrade for target by hand and returns
// the HTTP status of the answer.
func handshakeStatus(t *testing.T, n *node, query string) int {
	t.Helper()
	u, _ := url.Parse(n.clients)
	conn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	target := u.Path
	if query != "" {
		target += "?" + query
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", target, u.Host)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("handshake %s: %v", target, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
