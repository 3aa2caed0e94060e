package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/golang-jwt/jwt/v5"
	"github.com/workerman-go/workerman/gateway"
)

// With no flags but the loopback addresses, the server prints a key, and
// a backend pushes with it.
func TestNoFlags(t *testing.T) {
	n := startRun(t, args(), nil)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(n.key) {
		t.Fatalf("printed API key %q", n.key)
	}
	a := dial(t, n, "")
	b := dial(t, n, "")
	if a.uid != "" || a.id == b.id {
		t.Fatalf("welcomes: %+v %+v", a, b)
	}

	n.mustCall(t, "sendToClient", map[string]any{"client_id": a.id, "message": "to a"})
	a.expectText("to a")
	n.mustCall(t, "bindUid", map[string]any{"client_id": b.id, "uid": "bob"})
	n.mustCall(t, "sendToUid", map[string]any{"uid": "bob", "message": "to bob"})
	b.expectText("to bob")
	n.mustCall(t, "joinGroup", map[string]any{"client_id": a.id, "group": "room"})
	n.mustCall(t, "sendToGroup", map[string]any{"group": "room", "message": "to room"})
	a.expectText("to room")
	n.mustCall(t, "sendToAll", map[string]any{"message": "to all", "exclude_client_ids": []string{a.id}})
	b.expectText("to all")
	n.mustCall(t, "sendToAll", map[string]any{"message": "marker"})
	a.expectText("marker") // a, excluded above, got nothing before it
	b.expectText("marker")

	if code, _ := n.callKey(t, "wrong", "sendToAll", map[string]any{"message": "x"}); code != http.StatusUnauthorized {
		t.Fatalf("wrong key: %d, want 401", code)
	}
	if c := n.log.count(`msg="API error" method=sendToAll status=401`); c != 1 {
		t.Fatalf("%d log lines for the refused call, want 1:\n%s", c, n.log.String())
	}
	if got := httpGet(t, strings.TrimSuffix(n.api, "/api/")+"/healthz"); got != http.StatusOK {
		t.Fatalf("GET /healthz: %d", got)
	}
	// The client port answers plain HTTP on its WebSocket path with 426.
	if got := httpGet(t, "http"+strings.TrimPrefix(n.clients, "ws")); got != http.StatusUpgradeRequired {
		t.Fatalf("GET / on the client port: %d, want 426", got)
	}

	// SIGTERM's path: every client gets a close frame with 1001.
	go n.stop()
	if code := a.closeCode(); code != 1001 {
		t.Fatalf("close code on stop: %d, want 1001", code)
	}
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	if n.log.count("workerman-push stopped") != 1 {
		t.Fatalf("log:\n%s", n.log.String())
	}
}

func httpGet(t *testing.T, u string) int {
	t.Helper()
	resp, err := httpc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestDefaults(t *testing.T) {
	cfg, err := parseConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "websocket://0.0.0.0:8000" || cfg.API != "http://127.0.0.1:8001" || cfg.PingInterval != 25*time.Second ||
		cfg.APIKey != "" || cfg.JWTSecret != "" || cfg.Webhook != "" || cfg.NodeID != "" || cfg.Count < 1 ||
		cfg.LogFormat != "text" || cfg.LogLevel != slog.LevelInfo || cfg.HistorySize != 0 || cfg.HistoryTTL != 10*time.Minute {
		t.Fatalf("defaults: %+v", cfg)
	}
}

// Every flag is read from WORKERMAN_PUSH_<NAME>; the command line wins.
func TestEnv(t *testing.T) {
	env := map[string]string{
		"WORKERMAN_PUSH_LISTEN":        "websocket://127.0.0.1:0",
		"WORKERMAN_PUSH_API":           "http://127.0.0.1:0",
		"WORKERMAN_PUSH_API_KEY":       "from-env",
		"WORKERMAN_PUSH_NODE_ID":       "env-node",
		"WORKERMAN_PUSH_COUNT":         "3",
		"WORKERMAN_PUSH_PING_INTERVAL": "7s",
		"WORKERMAN_PUSH_JWT_SECRET":    "s3cret",
		"WORKERMAN_PUSH_WEBHOOK":       "http://127.0.0.1:1/hook",
		"WORKERMAN_PUSH_LOG_FORMAT":    "json",
		"WORKERMAN_PUSH_LOG_LEVEL":     "warn",
		"WORKERMAN_PUSH_HISTORY_SIZE":  "500",
		"WORKERMAN_PUSH_HISTORY_TTL":   "90s",
	}
	getenv := func(k string) string { return env[k] }
	cfg, err := parseConfig([]string{"-count", "2"}, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := config{Listen: "websocket://127.0.0.1:0", API: "http://127.0.0.1:0", APIKey: "from-env", JWTSecret: "s3cret",
		Webhook: "http://127.0.0.1:1/hook", NodeID: "env-node", Count: 2, PingInterval: 7 * time.Second, StopTimeout: cfg.StopTimeout,
		LogFormat: "json", LogLevel: slog.LevelWarn, HistorySize: 500, HistoryTTL: 90 * time.Second}
	if cfg != want {
		t.Fatalf("got  %+v\nwant %+v", cfg, want)
	}

	for name, bad := range map[string]string{
		"WORKERMAN_PUSH_COUNT":         "many",
		"WORKERMAN_PUSH_PING_INTERVAL": "often",
		"WORKERMAN_PUSH_WEBHOOK":       "ftp://x/",
		"WORKERMAN_PUSH_LOG_FORMAT":    "xml",
		"WORKERMAN_PUSH_LOG_LEVEL":     "loud",
		"WORKERMAN_PUSH_HISTORY_SIZE":  "-1",
		"WORKERMAN_PUSH_HISTORY_TTL":   "0s",
	} {
		_, err := parseConfig(nil, func(k string) string {
			if k == name {
				return bad
			}
			return ""
		}, io.Discard)
		if err == nil || (!strings.Contains(err.Error(), name) && !strings.Contains(err.Error(), "-webhook") && !strings.Contains(err.Error(), "-log-format") && !strings.Contains(err.Error(), "-history-")) {
			t.Errorf("%s=%s: err %v", name, bad, err)
		}
	}

	// Running: the key from the environment works, and is not printed; a
	// key on the command line replaces it.
	n := startRun(t, nil, map[string]string{
		"WORKERMAN_PUSH_LISTEN":  "websocket://127.0.0.1:0",
		"WORKERMAN_PUSH_API":     "http://127.0.0.1:0",
		"WORKERMAN_PUSH_API_KEY": "from-env",
		"WORKERMAN_PUSH_NODE_ID": "env-node",
	})
	if n.key != "" || strings.Contains(n.log.String(), "from-env") {
		t.Fatalf("a given key was printed:\n%s", n.log.String())
	}
	n.key = "from-env"
	c := dial(t, n, "")
	if !strings.HasPrefix(c.id, "env-node.") {
		t.Fatalf("client ID %q does not name node env-node", c.id)
	}
	n.mustCall(t, "sendToClient", map[string]any{"client_id": c.id, "message": "hi"})
	c.expectText("hi")

	m := startRun(t, []string{"-api-key", "from-flag"}, map[string]string{
		"WORKERMAN_PUSH_LISTEN":  "websocket://127.0.0.1:0",
		"WORKERMAN_PUSH_API":     "http://127.0.0.1:0",
		"WORKERMAN_PUSH_API_KEY": "from-env",
	})
	if code, _ := m.callKey(t, "from-env", "getAllClientCount", nil); code != http.StatusUnauthorized {
		t.Fatalf("env key with a flag key: %d, want 401", code)
	}
	if code, _ := m.callKey(t, "from-flag", "getAllClientCount", nil); code != http.StatusOK {
		t.Fatalf("flag key: %d, want 200", code)
	}
}

func TestParseListen(t *testing.T) {
	for _, tc := range []struct {
		in, uri, path string
	}{
		{"websocket://0.0.0.0:8000", "http://0.0.0.0:8000", "/"},
		{"ws://127.0.0.1:0/", "http://127.0.0.1:0", "/"},
		{"websocket://[::1]:9000/push", "http://[::1]:9000", "/push"},
		{"http://0.0.0.0:8000", "", ""},
		{"wss://0.0.0.0:8000", "http://0.0.0.0:8000", "/"},
		{"https://0.0.0.0:8000", "", ""},
		{"websocket://0.0.0.0", "", ""},
		{"websocket://0.0.0.0:8000/?x=1", "", ""},
		{"websocket://0.0.0.0:8000/workerman-push.js", "", ""},
		{"0.0.0.0:8000", "", ""},
	} {
		uri, path, _, err := parseListen(tc.in)
		if uri != tc.uri || path != tc.path || (err == nil) != (tc.uri != "") {
			t.Errorf("parseListen(%q) = %q, %q, %v; want %q, %q", tc.in, uri, path, err, tc.uri, tc.path)
		}
	}
	for in, ok := range map[string]bool{
		"http://127.0.0.1:8001":  true,
		"http://127.0.0.1:8001/": true,
		"http://127.0.0.1":       false,
		"https://127.0.0.1:8001": false,
		"http://127.0.0.1:1/api": false,
	} {
		if _, err := parseAPI(in); (err == nil) != ok {
			t.Errorf("parseAPI(%q): %v", in, err)
		}
	}
}

// message is a text frame, message_base64 a binary one, byte for byte.
func TestMessageTypes(t *testing.T) {
	n := startCfg(t, args(), nil)
	c := dial(t, n, "")
	bin := []byte{0, 1, 2, 0xff, 'x'}
	n.mustCall(t, "sendToClient", map[string]any{"client_id": c.id, "message": `{"app":"json"}`})
	c.expectText(`{"app":"json"}`)
	n.mustCall(t, "sendToClient", map[string]any{"client_id": c.id, "message_base64": base64.StdEncoding.EncodeToString(bin)})
	c.expectBinary(bin)
	n.mustCall(t, "sendToAll", map[string]any{"message_base64": base64.StdEncoding.EncodeToString(bin[:2])})
	c.expectBinary(bin[:2])
	n.mustCall(t, "sendToAll", map[string]any{"message": "é"})
	c.expectText("é")
}

func token(t testing.TB, secret string, method jwt.SigningMethod, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	var key any = []byte(secret)
	if method == jwt.SigningMethodNone {
		key = jwt.UnsafeAllowNoneSignatureType
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func q(tok string) string { return url.Values{"token": {tok}}.Encode() }

func TestJWT(t *testing.T) {
	const secret = "top-secret"
	n := startCfg(t, args("-jwt-secret", secret), nil)
	exp := time.Now().Add(time.Hour).Unix()

	a := dial(t, n, q(token(t, secret, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": exp, "groups": []string{"news", "room:7"}})))
	if a.uid != "alice" {
		t.Fatalf("welcome uid %q, want alice", a.uid)
	}
	// Bound and joined before the welcome: pushes right after it reach a.
	n.mustCall(t, "sendToGroup", map[string]any{"group": "room:7", "message": "room"})
	a.expectText("room")
	n.mustCall(t, "sendToUid", map[string]any{"uid": "alice", "message": "alice"})
	a.expectText("alice")
	n.mustCall(t, "sendToGroup", map[string]any{"groups": []string{"news"}, "message": "news"})
	a.expectText("news")
	if out := n.mustCall(t, "getUidByClientId", map[string]any{"client_id": a.id}); out["uid"] != "alice" {
		t.Fatalf("getUidByClientId: %v", out)
	}
	// No exp, no groups: accepted.
	b := dial(t, n, q(token(t, secret, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "bob"})))
	if b.uid != "bob" {
		t.Fatalf("welcome uid %q, want bob", b.uid)
	}

	for name, query := range map[string]string{
		"missing":      "",
		"empty":        q(""),
		"garbage":      q("not.a.jwt"),
		"expired":      q(token(t, secret, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Minute).Unix()})),
		"wrong secret": q(token(t, "other", jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": exp})),
		"alg none":     q(token(t, "", jwt.SigningMethodNone, jwt.MapClaims{"sub": "alice", "exp": exp})),
		"HS512":        q(token(t, secret, jwt.SigningMethodHS512, jwt.MapClaims{"sub": "alice", "exp": exp})),
		"not yet":      q(token(t, secret, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "nbf": time.Now().Add(time.Hour).Unix()})),
		"no sub":       q(token(t, secret, jwt.SigningMethodHS256, jwt.MapClaims{"exp": exp})),
		"groups type":  q(token(t, secret, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "groups": "news"})),
		"empty group":  q(token(t, secret, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "groups": []string{""}})),
	} {
		if code := handshakeStatus(t, n, query); code != http.StatusUnauthorized {
			t.Errorf("%s token: HTTP %d, want 401", name, code)
		}
	}
	if c := n.log.count(`msg="client rejected"`); c != 11 {
		t.Errorf("%d rejection lines, want one per rejection (11)", c)
	}
	// The rejected handshakes never became clients.
	if out := n.mustCall(t, "getAllClientCount", nil); out["count"] != float64(2) {
		t.Fatalf("getAllClientCount: %v, want 2", out)
	}
}

// The heartbeat closes a client that answers nothing, and keeps one that
// answers its pings.
func TestHeartbeat(t *testing.T) {
	const interval = 100 * time.Millisecond
	n := startCfg(t, args("-ping-interval", interval.String()), nil)
	silent := dial(t, n, "")
	alive := dial(t, n, "")

	// alive answers every ping as it comes, and reports them.
	pinged := make(chan struct{}, 1000)
	texts := make(chan string, 10)
	done := make(chan error, 1)
	go func() {
		for {
			h, err := ws.ReadHeader(alive.r)
			if err != nil {
				done <- err
				return
			}
			payload := make([]byte, h.Length)
			if _, err := io.ReadFull(alive.r, payload); err != nil {
				done <- err
				return
			}
			if h.Masked {
				ws.Cipher(payload, h.Mask, 0)
			}
			switch h.OpCode {
			case ws.OpPing:
				if err := ws.WriteFrame(alive.conn, ws.MaskFrame(ws.NewPongFrame(payload))); err != nil {
					done <- err
					return
				}
				pinged <- struct{}{}
			case ws.OpText:
				texts <- string(payload)
			default:
				done <- fmt.Errorf("alive got opcode %v", h.OpCode)
				return
			}
		}
	}()
	t.Cleanup(func() {
		alive.conn.Close()
		<-done
	})

	// silent never answers: it sees pings, then the connection ends.
	silent.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	pings := 0
	for {
		h, err := ws.ReadHeader(silent.r)
		if err != nil {
			break // closed by the server
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(silent.r, payload); err != nil {
			break
		}
		if h.OpCode == ws.OpPing {
			pings++
		}
		if h.OpCode == ws.OpClose {
			break
		}
	}
	if pings == 0 {
		t.Fatal("no ping before the close")
	}
	// The server's OnClose follows its close frame: poll, bounded.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if out := n.mustCall(t, "isOnline", map[string]any{"client_id": silent.id}); out["online"] == false {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("silent still online 10 s after its close")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// alive outlives more pings than silent got, and a push still reaches it.
	for range pings + 3 {
		select {
		case <-pinged:
		case err := <-done:
			t.Fatalf("alive: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("no ping")
		}
	}
	n.mustCall(t, "sendToClient", map[string]any{"client_id": alive.id, "message": "still here"})
	select {
	case s := <-texts:
		if s != "still here" {
			t.Fatalf("alive got %q", s)
		}
	case err := <-done:
		t.Fatalf("alive: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("push did not arrive")
	}
}

// -ping-interval 0 sends no pings.
func TestNoHeartbeat(t *testing.T) {
	n := startCfg(t, args("-ping-interval", "0"), nil)
	c := dial(t, n, "")
	n.mustCall(t, "sendToClient", map[string]any{"client_id": c.id, "message": "only this"})
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	h, err := ws.ReadHeader(c.r)
	if err != nil || h.OpCode != ws.OpText {
		t.Fatalf("first frame after the welcome: %v %v, want the text push", h.OpCode, err)
	}
}

// The client port serves the JS client, with its validator.
func TestClientJS(t *testing.T) {
	n := startCfg(t, args(), nil)
	u := "http" + strings.TrimPrefix(strings.TrimSuffix(n.clients, "/"), "ws") + "/workerman-push.js"
	resp, err := httpc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") ||
		!bytes.Equal(body, gateway.ClientJS()) {
		t.Fatalf("GET %s: %d %q, %d bytes", u, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	etag := resp.Header.Get("ETag")
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if etag == "" || resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match %s: %d, want 304", etag, resp.StatusCode)
	}
	if got := httpGet(t, strings.Replace(u, "workerman-push.js", "other", 1)); got != http.StatusNotFound {
		t.Fatalf("GET /other: %d, want 404", got)
	}
}
