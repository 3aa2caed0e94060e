package workerman

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/leakcheck"
)

// udpExchange sends each datagram and returns the datagrams received back,
// one per datagram sent unless want says otherwise.
func udpExchange(t *testing.T, c net.Conn, want int, dgrams ...string) []string {
	t.Helper()
	for _, d := range dgrams {
		if _, err := c.Write([]byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	buf := make([]byte, 64<<10)
	for len(got) < want {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, string(buf[:n]))
	}
	return got
}

func TestUDPWorker(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := &Worker{URI: "udp://127.0.0.1:0", Count: 2, goroutines: goroutines}
		var connects, closes atomic.Int32
		w.OnConnect = func(*Connection) { connects.Add(1) }
		w.OnClose = func(*Connection) { closes.Add(1) }
		from := make(chan string, 16)
		w.OnMessage = func(c *Connection, data []byte) {
			from <- c.Transport() + " " + c.RemoteAddress()
			if err := c.Send(append([]byte("echo "), data...)); err != nil {
				t.Errorf("Send: %v", err)
			}
		}
		addr := serve(t, w)
		if got := w.listenURI(); got != "udp://"+addr {
			t.Fatalf("listening on %s", got)
		}
		c, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		got := udpExchange(t, c, 3, "one", "two\nlines", "three")
		want := map[string]bool{"echo one": true, "echo two\nlines": true, "echo three": true}
		for _, g := range got {
			if !want[g] {
				t.Fatalf("answers %q", got)
			}
			delete(want, g)
		}
		if who := wait(t, from, "OnMessage"); who != "udp "+c.LocalAddr().String() {
			t.Fatalf("OnMessage saw %q, the client is %s", who, c.LocalAddr())
		}
		if connects.Load() != 0 || closes.Load() != 0 {
			t.Fatalf("OnConnect ran %d and OnClose %d times for datagrams", connects.Load(), closes.Load())
		}
	})
}

func TestUDPWorkerWithCodec(t *testing.T) {
	leakcheck.Check(t)
	w := &Worker{URI: "text://127.0.0.1:0", Transport: "udp"}
	w.OnMessage = func(c *Connection, data []byte) { c.Send(data) } // one datagram each
	addr := serve(t, w)
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Two packets and the start of a third, which the datagram cuts short.
	got := udpExchange(t, c, 2, "a\nb\r\nc")
	if len(got) != 2 || got[0] != "a\n" || got[1] != "b\n" {
		t.Fatalf("answers %q", got)
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(make([]byte, 16)); err == nil {
		t.Fatalf("an answer to the cut packet: %d bytes", n)
	}
}

func TestUDPRefusesStreamProtocols(t *testing.T) {
	leakcheck.Check(t)
	for _, w := range []*Worker{
		{URI: "websocket://127.0.0.1:0", Transport: "udp"},
		{URI: "http://127.0.0.1:0", Transport: "udp"},
	} {
		if err := w.Listen(); err == nil {
			w.Close()
			t.Fatalf("%s over udp listened", w.URI)
		}
	}
	if err := NewAsyncUDPConnection("ws://127.0.0.1:1").Connect(); !errors.Is(err, ErrUnsupportedOverUDP) {
		t.Fatalf("ws:// over udp: %v", err)
	}
}

func TestAsyncUDPConnection(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		for _, scheme := range []string{"udp", "text"} {
			t.Run(scheme, func(t *testing.T) {
				w := &Worker{URI: scheme + "://127.0.0.1:0", Transport: "udp", goroutines: goroutines}
				w.OnMessage = func(c *Connection, data []byte) { c.Send(append([]byte("re: "), data...)) }
				addr := serve(t, w)

				a := NewAsyncUDPConnection(scheme + "://" + addr)
				connected := make(chan struct{})
				got := make(chan string, 4)
				closed := make(chan struct{}, 2)
				a.OnConnect = func(*AsyncUDPConnection) { close(connected) }
				a.OnMessage = func(_ *AsyncUDPConnection, data []byte) { got <- string(data) }
				a.OnClose = func(*AsyncUDPConnection) { closed <- struct{}{} }
				// The first Send connects, as in Workerman.
				if err := a.SendString("hello"); err != nil {
					t.Fatal(err)
				}
				wait(t, connected, "OnConnect")
				if m := wait(t, got, "an answer"); m != "re: hello" {
					t.Fatalf("got %q", m)
				}
				if err := a.Connect(); !errors.Is(err, ErrAlreadyConnected) {
					t.Fatalf("Connect when connected: %v", err)
				}
				a.SendString("again")
				if m := wait(t, got, "a second answer"); m != "re: again" {
					t.Fatalf("got %q", m)
				}
				a.Close()
				a.Close()
				wait(t, closed, "OnClose")
				never(t, closed, 50*time.Millisecond, "a second OnClose")
				if err := a.SendString("late"); !errors.Is(err, ErrClosed) {
					t.Fatalf("Send after Close: %v", err)
				}
			})
		}
	})
}

func TestStopAllClosesAsyncUDPConnections(t *testing.T) {
	leakcheck.Check(t)
	w := &Worker{URI: "udp://127.0.0.1:0"}
	addr := serve(t, w)
	a := NewAsyncUDPConnection("udp://" + addr)
	closed := make(chan struct{})
	a.OnClose = func(*AsyncUDPConnection) { close(closed) }
	if err := a.Connect(); err != nil {
		t.Fatal(err)
	}
	closeAsyncs() // what StopAll does first
	wait(t, closed, "OnClose after StopAll")
}

func TestUDPPauseAccept(t *testing.T) {
	leakcheck.Check(t)
	w := &Worker{URI: "udp://127.0.0.1:0", Count: 2}
	got := make(chan string, 4)
	w.OnMessage = func(c *Connection, data []byte) { got <- string(data) }
	addr := serve(t, w)
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A first datagram, so that the readers are waiting in the socket
	// (not at the pause gate) when the pause begins.
	c.Write([]byte("first"))
	wait(t, got, "the first datagram")
	w.PauseAccept()
	c.Write([]byte("while paused"))
	never(t, got, 200*time.Millisecond, "a datagram handled while paused")
	w.ResumeAccept()
	if m := wait(t, got, "the datagram after ResumeAccept"); m != "while paused" {
		t.Fatalf("got %q", m)
	}
}
