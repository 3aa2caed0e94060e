package pushclient

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/gateway"
	"github.com/workerman-go/workerman/internal/leakcheck"
)

// fast reconnects at once, so that tests do not wait for the back-off.
var fast = Options{MinReconnectDelay: time.Millisecond, MaxReconnectDelay: 5 * time.Millisecond}

// The welcome names the client and its uid; pushes arrive in order, text
// as text and binary as binary; what the client sends reaches the server.
func TestWelcomeAndMessages(t *testing.T) {
	s := newServer(t, "n1", serverOptions{uid: "alice"})
	r := newRecorder()
	c, err := Dial(ctx(t), []string{s.url}, r.options(fast))
	must(t, err)
	defer closeAndWait(t, c)

	if got := r.next(t); got != s.url {
		t.Fatalf("first event %s, want OnOpen with %s", describe(got), s.url)
	}
	w := r.welcome(t, s.url)
	if w.UID != "alice" || c.ClientID() != w.ClientID || c.UID() != "alice" || !c.Connected() || c.URL() != s.url {
		t.Fatalf("welcome %+v; ClientID %q UID %q Connected %v URL %q", w, c.ClientID(), c.UID(), c.Connected(), c.URL())
	}
	if online, err := s.IsOnline(ctx(t), w.ClientID); err != nil || !online {
		t.Fatalf("IsOnline(%s) = %v, %v", w.ClientID, online, err)
	}
	must(t, s.SendToUID(ctx(t), "alice", gateway.Text(`{"n":1}`)))
	must(t, s.SendToClient(ctx(t), w.ClientID, gateway.Binary([]byte{0, 1, 2, 255})))
	must(t, s.SendToAll(ctx(t), gateway.Text("héllo")))
	r.message(t, Message{Data: []byte(`{"n":1}`)})
	r.message(t, Message{Data: []byte{0, 1, 2, 255}, Binary: true})
	r.message(t, Message{Data: []byte("héllo")})

	must(t, c.SendText("up"))
	must(t, c.SendBinary([]byte("bin")))
	for _, want := range []string{"up", "bin"} {
		select {
		case got := <-s.received:
			if got != want {
				t.Fatalf("server got %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("server never got %q", want)
		}
	}
}

// A connection the server closes is replaced by a new one on the same URL,
// with a new client ID, after the back-off.
func TestReconnectAfterServerClose(t *testing.T) {
	s := newServer(t, "n1", serverOptions{})
	other := newServer(t, "n2", serverOptions{})
	r := newRecorder()
	// The second URL must not be used: a welcomed connection comes back to
	// its own.
	c, err := Dial(ctx(t), []string{s.url, other.url}, r.options(fast))
	must(t, err)
	defer closeAndWait(t, c)
	first := r.welcome(t, s.url)

	must(t, s.CloseClient(ctx(t), first.ClientID))
	e := nextOf[CloseEvent](t, r)
	if e.ClientID != first.ClientID || e.URL != s.url || e.Code != 1000 || e.Err != nil || !e.Reconnect {
		t.Fatalf("close event %+v", e)
	}
	if e.Delay > fast.MinReconnectDelay {
		t.Fatalf("first reconnect after %v, want at most %v", e.Delay, fast.MinReconnectDelay)
	}
	second := r.welcome(t, s.url)
	if second.ClientID == first.ClientID {
		t.Fatalf("the new connection has the old client ID %s", first.ClientID)
	}
	must(t, s.SendToClient(ctx(t), second.ClientID, gateway.Text("again")))
	r.message(t, Message{Data: []byte("again")})
}

// A refused address moves on to the next URL; the failure is reported.
func TestNextURLOnRefused(t *testing.T) {
	s := newServer(t, "n1", serverOptions{})
	dead := refusedURL(t)
	r := newRecorder()
	c, err := Dial(ctx(t), []string{dead, s.url}, r.options(fast))
	must(t, err)
	defer closeAndWait(t, c)
	e := nextOf[CloseEvent](t, r)
	if e.URL != dead || !errors.Is(e.Err, workerman.ErrConnectFailed) || e.ClientID != "" || !e.Reconnect {
		t.Fatalf("close event %+v, want a failed connect to %s", e, dead)
	}
	r.welcome(t, s.url)
}

// A close with 1001 (going away) moves to the next URL at once: with a
// back-off of a minute, the test would time out waiting otherwise. Any
// other close waits.
func TestGoingAwayMovesAtOnce(t *testing.T) {
	a := newServer(t, "a", serverOptions{})
	b := newServer(t, "b", serverOptions{})
	r := newRecorder()
	c, err := Dial(ctx(t), []string{a.url, b.url}, r.options(Options{MinReconnectDelay: time.Minute, MaxReconnectDelay: time.Minute}))
	must(t, err)
	defer closeAndWait(t, c)
	onA := r.welcome(t, a.url)

	must(t, a.Connection(onA.ClientID).CloseWebSocket(1001, "draining"))
	e := nextOf[CloseEvent](t, r)
	if e.Code != 1001 || e.Reason != "draining" || e.Delay != 0 || !e.Reconnect {
		t.Fatalf("close event %+v, want 1001 with no delay", e)
	}
	onB := r.welcome(t, b.url)

	// b goes away too: every URL went away in a row, but a's connection
	// was one hop: a is next, at once.
	must(t, b.Connection(onB.ClientID).CloseWebSocket(1001, ""))
	if e := nextOf[CloseEvent](t, r); e.Delay != 0 {
		t.Fatalf("close event %+v, want no delay for the second hop", e)
	}
	onA = r.welcome(t, a.url)

	// The third hop in a row, on a list of two, waits.
	must(t, a.Connection(onA.ClientID).CloseWebSocket(1001, ""))
	if e := nextOf[CloseEvent](t, r); e.Delay < 30*time.Second {
		t.Fatalf("close event %+v, want the back-off after the whole list went away", e)
	}
}

// The token is the token query parameter, added to the URL's own query;
// TokenFunc is asked before every attempt; Header goes with the handshake.
func TestTokenAndHeader(t *testing.T) {
	s := newServer(t, "n1", serverOptions{})
	r := newRecorder()
	tokens := make(chan string, 2)
	tokens <- "first token"
	tokens <- "second+token/é"
	o := fast
	o.TokenFunc = func(ctx context.Context) (string, error) {
		select {
		case tok := <-tokens:
			return tok, nil
		default:
			return "", errors.New("no more tokens")
		}
	}
	o.Header = map[string][]string{"X-App": {"test"}}
	c, err := Dial(ctx(t), []string{s.url + "?room=1"}, r.options(o))
	must(t, err)
	defer closeAndWait(t, c)
	first := r.welcome(t, s.url+"?room=1")

	h := <-s.handshake
	q, _ := url.ParseQuery(h.Get("X-Query"))
	if q.Get("token") != "first token" || q.Get("room") != "1" || h.Get("X-App") != "test" {
		t.Fatalf("handshake query %v, X-App %q", q, h.Get("X-App"))
	}
	must(t, s.CloseClient(ctx(t), first.ClientID))
	r.welcome(t, s.url+"?room=1")
	h = <-s.handshake
	if q, _ := url.ParseQuery(h.Get("X-Query")); q.Get("token") != "second+token/é" {
		t.Fatalf("second handshake's token %q", q.Get("token"))
	}

	// A TokenFunc that fails fails the attempt, and the next one follows.
	must(t, s.CloseClient(ctx(t), c.ClientID()))
	nextOf[CloseEvent](t, r)
	e := nextOf[CloseEvent](t, r)
	if e.Err == nil || !strings.Contains(e.Err.Error(), "no more tokens") || e.Code != 0 || !e.Reconnect {
		t.Fatalf("close event %+v, want the token's error", e)
	}
}

// A server that sends no welcome is served: its first frame is a push, and
// the client ID is empty.
func TestNoWelcome(t *testing.T) {
	s := newServer(t, "n1", serverOptions{noWelcome: true})
	r := newRecorder()
	c, err := New([]string{s.url}, r.options(fast))
	must(t, err)
	defer closeAndWait(t, c)
	var id string
	select {
	case id = <-s.connected:
	case <-time.After(10 * time.Second):
		t.Fatal("the client never connected")
	}
	must(t, s.SendToClient(ctx(t), id, gateway.Text("first")))
	must(t, s.SendToClient(ctx(t), id, gateway.Text("second")))
	r.message(t, Message{Data: []byte("first")})
	r.message(t, Message{Data: []byte("second")})
	if !c.Connected() || c.ClientID() != "" {
		t.Fatalf("Connected %v, ClientID %q", c.Connected(), c.ClientID())
	}
}

// A refused handshake (401: a bad token) reports the status.
func TestHandshakeRejected(t *testing.T) {
	s := newServer(t, "n1", serverOptions{reject: true})
	r := newRecorder()
	c, err := New([]string{s.url}, r.options(fast))
	must(t, err)
	defer closeAndWait(t, c)
	e := nextOf[CloseEvent](t, r)
	var he *workerman.HandshakeError
	if !errors.As(e.Err, &he) || he.Status != 401 || !e.Reconnect {
		t.Fatalf("close event %+v, want a 401", e)
	}
}

// Dial gives up when its context ends, with why the attempts failed.
func TestDialTimeout(t *testing.T) {
	dctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	c, err := Dial(dctx, []string{refusedURL(t)}, fast)
	if c != nil || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, workerman.ErrConnectFailed) {
		t.Fatalf("Dial = %v, %v; want nil and a deadline with the connect error", c, err)
	}
}

// A server that accepts but never welcomes is given up after
// ConnectTimeout, and the next URL is tried.
func TestConnectTimeout(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer silent.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			conn, err := silent.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- conn // held open, never answered
		}
	}()
	t.Cleanup(func() {
		silent.Close()
		for conn := range accepted {
			conn.Close()
		}
	})
	s := newServer(t, "n1", serverOptions{})
	r := newRecorder()
	o := fast
	o.ConnectTimeout = 200 * time.Millisecond
	c, err := New([]string{"ws://" + silent.Addr().String() + "/", s.url}, r.options(o))
	must(t, err)
	defer closeAndWait(t, c)
	e := nextOf[CloseEvent](t, r)
	if !errors.Is(e.Err, ErrConnectTimeout) {
		t.Fatalf("close event %+v, want ErrConnectTimeout", e)
	}
	r.welcome(t, s.url)
}

// Close ends the connection and every goroutine of the client, whatever it
// was doing; after it, Send fails and nothing but the last OnClose runs.
func TestClose(t *testing.T) {
	t.Run("connected", func(t *testing.T) {
		leakcheck.Check(t)
		s := newServer(t, "n1", serverOptions{})
		r := newRecorder()
		c, err := Dial(ctx(t), []string{s.url}, r.options(fast))
		must(t, err)
		w := r.welcome(t, s.url)
		closeAndWait(t, c)
		e := nextOf[CloseEvent](t, r)
		if e.Reconnect || e.ClientID != w.ClientID {
			t.Fatalf("last close event %+v", e)
		}
		select {
		case extra := <-r.events:
			t.Fatalf("event after the last OnClose: %s", describe(extra))
		default:
		}
		if err := c.SendText("x"); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("SendText after Close: %v", err)
		}
		must(t, c.Close()) // again: nothing
		if c.Connected() || c.ClientID() != "" {
			t.Fatal("still connected after Close")
		}
	})
	t.Run("waiting to reconnect", func(t *testing.T) {
		leakcheck.Check(t)
		r := newRecorder()
		c, err := New([]string{refusedURL(t)}, r.options(Options{MinReconnectDelay: time.Hour}))
		must(t, err)
		if e := nextOf[CloseEvent](t, r); e.Delay < 30*time.Minute {
			t.Fatalf("close event %+v", e)
		}
		closeAndWait(t, c)
	})
	t.Run("in TokenFunc", func(t *testing.T) {
		leakcheck.Check(t)
		asked := make(chan struct{})
		c, err := New([]string{refusedURL(t)}, Options{TokenFunc: func(ctx context.Context) (string, error) {
			close(asked)
			<-ctx.Done() // Close cancels it
			return "", ctx.Err()
		}})
		must(t, err)
		<-asked
		closeAndWait(t, c)
	})
	t.Run("from a callback", func(t *testing.T) {
		leakcheck.Check(t)
		s := newServer(t, "n1", serverOptions{})
		r := newRecorder()
		o := r.options(fast)
		o.OnWelcome = func(c *Client, w Welcome) { c.Close() }
		c, err := New([]string{s.url}, o)
		must(t, err)
		if e := nextOf[CloseEvent](t, r); e.Reconnect {
			t.Fatalf("close event %+v", e)
		}
		closeAndWait(t, c)
	})
}

// Send while no connection is open fails at once: nothing is queued.
func TestSendNotConnected(t *testing.T) {
	c, err := New([]string{refusedURL(t)}, Options{MinReconnectDelay: time.Hour})
	must(t, err)
	defer closeAndWait(t, c)
	if err := c.SendText("x"); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("SendText while not connected: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	lo, hi := 100*time.Millisecond, time.Second
	for _, tc := range []struct {
		n    int
		want time.Duration // before the jitter
	}{{1, lo}, {2, 2 * lo}, {4, 8 * lo}, {5, hi}, {1000, hi}} {
		for range 100 {
			if d := backoff(lo, hi, tc.n); d < tc.want/2 || d > tc.want {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tc.n, d, tc.want/2, tc.want)
			}
		}
	}
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		urls []string
	}{
		{"none", nil},
		{"not WebSocket", []string{"tcp://127.0.0.1:1"}},
		{"no host", []string{"ws:///path"}},
		{"not a URL", []string{"ws://[::1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := New(tc.urls, Options{}); err == nil {
				c.Close()
				t.Fatalf("New(%q) did not fail", tc.urls)
			}
		})
	}
	// http(s) URLs are taken as ws(s).
	c, err := New([]string{"http://127.0.0.1:1/x", "https://example.com/"}, Options{MinReconnectDelay: time.Hour})
	must(t, err)
	defer closeAndWait(t, c)
	if got := strings.Join(c.urls, " "); got != "ws://127.0.0.1:1/x wss://example.com/" {
		t.Fatalf("urls %s", got)
	}
}
