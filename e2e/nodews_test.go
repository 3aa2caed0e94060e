package e2e

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/workerman-go/workerman"
)

// nodeWS returns the path of a node_modules folder holding Node's ws
// package (a strict, widely used WebSocket client nobody here wrote),
// installed once from the npm registry into the user's cache. Without node
// and npm the test is skipped, unless E2E_REQUIRE_NODE is set (CI).
func nodeWS(t *testing.T) (node, modules string) {
	t.Helper()
	skip := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("E2E_REQUIRE_NODE") != "" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("no node: %v", err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "workerman-go-e2e", "node-ws8")
	modules = filepath.Join(dir, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "ws", "package.json")); err == nil {
		return node, modules
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		skip("no npm to install ws: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "install", "--prefix", dir, "--no-audit", "--no-fund", "--silent", "ws@8")
	if out, err := cmd.CombinedOutput(); err != nil {
		skip("npm install ws: %v\n%s", err, out)
	}
	return node, modules
}

// The client of the Node script: one connection per scenario; it prints
// one JSON line per event.
const nodeClient = `
const WebSocket = require('ws');
const [url, scenario] = process.argv.slice(2);
const out = (o) => console.log(JSON.stringify(o));
const ws = new WebSocket(url);
ws.on('error', (e) => out({event: 'error', message: String(e && e.message)}));
ws.on('close', (code, reason) => { out({event: 'close', code, reason: String(reason)}); process.exit(0); });
ws.on('message', (data, isBinary) => {
  out({event: 'message', binary: isBinary, hex: Buffer.from(data).toString('hex')});
  if (scenario === 'types' && ++got === 3) ws.close(1000, 'done');
});
let got = 0;
ws.on('open', () => {
  switch (scenario) {
  case 'types':
    ws.send(Buffer.from([0xff, 0xfe, 0x00, 0x80]));   // binary, not UTF-8
    ws.send('héllo');                                  // text
    ws.send('close-me-not');
    break;
  case 'protocol-error':
    // A masked frame with the reserved opcode 3, straight onto the socket.
    ws._socket.write(Buffer.from([0x83, 0x80, 1, 2, 3, 4]));
    break;
  case 'server-close':
    ws.send('bye');
    break;
  }
});
setTimeout(() => { out({event: 'timeout'}); process.exit(1); }, 10000);
`

type nodeEvent struct {
	Event   string `json:"event"`
	Binary  bool   `json:"binary"`
	Hex     string `json:"hex"`
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// Node's ws client, as a new user tries the examples: examples/server and
// examples/echo answer in the type of the message (a binary message that
// is not UTF-8 comes back binary, never as an invalid text frame, which ws
// would drop the connection for); a protocol error is answered with 1002,
// a server's close with its code; ws reports no error in any of them.
func TestNodeWebSocketClient(t *testing.T) {
	node, modules := nodeWS(t)
	script := filepath.Join(t.TempDir(), "client.js")
	if err := os.WriteFile(script, []byte(nodeClient), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(url, scenario string) []nodeEvent {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, script, url, scenario)
		cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: node: %v\n%s", scenario, err, out)
		}
		var evs []nodeEvent
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var ev nodeEvent
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("%s: %q: %v", scenario, line, err)
			}
			if ev.Event == "error" || ev.Event == "timeout" {
				t.Fatalf("%s: ws reported %+v (all: %s)", scenario, ev, out)
			}
			evs = append(evs, ev)
		}
		return evs
	}

	for _, ex := range []struct{ name, prefix string }{{"server", "Message received: "}, {"echo", ""}} {
		t.Run("examples/"+ex.name, func(t *testing.T) {
			addr := runExample(t, ex.name, "-listen", "websocket://127.0.0.1:0")
			evs := run("ws://"+addr+"/", "types")
			want := []nodeEvent{
				{Event: "message", Binary: true, Hex: hex.EncodeToString([]byte(ex.prefix + "\xff\xfe\x00\x80"))},
				{Event: "message", Hex: hex.EncodeToString([]byte(ex.prefix + "héllo"))},
				{Event: "message", Hex: hex.EncodeToString([]byte(ex.prefix + "close-me-not"))},
				{Event: "close", Code: 1000, Reason: "done"},
			}
			if len(evs) != len(want) {
				t.Fatalf("got %+v, want %+v", evs, want)
			}
			for i := range want {
				if evs[i] != want[i] {
					t.Fatalf("event %d is %+v, want %+v", i, evs[i], want[i])
				}
			}
			if evs := run("ws://"+addr+"/", "protocol-error"); len(evs) != 1 || evs[0].Event != "close" || evs[0].Code != 1002 {
				t.Fatalf("protocol error: %+v, want one close with 1002", evs)
			}
		})
	}

	w := workerman.NewWorker("websocket://127.0.0.1:0")
	w.OnMessage = func(c *workerman.Connection, data []byte) { c.CloseWebSocket(4001, "bye") }
	if err := w.Listen(); err != nil {
		t.Fatal(err)
	}
	defer stop(w)
	if evs := run("ws://"+w.Addr().String()+"/", "server-close"); len(evs) != 1 || evs[0] != (nodeEvent{Event: "close", Code: 4001, Reason: "bye"}) {
		t.Fatalf("server close: %+v, want one close with 4001 bye", evs)
	}
}

// runExample builds examples/<name> and runs it with args until the test
// ends; it returns the address it listens on, read from what it prints.
func runExample(t *testing.T, name string, args ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("go", "build", "-o", bin, "../examples/"+name).CombinedOutput(); err != nil {
		t.Fatalf("building examples/%s: %v\n%s", name, err, out)
	}
	cmd := exec.Command(bin, args...)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		r.Close()
	})
	addrs := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrs <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case a := <-addrs:
		return a
	case <-time.After(30 * time.Second):
		t.Fatalf("examples/%s never said where it listens", name)
		return ""
	}
}

// listenRE finds the address in "Server listening on websocket://127.0.0.1:1234"
// and "echo: listening on 127.0.0.1:1234 (...)".
var listenRE = regexp.MustCompile(`listening on (?:websocket://)?(127\.0\.0\.1:[1-9][0-9]*)`)
