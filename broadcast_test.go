package workerman

import (
	"bufio"
	"bytes"
	"errors"
	"runtime"
	"strconv"
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

func TestMulticastPreparedMessage(t *testing.T) {
	w := wsEchoWorker(false)
	joined := make(chan *Connection, 4)
	w.OnWebSocketConnected = func(c *Connection, r *WebSocketRequest) { joined <- c }
	closed := make(chan *Connection, 4)
	w.OnClose = func(c *Connection) { closed <- c }
	addr := serve(t, w)
	var clients []*client
	var conns []*Connection
	for range 3 {
		c := newClient(t, "ws://"+addr+"/")
		c.connect(t)
		wait(t, c.wsConn, "OnWebSocketConnect")
		clients = append(clients, c)
		conns = append(conns, wait(t, joined, "handshake"))
	}
	conns[1].SetWebSocketType(protocol.BinaryMessage)

	if _, err := NewPreparedMessage(protocol.TextMessage, []byte{0xff}); err != ErrInvalidUTF8 {
		t.Fatalf("text that is not UTF-8: %v, want ErrInvalidUTF8", err)
	}
	if _, err := NewPreparedMessage(protocol.PingMessage, nil); err == nil {
		t.Fatal("a prepared ping was accepted")
	}
	data := []byte("data")
	m, err := NewPreparedMessage(protocol.DataMessage, data)
	if err != nil {
		t.Fatal(err)
	}
	data[0] = 'X' // the message keeps its own copy
	if n := Multicast(conns, m, conns[2]); n != 2 {
		t.Fatalf("Multicast reached %d, want 2", n)
	}
	// A data message goes out in each connection's own type.
	for i, want := range []protocol.MessageType{protocol.TextMessage, protocol.BinaryMessage} {
		if got := wait(t, clients[i].msgs, "the message"); got != "data" {
			t.Fatalf("client %d: %q", i, got)
		}
		if typ := wait(t, clients[i].types, "its type"); typ != want {
			t.Fatalf("client %d: type %v, want %v", i, typ, want)
		}
	}
	// Binary bytes that are not UTF-8 as a data message: the text
	// connection refuses them, the binary one takes them.
	bad, _ := NewPreparedMessage(protocol.DataMessage, []byte{0xff, 0xfe})
	if n := Multicast(conns[:2], bad); n != 1 {
		t.Fatalf("a non-UTF-8 data message reached %d, want 1 (the binary connection)", n)
	}
	if got := wait(t, clients[1].msgs, "the binary message"); got != "\xff\xfe" {
		t.Fatalf("binary client got %q", got)
	}
	if typ := wait(t, clients[1].types, "its type"); typ != protocol.BinaryMessage {
		t.Fatalf("type %v, want binary", typ)
	}
	// An explicit type wins over the connection's.
	txt, _ := NewPreparedMessage(protocol.TextMessage, []byte("text"))
	if err := conns[1].SendPrepared(txt); err != nil {
		t.Fatal(err)
	}
	if typ := wait(t, clients[1].types, "the text message"); typ != protocol.TextMessage {
		t.Fatalf("type %v, want text", typ)
	}
	// The excluded client got nothing: its next message is its own echo.
	clients[2].SendString("mine")
	clients[2].expect(t, "mine")
	// A closed connection refuses it.
	clients[0].Close()
	if c := wait(t, closed, "OnClose"); c != conns[0] {
		t.Fatal("another connection closed")
	}
	if err := conns[0].SendPrepared(txt); !errors.Is(err, ErrClosed) {
		t.Fatalf("SendPrepared on a closed connection: %v, want ErrClosed", err)
	}
}

// TestMulticastLongList sends to more connections than one goroutine
// writes (multicastSerialMax), so that several write at once: every
// connection gets every message once and in call order, the exclusions and
// a closed connection are left out, and the count is exact.
func TestMulticastLongList(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		const n = 2*multicastSerialMax + 90
		w := wsEchoWorker(goroutines)
		joined := make(chan *Connection, n)
		w.OnWebSocketConnected = func(c *Connection, r *WebSocketRequest) { joined <- c }
		addr := serve(t, w)
		clients := make([]*rawWS, n)
		byID := make(map[uint64]int, n)
		conns := make([]*Connection, n)
		for i := range clients {
			clients[i] = dialWS(t, addr)
			c := wait(t, joined, "handshake")
			conns[i] = c
			byID[c.ID()] = i
		}
		excl := []*Connection{conns[7], conns[n/2]}
		closed := n - 1
		conns[closed].Close()
		const rounds = 5
		for k := range rounds {
			m, err := NewPreparedMessage(protocol.TextMessage, []byte(strconv.Itoa(k)))
			if err != nil {
				t.Fatal(err)
			}
			if got := Multicast(conns, m, excl...); got != n-len(excl)-1 {
				t.Fatalf("round %d: Multicast reached %d, want %d", k, got, n-len(excl)-1)
			}
		}
		// A short list goes through the caller alone: the excluded ones
		// get this as their first message.
		last, _ := NewPreparedMessage(protocol.TextMessage, []byte("last"))
		if got := Multicast(excl, last); got != len(excl) {
			t.Fatalf("short Multicast reached %d, want %d", got, len(excl))
		}
		for _, c := range excl {
			clients[byID[c.ID()]].expectText("last")
		}
		for i, c := range clients {
			if i == closed || i == 7 || i == n/2 {
				continue
			}
			for k := range rounds {
				f := c.next()
				if f.op != 1 || string(f.payload) != strconv.Itoa(k) {
					t.Fatalf("client %d: message %d is op %d %q, want text %q", i, k, f.op, f.payload, strconv.Itoa(k))
				}
			}
		}
		// The closed one got nothing before its close frame.
		if f := clients[closed].next(); f.op != 8 {
			t.Fatalf("closed client: op %d %q, want the close frame", f.op, f.payload)
		}
	})
}

// TestMulticastShortListAllocs: a multicast to a few connections whose
// frame is built costs no allocation.
func TestMulticastShortListAllocs(t *testing.T) {
	w := wsEchoWorker(false)
	joined := make(chan *Connection, 4)
	w.OnWebSocketConnected = func(c *Connection, r *WebSocketRequest) { joined <- c }
	addr := serve(t, w)
	var conns []*Connection
	for range 4 {
		dialWS(t, addr)
		conns = append(conns, wait(t, joined, "handshake"))
	}
	m, _ := NewPreparedMessage(protocol.TextMessage, []byte("x"))
	Multicast(conns, m) // builds the frame
	if a := testing.AllocsPerRun(100, func() { Multicast(conns, m, conns[0]) }); a != 0 {
		t.Fatalf("Multicast to %d connections: %.1f allocations, want 0", len(conns), a)
	}
}

// A broadcast that slow readers cannot take at once is queued for them as
// a reference to its one frame, not a copy each: 16 connections that read
// nothing while 6 broadcasts of 1 MiB go out hold tens of megabytes in
// their queues (the kernel takes the first 2.6 MB or so of each on
// loopback), and the heap grows by about the frames alone. Then each reads
// every message, whole and in order.
func TestBroadcastToSlowReadersQueuesOneFrame(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		const readers, msgs, size = 16, 6, 1 << 20
		w := wsEchoWorker(goroutines)
		w.MaxSendBufferSize = 8 << 20 // nothing is dropped
		joined := make(chan *Connection, readers)
		w.OnWebSocketConnected = func(c *Connection, _ *WebSocketRequest) { joined <- c }
		addr := serve(t, w)
		clients := make([]*rawWS, readers)
		conns := make([]*Connection, readers)
		for i := range clients {
			clients[i] = dialWS(t, addr)
			conns[i] = wait(t, joined, "a handshake")
		}
		heap := func() int64 {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return int64(ms.HeapAlloc)
		}
		payloads := make([][]byte, msgs)
		for i := range payloads {
			payloads[i] = bytes.Repeat([]byte{byte('a' + i)}, size)
		}
		before := heap()
		for i, p := range payloads {
			if n := w.Broadcast(p); n != readers {
				t.Fatalf("broadcast %d reached %d of %d", i, n, readers)
			}
		}
		grown := heap() - before
		queued := 0
		for _, c := range conns {
			queued += c.SendQueueSize()
		}
		if queued < 16<<20 {
			t.Fatalf("only %d bytes queued: the kernel took the rest, the test proves nothing", queued)
		}
		if grown > int64(queued/4) {
			t.Fatalf("%d bytes queued for slow readers grew the heap by %d", queued, grown)
		}
		for i, c := range clients {
			for k, p := range payloads {
				if f := c.next(); f.op != 1 || !bytes.Equal(f.payload, p) {
					t.Fatalf("client %d, message %d: op %d, %d bytes, not the broadcast", i, k, f.op, len(f.payload))
				}
			}
		}
	})
}
