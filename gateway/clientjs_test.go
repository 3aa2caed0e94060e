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
// how long, with which token; and against push.md's history wire: the
// envelopes, the positions, resume, and sessionStorage (a fake). (e2e/pushjs_test.go runs it in Chromium
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
// The page's sessionStorage: default on, cleared before every test.
const stored = new Map();
globalThis.sessionStorage = {
  getItem: (k) => (stored.has(k) ? stored.get(k) : null),
  setItem: (k, v) => { stored.set(k, String(v)); },
};
const WorkermanPush = require("./client.js");
const last = () => sockets[sockets.length - 1];

function client(urls, options) {
  const p = new WorkermanPush(urls, Object.assign({ minReconnectDelay: 100, maxReconnectDelay: 1000, connectTimeout: 5000 }, options));
  p.events = [];
  p.onopen = (e) => p.events.push(["open", e.url]);
  p.onwelcome = (w) => p.events.push(["welcome", w.clientId, w.uid, w.url]);
  p.metas = [];
  p.onmessage = (d, m) => { p.events.push(["message", m.binary ? "binary:" + new Uint8Array(d).join(",") : d]); p.metas.push(m); };
  p.onresumed = (r) => p.events.push(["resumed", r.streams, r.lost, r.url]);
  p.onclose = (e) => p.events.push(["close", e.code, e.url, e.reconnect, e.delay, e.clientId]);
  p.onerror = (e) => p.events.push(["error", e.message]);
  return p;
}
const closes = (p) => p.events.filter((e) => e[0] === "close");
const messages = (p) => p.events.filter((e) => e[0] === "message").map((e) => e[1]);
// env is a push as a server with history wraps it.
const env = (stream, offset, epoch, data) => JSON.stringify({ type: "message", stream, offset, epoch, data });
// resumeOf is the resume query parameter of socket s, parsed; undefined when none.
const resumeOf = (s) => { const r = new URL(s.url).searchParams.get("resume"); return r === null ? undefined : JSON.parse(r); };

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
  async "history: envelopes unwrapped, positions tracked, resume on reconnect, replayed duplicates dropped"() {
    const p = client("ws://h/");
    let s = await waitsThen(0, "ws://h/");
    assert.strictEqual(resumeOf(s), undefined, "resume with no positions");
    s.welcome("h.1", "alice");
    s.msg(env("uid:alice", 1, "e1", "one"));
    s.msg(JSON.stringify({ type: "message", stream: "all", offset: 41, epoch: "e9", data_base64: "AQL/" }));
    s.msg(JSON.stringify({ type: "message", data: "direct" })); // sendToClient in history mode
    s.msg(env("uid:alice", 2, "e1", "two"));
    assert.deepStrictEqual(messages(p), ["one", "binary:1,2,255", "direct", "two"]);
    assert.deepStrictEqual(p.metas, [
      { binary: false, stream: "uid:alice", offset: 1, epoch: "e1" },
      { binary: true, stream: "all", offset: 41, epoch: "e9" },
      { binary: false, stream: "", offset: 0, epoch: "" },
      { binary: false, stream: "uid:alice", offset: 2, epoch: "e1" },
    ]);
    const want = { "uid:alice": { epoch: "e1", offset: 2 }, all: { epoch: "e9", offset: 41 } };
    assert.deepStrictEqual(p.positions(), want);
    p.positions()["uid:alice"].offset = 99; // a copy
    s.serverClose(1000);

    s = await waitsThen(50, "ws://h/");
    assert.deepStrictEqual(resumeOf(s), want);
    s.welcome("h.2", "alice");
    s.msg(env("uid:alice", 2, "e1", "two")); // replayed, delivered already
    s.msg(env("uid:alice", 3, "e1", "three"));
    s.msg(JSON.stringify({ type: "resumed", streams: {
      "uid:alice": { recovered: true, epoch: "e1", offset: 3 },
      all: { recovered: false, epoch: "e10", offset: 5 },
    } }));
    s.msg(JSON.stringify({ type: "message", stream: "all", offset: 6, epoch: "e10", data: "six" }));
    s.msg(JSON.stringify({ type: "resumed", streams: {} })); // only once: now a push
    assert.deepStrictEqual(p.events.slice(-5), [
      ["welcome", "h.2", "alice", "ws://h/"],
      ["message", "three"],
      ["resumed", { "uid:alice": { recovered: true, epoch: "e1", offset: 3 }, all: { recovered: false, epoch: "e10", offset: 5 } }, ["all"], "ws://h/"],
      ["message", "six"],
      ["message", '{"type":"resumed","streams":{}}'],
    ]);
    assert.deepStrictEqual(p.positions(), { "uid:alice": { epoch: "e1", offset: 3 }, all: { epoch: "e10", offset: 6 } });
    s.msg(env("group:late", 4, "e7", "g4"));
    s.serverClose(1001);
    s = await waitsThen(0, "ws://h/");
    assert.deepStrictEqual(resumeOf(s), { "uid:alice": { epoch: "e1", offset: 3 }, all: { epoch: "e10", offset: 6 }, "group:late": { epoch: "e7", offset: 4 } });
    // The backend joins the client to group:late after connect: the
    // server answers that stream with a resumed frame of its own, once.
    s.welcome("h.3", "alice");
    s.msg(JSON.stringify({ type: "resumed", streams: { "uid:alice": { recovered: true, epoch: "e1", offset: 3 }, all: { recovered: true, epoch: "e10", offset: 6 } } }));
    s.msg(env("group:late", 5, "e7", "g5"));
    s.msg(JSON.stringify({ type: "resumed", streams: { "group:late": { recovered: true, epoch: "e7", offset: 5 } } }));
    s.msg(JSON.stringify({ type: "resumed", streams: { "group:late": { recovered: true, epoch: "e7", offset: 5 } } })); // answered: a push
    s.msg(JSON.stringify({ type: "resumed", streams: { "uid:alice": { recovered: true, epoch: "e1", offset: 3 } } })); // answered: a push
    assert.deepStrictEqual(p.events.slice(-6), [
      ["welcome", "h.3", "alice", "ws://h/"],
      ["resumed", { "uid:alice": { recovered: true, epoch: "e1", offset: 3 }, all: { recovered: true, epoch: "e10", offset: 6 } }, [], "ws://h/"],
      ["message", "g5"],
      ["resumed", { "group:late": { recovered: true, epoch: "e7", offset: 5 } }, [], "ws://h/"],
      ["message", '{"type":"resumed","streams":{"group:late":{"recovered":true,"epoch":"e7","offset":5}}}'],
      ["message", '{"type":"resumed","streams":{"uid:alice":{"recovered":true,"epoch":"e1","offset":3}}}'],
    ]);
    p.close();
  },
  async "an offset jump (a push this client was left out of) is delivered and becomes the position"() {
    const p = client("ws://g/");
    let s = await waitsThen(0, "ws://g/");
    s.welcome("g.1");
    s.msg(env("group:x", 1, "e1", "one"));
    s.msg(env("group:x", 3, "e1", "three")); // 2 excluded this client
    s.msg(env("group:x", 3, "e1", "three again")); // at the position: dropped
    s.msg(env("group:x", 2, "e1", "two")); // below it: dropped
    s.msg(env("group:x", 4, "e1", "four"));
    assert.deepStrictEqual(messages(p), ["one", "three", "four"]);
    assert.deepStrictEqual(p.metas.map((m) => m.offset), [1, 3, 4]);
    assert.deepStrictEqual(p.positions(), { "group:x": { epoch: "e1", offset: 4 } });
    assert.strictEqual(s.closedWith, undefined, "the client closed the connection");
    assert.strictEqual(p.state, "connected");
    assert.ok(!p.events.some((e) => e[0] === "error" || e[0] === "close"), JSON.stringify(p.events));
    const n = sockets.length;
    await advance(60000);
    assert.strictEqual(sockets.length, n, "reconnected after an offset jump");
    // A new epoch (the history was lost) is taken as it comes, jump or not.
    s.msg(env("group:x", 5, "e2", "new"));
    assert.deepStrictEqual(p.positions(), { "group:x": { epoch: "e2", offset: 5 } });
    s.msg(env("group:x", 7, "e2", "seven"));
    assert.deepStrictEqual(messages(p).slice(-2), ["new", "seven"]);

    // The next reconnect resumes from the position the jump left.
    s.serverClose(1000);
    s = await waitsThen(50, "ws://g/");
    assert.deepStrictEqual(resumeOf(s), { "group:x": { epoch: "e2", offset: 7 } });
    p.close();
  },
  async "1013 (a push the server could not queue): the usual wait, resume from the position, the replay once"() {
    const p = client(["ws://q1/", "ws://q2/"]);
    let s = await waitsThen(0, "ws://q1/");
    s.welcome("q.1");
    s.msg(env("uid:alice", 1, "e1", "one"));
    // 2 excluded this client (its own message); 3 did not fit in its send
    // buffer: the server closes with 1013 before writing anything later.
    s.serverClose(1013);
    assert.deepStrictEqual(closes(p), [["close", 1013, "ws://q1/", true, 50, "q.1"]]);
    assert.ok(!p.events.some((e) => e[0] === "error"), JSON.stringify(p.events));
    assert.strictEqual(p.state, "disconnected");

    s = await waitsThen(50, "ws://q1/"); // the same URL, after the usual wait
    assert.deepStrictEqual(resumeOf(s), { "uid:alice": { epoch: "e1", offset: 1 } });
    s.welcome("q.2");
    // The replay: every push after the position, the one this client was
    // excluded from on its old connection included; it overlaps by one.
    for (let i = 1; i <= 3; i++) s.msg(env("uid:alice", i, "e1", "#" + i));
    s.msg(JSON.stringify({ type: "resumed", streams: { "uid:alice": { recovered: true, epoch: "e1", offset: 3 } } }));
    s.msg(env("uid:alice", 3, "e1", "#3 again")); // a duplicate: dropped
    s.msg(env("uid:alice", 4, "e1", "#4"));
    assert.deepStrictEqual(messages(p), ["one", "#2", "#3", "#4"]);
    assert.deepStrictEqual(p.events.filter((e) => e[0] === "resumed").map((e) => e[2]), [[]]);
    assert.deepStrictEqual(p.positions(), { "uid:alice": { epoch: "e1", offset: 4 } });
    assert.ok(!p.events.some((e) => e[0] === "error"), JSON.stringify(p.events));

    // A second 1013 in a row after a welcome: the back-off started again.
    s.serverClose(1013);
    s = await waitsThen(50, "ws://q1/");
    assert.deepStrictEqual(resumeOf(s), { "uid:alice": { epoch: "e1", offset: 4 } });
    p.close();
  },
  async "positions in sessionStorage: a new client (a page reload) resumes"() {
    const p = client(["ws://r1/", "ws://r2/"]);
    const s = await waitsThen(0, "ws://r1/");
    s.welcome("r.1", "bob");
    s.msg(env("uid:bob", 7, "e1", "seven"));
    p.close();
    assert.deepStrictEqual(JSON.parse(stored.get("workerman-push:ws://r1/ ws://r2/")), { "uid:bob": { epoch: "e1", offset: 7 } });

    const q = client(["ws://r1/", "ws://r2/"]);
    assert.deepStrictEqual(q.positions(), { "uid:bob": { epoch: "e1", offset: 7 } });
    let t = await waitsThen(0, "ws://r1/");
    assert.deepStrictEqual(resumeOf(t), { "uid:bob": { epoch: "e1", offset: 7 } });
    t.welcome("r.2", "bob");
    t.msg(env("uid:bob", 7, "e1", "seven")); // seen before the reload
    t.msg(JSON.stringify({ type: "resumed", streams: { "uid:bob": { recovered: true, epoch: "e1", offset: 7 } } }));
    t.msg(env("uid:bob", 8, "e1", "eight"));
    assert.deepStrictEqual(messages(q), ["eight"]);
    q.close();

    // storage: false keeps nothing and reads nothing; options.resume
    // gives the first positions.
    const r = client(["ws://r1/", "ws://r2/"], { storage: false, resume: { all: { epoch: "", offset: 0 }, bad: { offset: -1 } } });
    t = await waitsThen(0, "ws://r1/");
    assert.deepStrictEqual(resumeOf(t), { all: { epoch: "", offset: 0 } });
    t.welcome("r.3");
    t.msg(JSON.stringify({ type: "message", stream: "all", offset: 12, epoch: "e5", data: "oldest kept" }));
    t.msg(JSON.stringify({ type: "resumed", streams: { all: { recovered: true, epoch: "e5", offset: 12 } } }));
    assert.deepStrictEqual(messages(r), ["oldest kept"]);
    assert.deepStrictEqual(JSON.parse(stored.get("workerman-push:ws://r1/ ws://r2/")), { "uid:bob": { epoch: "e1", offset: 8 } });
    r.close();

    // A storage that throws, or holds garbage, is no storage.
    stored.set("workerman-push:ws://bad/", "{not json");
    const u = client("ws://bad/");
    assert.deepStrictEqual(u.positions(), {});
    u.close();
    const v = client("ws://bad/", { storage: { getItem() { throw new Error("denied"); }, setItem() { throw new Error("full"); } } });
    t = await waitsThen(0, "ws://bad/");
    t.welcome("b.1");
    t.msg(env("all", 1, "e1", "x"));
    assert.deepStrictEqual([messages(v), v.positions()], [["x"], { all: { epoch: "e1", offset: 1 } }]);
    v.close();
  },
  async "a server without history: every frame as it came, no resume, nothing stored"() {
    const p = client("ws://plain/");
    let s = await waitsThen(0, "ws://plain/");
    s.welcome("p.1");
    const frames = [
      "text",
      '{"type":"message","data":"an app\'s own JSON"}',
      '{"type":"resumed","streams":{}}',
      '{"type":"message","stream":"","offset":1,"epoch":"e","data":"x"}',
      '{"type":"message","stream":"s","offset":1.5,"epoch":"e","data":"x"}',
      "[1,2]",
    ];
    for (const f of frames) s.msg(f);
    s.msg(new Uint8Array([9]).buffer);
    assert.deepStrictEqual(messages(p), frames.concat(["binary:9"]));
    assert.ok(p.metas.every((m) => m.stream === "" && m.offset === 0 && m.epoch === ""));
    assert.deepStrictEqual(p.positions(), {});
    s.serverClose(1000);
    s = await waitsThen(50, "ws://plain/");
    assert.strictEqual(s.url, "ws://plain/");
    assert.ok(!stored.has("workerman-push:ws://plain/"));
    p.close();
  },
  async "no URL"() {
    assert.throws(() => new WorkermanPush([]), TypeError);
  },
};

(async () => {
  for (const [name, fn] of Object.entries(tests)) {
    stored.clear();
    try { await fn(); } catch (err) { console.error("FAIL " + name + ": " + (err && err.stack)); process.exit(1); }
    console.log("ok   " + name);
  }
})();
`
