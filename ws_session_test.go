package workerman

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/workerman-go/workerman/protocol"
)

// What is sent before the handshake completed is held, up to
// MaxSendBufferSize, as Workerman bounds its tmpWebsocketData: beyond it
// sends (and broadcasts) are dropped and reported.
func TestWebSocketHeldFramesAreBounded(t *testing.T) {
	w := &Worker{URI: "websocket://127.0.0.1:0", MaxSendBufferSize: 1000}
	var full atomic.Int32
	w.OnError = func(c *Connection, err error) {
		if errors.Is(err, ErrSendBufferFull) {
			full.Add(1)
		}
	}
	connected := make(chan *Connection, 1)
	w.OnConnect = func(c *Connection) { connected <- c }
	addr := serve(t, w)
	c := dial(t, addr)
	sc := wait(t, connected, "OnConnect")
	msg := bytes.Repeat([]byte("a"), 400)
	took := 0
	for range 20 {
		took += w.Broadcast(msg)
	}
	if took != 2 {
		t.Fatalf("%d broadcasts of 400 bytes held for a peer without a handshake, want 2 (MaxSendBufferSize 1000)", took)
	}
	if err := sc.Send(msg); !errors.Is(err, ErrSendBufferFull) {
		t.Fatalf("Send: %v, want ErrSendBufferFull", err)
	}
	// The two held ones follow the 101.
	ws := &rawWS{t: t, conn: c, r: bufio.NewReader(c)}
	c.Write([]byte(handshakeRequest("/")))
	if ws.resp = ws.readResponse(); ws.resp.StatusCode != 101 {
		t.Fatalf("status %d", ws.resp.StatusCode)
	}
	for range 2 {
		ws.expectText(string(msg))
	}
	deadline := time.Now().Add(10 * time.Second)
	for full.Load() < 19 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling with a bound
	}
	if n := full.Load(); n != 19 {
		t.Fatalf("%d drops reported through OnError, want 19", n)
	}
}

// WebSocketRequest may be called from any goroutine while the connection
// drops the handshake after OnWebSocketConnected (the race detector
// watches).
func TestWebSocketRequestFromAnyGoroutine(t *testing.T) {
	w := &Worker{URI: "websocket://127.0.0.1:0"}
	done := make(chan struct{})
	w.OnConnect = func(c *Connection) {
		go func() {
			defer close(done)
			for range 20000 {
				c.WebSocketRequest()
			}
		}()
	}
	dialWS(t, serve(t, w))
	wait(t, done, "the reader")
}

// BinaryType holds on an http:// worker's WebSocket path too.
func TestWebSocketPathBinaryType(t *testing.T) {
	w := &Worker{URI: "http://127.0.0.1:0"}
	w.WebSocket.Path = "/ws"
	w.WebSocket.BinaryType = true
	w.OnMessage = func(c *Connection, d []byte) { c.Send(d) }
	c := dial(t, serve(t, w))
	ws := &rawWS{t: t, conn: c, r: bufio.NewReader(c)}
	c.Write([]byte(handshakeRequest("/ws")))
	if ws.resp = ws.readResponse(); ws.resp.StatusCode != 101 {
		t.Fatalf("status %d", ws.resp.StatusCode)
	}
	ws.send(text("hi"))
	expectBinary(t, ws.next(), []byte("hi"))
}

// pingingCodec is a custom codec that decodes "ping" lines as pings.
type pingingCodec struct{ protocol.Text }

func (pingingCodec) Decode(c protocol.Conn, p []byte) (protocol.Message, error) {
	m, err := protocol.Text{}.Decode(c, p)
	if string(m.Data) == "ping" {
		m.Type = protocol.PingMessage
	}
	return m, err
}

// A custom codec's messages other than data have nowhere to go: OnMessage
// gets only data, as before protocols had sessions.
func TestCustomCodecControlMessagesAreNotDelivered(t *testing.T) {
	protocol.Register("pinging", protocol.Shared(pingingCodec{}))
	w := &Worker{URI: "pinging://127.0.0.1:0"}
	w.OnMessage = func(c *Connection, d []byte) { c.Send(append([]byte("got "), d...)) }
	c := dial(t, serve(t, w))
	c.Write([]byte("ping\nhello\n"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(c).ReadString('\n'); line != "got hello\n" {
		t.Fatalf("first reply %q (%v), want %q", line, err, "got hello\n")
	}
}

// Requests pipelined before an upgrade on an http:// worker's WebSocket
// path are answered as HTTP, in order, and then the connection is a
// WebSocket: the switch happens at the upgrade request, not when the loop
// framed it.
func TestHTTPRequestsPipelinedBeforeUpgrade(t *testing.T) {
	w := &Worker{URI: "http://127.0.0.1:0"}
	w.WebSocket.Path = "/ws"
	w.OnRequest = func(c *Connection, r *Request) {
		c.SendResponse(NewResponse(200, []byte(r.Method+" "+r.Path()+" "+string(r.RawBody()))))
	}
	w.OnMessage = func(c *Connection, d []byte) { c.Send(append([]byte("echo "), d...)) }
	c := dial(t, serve(t, w))
	ws := &rawWS{t: t, conn: c, r: bufio.NewReader(c)}
	// Two requests (one with a body), the upgrade and a first frame, in one write.
	c.Write([]byte("GET /a HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
		handshakeRequest("/ws") + string(text("hi"))))
	for _, want := range []string{"GET /a ", "POST /b hello"} {
		resp := ws.readResponse()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != want {
			t.Fatalf("pipelined request: %d %q, want 200 %q", resp.StatusCode, body, want)
		}
	}
	if ws.resp = ws.readResponse(); ws.resp.StatusCode != 101 {
		t.Fatalf("the upgrade after two requests: status %d", ws.resp.StatusCode)
	}
	for _, want := range []string{"echo hi", "echo again"} {
		if f := ws.next(); f.op != 1 || string(f.payload) != want {
			t.Fatalf("op %d %q, want a text message %q", f.op, f.payload, want)
		}
		ws.send(text("again"))
	}
}
