package gateway

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func serveClientJS(t *testing.T, method string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "/workerman-push.js", nil)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	ClientJSHandler().ServeHTTP(w, r)
	return w
}

func TestClientJSHandler(t *testing.T) {
	get := serveClientJS(t, http.MethodGet, nil)
	etag := get.Header().Get("ETag")
	if get.Code != http.StatusOK {
		t.Fatalf("GET: %d", get.Code)
	}
	if !bytes.Equal(get.Body.Bytes(), ClientJS()) || !bytes.Contains(get.Body.Bytes(), []byte("WorkermanPush")) {
		t.Fatalf("GET: the body is not client.js (%d bytes)", get.Body.Len())
	}
	if len(etag) < 3 || !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) {
		t.Fatalf("ETag %q is not a strong validator", etag)
	}

	for _, tc := range []struct {
		name, method string
		header       map[string]string
		status       int
		body         bool // the whole file
	}{
		{"GET", http.MethodGet, nil, http.StatusOK, true},
		{"HEAD", http.MethodHead, nil, http.StatusOK, false},
		{"If-None-Match", http.MethodGet, map[string]string{"If-None-Match": etag}, http.StatusNotModified, false},
		{"If-None-Match, HEAD", http.MethodHead, map[string]string{"If-None-Match": etag}, http.StatusNotModified, false},
		{"If-None-Match in a list", http.MethodGet, map[string]string{"If-None-Match": `"old", ` + etag}, http.StatusNotModified, false},
		{"If-None-Match weak", http.MethodGet, map[string]string{"If-None-Match": "W/" + etag}, http.StatusNotModified, false},
		{"If-None-Match *", http.MethodGet, map[string]string{"If-None-Match": "*"}, http.StatusNotModified, false},
		{"If-None-Match another version", http.MethodGet, map[string]string{"If-None-Match": `"old"`}, http.StatusOK, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serveClientJS(t, tc.method, tc.header)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			h := w.Header()
			if got := h.Get("ETag"); got != etag {
				t.Errorf("ETag %q, want %q", got, etag)
			}
			if got := h.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control %q", got)
			}
			if tc.status == http.StatusOK {
				if got := h.Get("Content-Type"); got != "text/javascript; charset=utf-8" {
					t.Errorf("Content-Type %q", got)
				}
				if got, want := h.Get("Content-Length"), len(clientJS); got != strconv.Itoa(want) {
					t.Errorf("Content-Length %q, want %d", got, want)
				}
			}
			if tc.body != (w.Body.Len() > 0) {
				t.Errorf("body of %d bytes", w.Body.Len())
			}
		})
	}
}

func TestClientJSHandlerRefusesOtherMethods(t *testing.T) {
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		w := serveClientJS(t, m, nil)
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: %d, want 405", m, w.Code)
		}
		if got := w.Header().Get("Allow"); got != "GET, HEAD" {
			t.Errorf("%s: Allow %q", m, got)
		}
		if w.Header().Get("ETag") != "" || bytes.Contains(w.Body.Bytes(), []byte("WorkermanPush")) {
			t.Errorf("%s: served the file", m)
		}
	}
}

func TestClientJSIsACopy(t *testing.T) {
	b := ClientJS()
	b[0] ^= 0xff
	if bytes.Equal(b, ClientJS()) {
		t.Fatal("changing what ClientJS returned changed the file")
	}
}

// TestClientJSInNode runs client.js in Node against a fake WebSocket and a
// fake clock, to check the reconnect schedule exactly: which URL, after
// how long, with which token. (e2e/pushjs_test.go runs it in Chromium
// against a gateway.) Without node it is skipped, unless E2E_REQUIRE_NODE
// is set, as in CI.
func TestClientJSInNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("E2E_REQUIRE_NODE") != "" {
			t.Fatalf("no node, and E2E_REQUIRE_NODE is set: %v", err)
		}
		t.Skipf("no node: %v", err)
	}
	dir := t.TempDir()
	for name, body := range map[string][]byte{"client.js": clientJS, "test.js": []byte(clientJSNodeTest)} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(node, filepath.Join(dir, "test.js"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("%s", out)
}

const clientJSNodeTest = `
"use strict";
const assert = require("assert");

// A fake clock: setTimeout runs only when the test advances time.
let now = 0, timers = [], nextTimer = 1;
globalThis.setTimeout = (fn, ms) => { const id = nextTimer++; timers.push({ id, at: now + (ms || 0), fn }); return id; };
globalThis.clearTimeout = (id) => { timers = timers.filter((t) => t.id !== id); };
Date.now = () => now;
Math.random = () => 0; // every wait is half the back-off: exact numbers
const flush = () => new Promise((r) => setImmediate(r));
async function advance(ms) {
  const end = now + ms;
  for (;;) {
    await flush();
    timers.sort((a, b) => a.at - b.at || a.id - b.id);
    const t = timers[0];
    if (!t || t.at > end) break;
    timers.shift();
    now = t.at;
    t.fn();
  }
  now = end;
  await flush();
}

// A fake WebSocket the test drives from the server's side.
const sockets = [];
class FakeWebSocket {
  constructor(url) { this.url = url; this.readyState = 0; this.sent = []; sockets.push(this); }
  send(d) { this.sent.push(d); }
  close(code) { this.readyState = 3; this.closedWith = code; }
  open() { this.readyState = 1; this.onopen && this.onopen({}); }
  msg(data) { this.onmessage && this.onmessage({ data }); }
  welcome(id, uid) { this.open(); this.msg(JSON.stringify({ type: "welcome", client_id: id, uid: uid || "" })); }
  serverClose(code) { this.readyState = 3; this.onclose && this.onclose({ code, reason: "" }); }
  fail() { this.readyState = 3; this.onerror && this.onerror({}); this.onclose && this.onclose({ code: 1006, reason: "" }); }
}
globalThis.WebSocket = FakeWebSocket;
// The page's window events ("online").
let listeners = {};
globalThis.addEventListener = (name, fn) => { (listeners[name] = listeners[name] || []).push(fn); };
globalThis.removeEventListener = (name, fn) => { listeners[name] = (listeners[name] || []).filter((f) => f !== fn); };
const fire = (name) => (listeners[name] || []).slice().forEach((f) => f({ type: name }));
const WorkermanPush = require("./client.js");
const last = () => sockets[sockets.length - 1];

function client(urls, options) {
  const p = new WorkermanPush(urls, Object.assign({ minReconnectDelay: 100, maxReconnectDelay: 1000, connectTimeout: 5000 }, options));
  p.events = [];
  p.onopen = (e) => p.events.push(["open", e.url]);
  p.onwelcome = (w) => p.events.push(["welcome", w.clientId, w.uid, w.url]);
  p.onmessage = (d, m) => p.events.push(["message", m.binary ? "binary:" + new Uint8Array(d).join(",") : d]);
  p.onclose = (e) => p.events.push(["close", e.code, e.url, e.reconnect, e.delay, e.clientId]);
  p.onerror = (e) => p.events.push(["error", e.message]);
  return p;
}
const closes = (p) => p.events.filter((e) => e[0] === "close");

// waitsThen checks that the next socket comes exactly after ms, to url.
async function waitsThen(ms, url) {
  const n = sockets.length;
  if (ms > 0) { await advance(ms - 1); assert.strictEqual(sockets.length, n, "connected before " + ms + " ms"); }
  await advance(ms > 0 ? 1 : 0);
  assert.strictEqual(sockets.length, n + 1, "no connection after " + ms + " ms");
  assert.strictEqual(last().url.split("?")[0], url);
  return last();
}

const tests = {
  async "back-off doubles up to the cap, moving through the list; a welcome resets it"() {
    const p = client(["ws://a/", "ws://b/"]);
    await waitsThen(0, "ws://a/");
    const plan = [[50, "ws://b/"], [100, "ws://a/"], [200, "ws://b/"], [400, "ws://a/"], [500, "ws://b/"], [500, "ws://a/"]];
    for (const [ms, url] of plan) { last().fail(); await waitsThen(ms, url); }
    last().welcome("n.1", "alice");
    assert.deepStrictEqual([p.clientId, p.uid, p.state, p.url], ["n.1", "alice", "connected", "ws://a/"]);
    last().serverClose(1000);
    assert.deepStrictEqual(closes(p).pop(), ["close", 1000, "ws://a/", true, 50, "n.1"]);
    assert.deepStrictEqual([p.clientId, p.state], ["", "disconnected"]);
    await waitsThen(50, "ws://a/"); // the same URL: it worked
    p.close();
  },
  async "1001 moves on at once, until the whole list went away"() {
    const p = client(["ws://a/", "ws://b/"]);
    await waitsThen(0, "ws://a/");
    last().welcome("a.1"); last().serverClose(1001);
    await waitsThen(0, "ws://b/");
    last().welcome("b.1"); last().serverClose(1001);
    await waitsThen(0, "ws://a/");
    last().welcome("a.2"); last().serverClose(1001); // a and b both went away
    await waitsThen(50, "ws://b/");
    last().welcome("b.2");
    await advance(1001); // a connection that lasted: a new series
    last().serverClose(1001);
    await waitsThen(0, "ws://a/");
    last().open(); last().serverClose(1001); // before the welcome: a failure
    await waitsThen(50, "ws://b/");
    p.close();
  },
  async "the token is read for every connection"() {
    let n = 0;
    const p = client(["ws://a/?x=1", "ws://b/"], { token: () => (++n === 2 ? Promise.resolve("t 2") : "t" + n) });
    await waitsThen(0, "ws://a/");
    assert.strictEqual(last().url, "ws://a/?x=1&token=t1");
    last().fail();
    await waitsThen(50, "ws://b/");
    assert.strictEqual(last().url, "ws://b/?token=t%202");
    p.close();
    const q = client("ws://c/", { token: "" });
    await waitsThen(0, "ws://c/");
    assert.strictEqual(last().url, "ws://c/");
    q.close();
    const r = client(["ws://a/", "ws://b/"], { token: () => { throw new Error("no token"); } });
    const before = sockets.length;
    await advance(0);
    assert.strictEqual(sockets.length, before);
    assert.deepStrictEqual(r.events, [["error", "no token"], ["close", 0, "ws://a/", true, 50, ""]]);
    r.close();
  },
  async "no welcome within connectTimeout: the next URL"() {
    const p = client(["ws://a/", "ws://b/"]);
    const s = await waitsThen(0, "ws://a/");
    s.open();
    await advance(5000);
    assert.strictEqual(s.readyState, 3);
    assert.deepStrictEqual(p.events.filter((e) => e[0] !== "open")[0][0], "error");
    await waitsThen(50, "ws://b/");
    p.close();
  },
  async "messages, send and close"() {
    const p = client("ws://a/");
    const s = await waitsThen(0, "ws://a/");
    assert.strictEqual(p.send("early"), false);
    s.welcome("a.1");
    s.msg("text"); s.msg(new Uint8Array([1, 2, 255]).buffer);
    assert.strictEqual(p.send("hi"), true);
    assert.deepStrictEqual(s.sent, ["hi"]);
    p.close(); p.close();
    assert.deepStrictEqual(p.events, [
      ["open", "ws://a/"], ["welcome", "a.1", "", "ws://a/"], ["message", "text"], ["message", "binary:1,2,255"],
      ["close", 1000, "ws://a/", false, 0, "a.1"],
    ]);
    assert.strictEqual(s.closedWith, 1000);
    assert.strictEqual(p.send("late"), false);
    const n = sockets.length;
    await advance(60000);
    assert.strictEqual(sockets.length, n, "connected after close()");
  },
  async "close() while waiting stops for good"() {
    const p = client("ws://a/");
    (await waitsThen(0, "ws://a/")).fail();
    p.close();
    const n = sockets.length;
    await advance(60000);
    assert.strictEqual(sockets.length, n);
    assert.deepStrictEqual(closes(p).map((e) => e[3]), [true, false]);
  },
  async "a server without a welcome: the first frame is a message"() {
    const p = client("ws://a/");
    const s = await waitsThen(0, "ws://a/");
    s.open(); s.msg("hello");
    assert.deepStrictEqual([p.state, p.clientId], ["connected", ""]);
    assert.deepStrictEqual(p.events.pop(), ["message", "hello"]);
    p.close();
  },
  async "the browser going online ends the wait at once"() {
    const p = client(["ws://a/", "ws://b/"]);
    (await waitsThen(0, "ws://a/")).fail();
    (await waitsThen(50, "ws://b/")).fail(); // now waiting 100 ms for a
    const n = sockets.length;
    await advance(10);
    fire("online");
    await advance(0);
    assert.strictEqual(sockets.length, n + 1, "no connection when the browser went online");
    assert.strictEqual(last().url, "ws://a/");
    last().welcome("w1");
    fire("online"); // connected: nothing to do
    await advance(1000);
    assert.strictEqual(sockets.length, n + 1);
    p.close();
    assert.strictEqual((listeners.online || []).length, 0, "close() left its online listener");
  },
  async "no URL"() {
    assert.throws(() => new WorkermanPush([]), TypeError);
  },
};

(async () => {
  for (const [name, fn] of Object.entries(tests)) {
    try { await fn(); } catch (err) { console.error("FAIL " + name + ": " + (err && err.stack)); process.exit(1); }
    console.log("ok   " + name);
  }
})();
`
