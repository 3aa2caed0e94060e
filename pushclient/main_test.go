package pushclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/gateway"
	"github.com/workerman-go/workerman/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// server is a push server as the client sees it: a gateway on a
// websocket:// worker on 127.0.0.1 that welcomes every client as
// cmd/workerman-push does, stopped when the test ends.
type server struct {
	*gateway.Gateway
	url       string           // ws://127.0.0.1:port/
	handshake chan http.Header // headers of every handshake, the query as X-Query
	connected chan string      // client IDs, as they connect
	received  chan string      // what clients sent
}

// serverOptions tunes newServer.
type serverOptions struct {
	uid       string // bound to every client before its welcome
	reject    bool   // refuse every handshake with 401
	noWelcome bool   // send no welcome frame
	history   gateway.History
}

func newServer(t *testing.T, name string, o serverOptions) *server {
	t.Helper()
	w := &workerman.Worker{URI: "websocket://127.0.0.1:0"}
	s := &server{handshake: make(chan http.Header, 100), connected: make(chan string, 100), received: make(chan string, 100)}
	w.OnWebSocketConnect = func(_ *workerman.Connection, r *workerman.WebSocketRequest) error {
		h := r.Header().Clone()
		h.Set("X-Query", r.Query().Encode())
		s.handshake <- h
		if o.reject {
			return workerman.RejectWebSocket(http.StatusUnauthorized, "invalid token")
		}
		return nil
	}
	g, err := gateway.New(w, gateway.Options{Node: name, History: o.history})
	if err != nil {
		t.Fatal(err)
	}
	s.Gateway = g
	g.OnConnect = func(id string) {
		if o.uid != "" {
			g.BindUID(context.Background(), id, o.uid)
		}
		s.connected <- id
	}
	g.OnMessage = func(id string, m gateway.Message) { s.received <- string(m.Data) }
	if !o.noWelcome {
		g.Welcome = func(c gateway.ClientInfo) gateway.Message {
			b, _ := json.Marshal(map[string]string{"type": "welcome", "client_id": c.ID, "uid": c.UID})
			return gateway.Message{Data: b}
		}
	}
	t.Cleanup(func() { g.Close() }) // after listen's Shutdown (cleanups run last first)
	listen(t, w)
	s.url = "ws://" + w.Addr().String() + "/"
	return s
}

// refusedURL is a ws:// URL on which nothing listens.
func refusedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "ws://" + addr + "/"
}

// recorder turns a client's callbacks into one channel of events, in the
// order they ran.
type recorder struct {
	events chan any // string (OnOpen's URL), Welcome, Message (Data copied), Resumed, CloseEvent
}

func newRecorder() *recorder { return &recorder{events: make(chan any, 1000)} }

// options returns o with callbacks that record into r.
func (r *recorder) options(o Options) Options {
	o.OnOpen = func(_ *Client, url string) { r.events <- url }
	o.OnWelcome = func(_ *Client, w Welcome) { r.events <- w }
	o.OnMessage = func(_ *Client, m Message) {
		m.Data = append([]byte(nil), m.Data...) // valid only until we return
		r.events <- m
	}
	o.OnResumed = func(_ *Client, x Resumed) { r.events <- x }
	o.OnClose = func(_ *Client, e CloseEvent) { r.events <- e }
	return o
}

// next returns the next event, failing after 10 s.
func (r *recorder) next(t *testing.T) any {
	t.Helper()
	select {
	case e := <-r.events:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a client event")
		panic("unreachable")
	}
}

// nextOf skips to the next event of type T.
func nextOf[T any](t *testing.T, r *recorder) T {
	t.Helper()
	for {
		if e, ok := r.next(t).(T); ok {
			return e
		}
	}
}

// welcome skips to the next welcome and checks where it came from.
func (r *recorder) welcome(t *testing.T, url string) Welcome {
	t.Helper()
	w := nextOf[Welcome](t, r)
	if w.URL != url || w.ClientID == "" {
		t.Fatalf("welcome %+v, want one from %s", w, url)
	}
	return w
}

func (r *recorder) message(t *testing.T, want Message) {
	t.Helper()
	got := nextOf[Message](t, r)
	if string(got.Data) != string(want.Data) || got.Binary != want.Binary {
		t.Fatalf("message %q (binary %v), want %q (binary %v)", got.Data, got.Binary, want.Data, want.Binary)
	}
}

// closeAndWait closes c and waits for Done.
func closeAndWait(t *testing.T, c *Client) {
	t.Helper()
	c.Close()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed 10 s after Close")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func describe(e any) string { return fmt.Sprintf("%T %+v", e, e) }

// listen starts w for the test and stops it gracefully at its end.
func listen(t *testing.T, w *workerman.Worker) {
	t.Helper()
	if err := w.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
}
