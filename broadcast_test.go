package workerman

import (
	"bufio"
	"testing"

	"github.com/workerman-go/workerman/protocol"
)

func TestBroadcast(t *testing.T) {
	t.Run("websocket", func(t *testing.T) {
		w := wsEchoWorker(false)
		accepted := make(chan struct{}, 8)
		w.OnConnect = func(*Connection) { accepted <- struct{}{} }
		joined := make(chan *Connection, 4)
		w.OnWebSocketConnected = func(c *Connection, r *WebSocketRequest) { joined <- c }
		addr := serve(t, w)
		var clients []*client
		var excluded *Connection
		for i := range 3 {
			c := newClient(t, "ws://"+addr+"/")
			c.WebSocket.NoCompression = i != 0 // one compressed, two not
			c.connect(t)
			if r := wait(t, c.wsConn, "OnWebSocketConnect"); r.Compressed != (i == 0) {
				t.Fatalf("client %d: compressed %v", i, r.Compressed)
			}
			clients = append(clients, c)
			conn := wait(t, joined, "handshake")
			if i == 2 {
				excluded = conn
			}
		}
		if n := w.Broadcast([]byte("to everyone"), excluded); n != 2 {
			t.Fatalf("Broadcast reached %d, want 2", n)
		}
		for i, c := range clients[:2] {
			if m := wait(t, c.msgs, "the broadcast"); m != "to everyone" {
				t.Fatalf("client %d: %q", i, m)
			}
			if typ := wait(t, c.types, "its type"); typ != protocol.TextMessage {
				t.Fatalf("client %d: the broadcast came as %v", i, typ)
			}
		}
		// The excluded one got nothing: its next message is its own echo.
		clients[2].SendString("mine")
		clients[2].expect(t, "mine")
		// A connection still in its handshake gets it right after the 101.
		raw := dial(t, addr)
		raw.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n")) // handshake not finished
		for range 4 {
			wait(t, accepted, "OnConnect")
		}
		w.Broadcast([]byte("early"))
		raw.Write([]byte("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + wsKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n"))
		ws := &rawWS{t: t, conn: raw, r: bufio.NewReader(raw)}
		ws.resp = ws.readResponse()
		ws.expectText("early")
	})
	t.Run("text", func(t *testing.T) {
		w := echoWorker("text", false)
		connected := make(chan struct{}, 2)
		w.OnConnect = func(*Connection) { connected <- struct{}{} }
		addr := serve(t, w)
		a, b := dial(t, addr), dial(t, addr)
		wait(t, connected, "a")
		wait(t, connected, "b")
		if n := w.Broadcast([]byte("news")); n != 2 {
			t.Fatalf("reached %d", n)
		}
		if got := readLine(t, bufio.NewReader(a), a); got != "news\n" {
			t.Fatalf("a got %q", got)
		}
		if got := readLine(t, bufio.NewReader(b), b); got != "news\n" {
			t.Fatalf("b got %q", got)
		}
	})
}
