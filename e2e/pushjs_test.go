package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/gateway"
)

// The back-off of the page's clients: a reconnect that waits waits at
// least half the base, one that does not comes far sooner.
const (
	pushBase = 2000 // ms, minReconnectDelay
	pushMax  = 3000 // ms, maxReconnectDelay
)

// pushPage loads workerman-push.js from its server and keeps, for each
// client it starts, a log of the client's events with their times.
const pushPage = `<!doctype html>
<meta charset="utf-8">
<title>workerman-push.js</title>
<script src="/workerman-push.js"></script>
<script>
window.clients = {};
window.start = function (name, urls) {
  var n = 0, log = [];
  var p = new WorkermanPush(urls, {
    token: function () { return name + "-" + (++n); },
    minReconnectDelay: ` + "%d" + `,
    maxReconnectDelay: ` + "%d" + `
  });
  function add(ev, o) { o = Object.assign({ev: ev, t: performance.now()}, o); log.push(o); }
  p.onopen = function (e) { add("open", {url: e.url}); };
  p.onwelcome = function (w) { add("welcome", {clientId: w.clientId, uid: w.uid, url: w.url}); };
  p.onmessage = function (data, meta) {
    add("message", {
      binary: meta.binary,
      kind: Object.prototype.toString.call(data),
      text: meta.binary ? "" : data,
      bytes: meta.binary ? Array.from(new Uint8Array(data)) : []
    });
  };
  p.onclose = function (e) { add("close", e); };
  p.onerror = function (err) { add("error", {message: String(err && err.message)}); };
  p.log = log;
  clients[name] = p;
};
</script>
`

// pushEvent is one entry of a page client's log.
type pushEvent struct {
	Ev        string  `json:"ev"`
	T         float64 `json:"t"` // performance.now(), ms
	URL       string  `json:"url"`
	ClientID  string  `json:"clientId"`
	Binary    bool    `json:"binary"`
	Kind      string  `json:"kind"`
	Text      string  `json:"text"`
	Bytes     []byte  `json:"-"`
	RawBytes  []int   `json:"bytes"`
	Code      int     `json:"code"`
	Reason    string  `json:"reason"`
	Reconnect bool    `json:"reconnect"`
	Delay     float64 `json:"delay"`
	Message   string  `json:"message"`
}

// pushNode is a gateway on an http:// worker that serves the test page and
// workerman-push.js, and upgrades /ws.
type pushNode struct {
	g       *gateway.Gateway
	w       *workerman.Worker
	ws      string         // ws://host:port/ws
	page    string         // http://host:port/
	connect chan [2]string // client ID, token
	message chan gateway.Message
	closed  chan string
}

func startPushNode(t *testing.T, name string) *pushNode {
	t.Helper()
	w := workerman.NewWorker("http://127.0.0.1:0")
	w.WebSocket.Path = "/ws"
	var tokens sync.Map // *workerman.Connection → its token
	w.OnWebSocketConnected = func(c *workerman.Connection, r *workerman.WebSocketRequest) {
		tokens.Store(c, r.Query().Get("token"))
	}
	js := gateway.ClientJSHandler()
	page := fmt.Sprintf(pushPage, pushBase, pushMax)
	w.OnRequest = func(c *workerman.Connection, r *workerman.Request) {
		switch r.Path() {
		case "/":
			c.SendResponse(workerman.NewResponse(200, []byte(page)).
				WithHeader("Content-Type", "text/html; charset=utf-8").
				WithHeader("Cache-Control", "no-store"))
		case "/workerman-push.js":
			rec := httptest.NewRecorder()
			js.ServeHTTP(rec, r.Request)
			resp := workerman.NewResponse(rec.Code, rec.Body.Bytes())
			resp.Header = rec.Header()
			c.SendResponse(resp)
		default:
			c.SendResponse(workerman.NewResponse(404, []byte("not found")))
		}
	}
	g, err := gateway.New(w, gateway.Options{Node: name})
	if err != nil {
		t.Fatal(err)
	}
	n := &pushNode{
		g:       g,
		w:       w,
		connect: make(chan [2]string, 100),
		message: make(chan gateway.Message, 100),
		closed:  make(chan string, 100),
	}
	g.Welcome = func(c gateway.ClientInfo) gateway.Message {
		b, _ := json.Marshal(map[string]string{"type": "welcome", "client_id": c.ID, "uid": c.UID})
		return gateway.Text(string(b))
	}
	g.OnConnect = func(id string) {
		tok, _ := tokens.Load(g.Connection(id))
		s, _ := tok.(string)
		n.connect <- [2]string{id, s}
	}
	g.OnMessage = func(id string, m gateway.Message) {
		n.message <- gateway.Message{Data: append([]byte(id+" "), m.Data...), Binary: m.Binary}
	}
	g.OnClose = func(id string, _ gateway.ClientInfo) { n.closed <- id }
	if err := w.Listen(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { stop(w); g.Close() })
	n.ws = "ws://" + w.Addr().String() + "/ws"
	n.page = "http://" + w.Addr().String() + "/"
	return n
}

// expectConnect waits for the node's next client and checks its token.
func (n *pushNode) expectConnect(t *testing.T, token string) string {
	t.Helper()
	c := within(t, n.connect, n.g.Node()+": a client connecting with token "+token)
	if c[1] != token {
		t.Fatalf("%s: client %s connected with token %q, want %q", n.g.Node(), c[0], c[1], token)
	}
	return c[0]
}

func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("waited 30 s for %s", what)
		panic("unreachable")
	}
}

func pushCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// events returns the log of the page's client name.
func (u *user) events(name string) []pushEvent {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 10*time.Second)
	defer cancel()
	evs, err := chromedp.Run(ctx, chromedp.Evaluate[[]pushEvent](fmt.Sprintf(`clients[%q].log`, name)))
	if err != nil {
		u.t.Fatalf("%s: reading the log of %s: %v", u.name, name, err)
	}
	for i := range evs {
		for _, b := range evs[i].RawBytes {
			evs[i].Bytes = append(evs[i].Bytes, byte(b))
		}
	}
	return evs
}

// last returns the last event of kind ev in evs, and its index.
func last(evs []pushEvent, ev string) (pushEvent, int) {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Ev == ev {
			return evs[i], i
		}
	}
	return pushEvent{}, -1
}

// welcomes counts the welcomes of the page's client name.
func welcomes(name string) string {
	return fmt.Sprintf(`clients[%q].log.filter(e => e.ev === "welcome").length`, name)
}

// reconnected checks the reconnect that ended evs: the last close, then a
// welcome from want with clientID, and returns the time between the two.
func reconnected(t *testing.T, evs []pushEvent, code int, want *pushNode, clientID string) (close pushEvent, took float64) {
	t.Helper()
	cl, ci := last(evs, "close")
	w, wi := last(evs, "welcome")
	if ci < 0 || wi < ci {
		t.Fatalf("no close followed by a welcome in %+v", evs)
	}
	if cl.Code != code || !cl.Reconnect {
		t.Fatalf("close %+v: want code %d and a reconnect", cl, code)
	}
	if w.URL != want.ws || w.ClientID != clientID {
		t.Fatalf("welcome %+v: want %s from %s", w, clientID, want.ws)
	}
	return cl, w.T - cl.T
}

// The JS client in Chromium: it connects through a URL relative to the
// page, exposes its client ID, gets text and binary pushes with their
// types, sends to the server, reconnects after a server's close with
// back-off, moves on to the next URL at once after a 1001 (a close, or a
// worker that stops), skips a URL that refuses, and stops for good on
// close(), connected or waiting.
func TestPushJSInChromium(t *testing.T) {
	a := startPushNode(t, "a")
	b := startPushNode(t, "b")
	ctx := pushCtx(t)
	u := newUser(t, browser(t), "page")
	u.do("open the page", chromedp.Navigate(a.page))
	u.until("load workerman-push.js", `typeof WorkermanPush === "function"`)
	u.act("start", fmt.Sprintf(`start("p", ["/ws", %q])`, b.ws))

	// Connect to the first URL, the page's own server.
	id := a.expectConnect(t, "p-1")
	u.until("be welcomed", welcomes("p")+` === 1 && clients.p.state === "connected"`)
	if got := u.evalString(`clients.p.clientId`); got != id {
		t.Fatalf("the page has client ID %q, the gateway %q", got, id)
	}
	if got := u.evalString(`clients.p.url`); got != a.ws {
		t.Fatalf("the relative URL became %q, want %q", got, a.ws)
	}
	if on, err := a.g.IsOnline(ctx, id); err != nil || !on {
		t.Fatalf("IsOnline(%s) = %v, %v", id, on, err)
	}
	if n, err := a.g.ClientCount(ctx); err != nil || n != 1 {
		t.Fatalf("ClientCount = %d, %v; want 1", n, err)
	}

	// Pushes: text as a string (to the page's uid, as a backend's
	// sendToUid), binary as an ArrayBuffer, in order.
	bin := []byte{0, 1, 0x80, 0xff}
	if err := a.g.BindUID(ctx, id, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := a.g.SendToUID(ctx, "alice", gateway.Text("hello, wörld")); err != nil {
		t.Fatal(err)
	}
	if err := a.g.SendToClient(ctx, id, gateway.Binary(bin)); err != nil {
		t.Fatal(err)
	}
	u.until("get two pushes", `clients.p.log.filter(e => e.ev === "message").length === 2`)
	var msgs []pushEvent
	for _, e := range u.events("p") {
		if e.Ev == "message" {
			msgs = append(msgs, e)
		}
	}
	if m := msgs[0]; m.Binary || m.Kind != "[object String]" || m.Text != "hello, wörld" {
		t.Fatalf("text push arrived as %+v", m)
	}
	if m := msgs[1]; !m.Binary || m.Kind != "[object ArrayBuffer]" || !slices.Equal(m.Bytes, bin) {
		t.Fatalf("binary push arrived as %+v", m)
	}

	// The page sends, text and binary.
	if !u.eval(`clients.p.send("from the page") && clients.p.send(new Uint8Array([7, 8, 9]))`) {
		t.Fatal("send returned false while connected")
	}
	for _, want := range []gateway.Message{
		{Data: []byte(id + " from the page")},
		{Data: []byte(id + " \x07\x08\x09"), Binary: true},
	} {
		got := within(t, a.message, "the page's message")
		if string(got.Data) != string(want.Data) || got.Binary != want.Binary {
			t.Fatalf("OnMessage got %q (binary %v), want %q (binary %v)", got.Data, got.Binary, want.Data, want.Binary)
		}
	}

	// A normal close: back to the same URL after the back-off, with the
	// token read again.
	if err := a.g.CloseClient(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := within(t, a.closed, "OnClose"); got != id {
		t.Fatalf("OnClose for %s, want %s", got, id)
	}
	id = a.expectConnect(t, "p-2")
	u.until("be welcomed again", welcomes("p")+` === 2`)
	if !u.eval(`clients.p.send("again")`) {
		t.Fatal("send returned false after the reconnect")
	}
	if got := within(t, a.message, "the page's message after the reconnect"); string(got.Data) != id+" again" {
		t.Fatalf("OnMessage got %q after the reconnect", got.Data)
	}
	cl, took := reconnected(t, u.events("p"), 1000, a, id)
	if cl.Delay < pushBase/2 || cl.Delay > pushBase || took < cl.Delay-1 {
		t.Fatalf("after a normal close the page waited %.0f ms (announced %.0f ms), want the back-off: %d to %d ms", took, cl.Delay, pushBase/2, pushBase)
	}
	t.Logf("after a normal close the page reconnected in %.0f ms", took)

	// 1001 from the server: on to the next URL at once.
	if err := a.g.Connection(id).CloseWebSocket(1001, "going away"); err != nil {
		t.Fatal(err)
	}
	if got := within(t, a.closed, "OnClose"); got != id {
		t.Fatalf("OnClose for %s, want %s", got, id)
	}
	idB := b.expectConnect(t, "p-3")
	u.until("be welcomed by b", welcomes("p")+` === 3`)
	cl, took = reconnected(t, u.events("p"), 1001, b, idB)
	if cl.Delay != 0 || took >= pushBase/2 {
		t.Fatalf("after a 1001 the page waited %.0f ms (announced %.0f ms), want no wait", took, cl.Delay)
	}
	t.Logf("after a 1001 the page was on the next URL in %.0f ms", took)
	if gateway.NodeOf(idB) != "b" {
		t.Fatalf("client ID %s is not b's", idB)
	}
	if on, err := b.g.IsOnline(ctx, idB); err != nil || !on {
		t.Fatalf("b: IsOnline(%s) = %v, %v", idB, on, err)
	}
	if n, err := a.g.ClientCount(ctx); err != nil || n != 0 {
		t.Fatalf("a: ClientCount = %d, %v; want 0", n, err)
	}

	// b stops (its clients get 1001): back to a at once, the list wrapping.
	stop(b.w)
	id = a.expectConnect(t, "p-4")
	u.until("be welcomed by a again", welcomes("p")+` === 4`)
	cl, took = reconnected(t, u.events("p"), 1001, a, id)
	if cl.Delay != 0 || took >= pushBase/2 {
		t.Fatalf("after b stopped the page waited %.0f ms (announced %.0f ms), want no wait", took, cl.Delay)
	}

	// A URL that refuses (b, stopped) is skipped after a back-off.
	u.act("start q", fmt.Sprintf(`start("q", [%q, "/ws"])`, b.ws))
	idQ := a.expectConnect(t, "q-2")
	u.until("q welcomed by a", welcomes("q")+` === 1`)
	evs := u.events("q")
	if cl, _ := last(evs, "close"); cl.URL != b.ws || !cl.Reconnect || cl.Delay < pushBase/2 {
		t.Fatalf("q: the failed attempt on b ended with %+v", cl)
	}
	if w, _ := last(evs, "welcome"); w.ClientID != idQ || w.URL != a.ws {
		t.Fatalf("q: welcome %+v, want %s from %s", w, idQ, a.ws)
	}

	// close() stops for good: p while connected, q while it waits to
	// reconnect after a normal close.
	if err := a.g.CloseClient(ctx, idQ); err != nil {
		t.Fatal(err)
	}
	u.until("q wait to reconnect", `clients.q.state === "disconnected"`)
	u.act("close both", `clients.p.close(); clients.q.close()`)
	closedIDs := []string{within(t, a.closed, "OnClose"), within(t, a.closed, "OnClose")}
	want := []string{id, idQ}
	slices.Sort(closedIDs)
	slices.Sort(want)
	if !slices.Equal(closedIDs, want) {
		t.Fatalf("OnClose for %v, want %v", closedIDs, want)
	}
	for _, name := range []string{"p", "q"} {
		evs := u.events(name)
		if cl, i := last(evs, "close"); i != len(evs)-1 || cl.Reconnect {
			t.Fatalf("%s: close() ended with %+v, then %+v", name, cl, evs[i+1:])
		}
		if !u.eval(fmt.Sprintf(`clients[%q].state === "closed" && clients[%q].clientId === "" && !clients[%q].send("late")`, name, name, name)) {
			t.Fatalf("%s: not closed after close()", name)
		}
	}
	// Nothing comes back within the longest wait there is.
	select {
	case c := <-a.connect:
		t.Fatalf("a client (%v) connected after close()", c)
	case <-time.After(pushMax*time.Millisecond + time.Second):
	}
	if n, err := a.g.ClientCount(ctx); err != nil || n != 0 {
		t.Fatalf("ClientCount after close() = %d, %v; want 0", n, err)
	}
}
