package workerman

import (
	"bufio"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestBroadcast(t *testing.T) {
	t.Run("websocket", func(t *testing.T) {
		w := wsEchoWorker(false)
		accepted := make(chan struct{}, 8)
		w.OnConnect = func(*Connection) { accepted <- struct{}{} }
		joined := make(chan *Connection, 4)
		w.OnWebSocketConnected = func(c *Connection, r *WebSocketRequest) { joined <- c }
		addr := serve(t, w)
		var clients []*websocket.Conn
		var excluded *Connection
		for i := range 3 {
			d := &websocket.Dialer{EnableCompression: i == 0} // one compressed, two not
			clients = append(clients, gorillaDial(t, "ws://"+addr+"/", d, nil))
			c := wait(t, joined, "handshake")
			if i == 2 {
				excluded = c
			}
		}
		if n := w.Broadcast([]byte("to everyone"), excluded); n != 2 {
			t.Fatalf("Broadcast reached %d, want 2", n)
		}
		for i, c := range clients[:2] {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if typ, m, err := c.ReadMessage(); err != nil || typ != websocket.TextMessage || string(m) != "to everyone" {
				t.Fatalf("client %d: %d %q %v", i, typ, m, err)
			}
		}
		// The excluded one got nothing: its next message is its own echo.
		clients[2].WriteMessage(websocket.TextMessage, []byte("mine"))
		clients[2].SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, m, err := clients[2].ReadMessage(); err != nil || string(m) != "mine" {
			t.Fatalf("excluded client got %q %v", m, err)
		}
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
