package workerman

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/engine"
	"github.com/workerman-go/workerman/internal/leakcheck"
	"github.com/workerman-go/workerman/protocol"
)

// Exactly one close frame per connection, on every path that ends a
// WebSocket connection, then the TCP close (RFC 6455 section 5.5.1). The
// byte-level check is rawWS.expectClose: not one byte may follow the close
// frame.
func TestWebSocketOneCloseFramePerConnection(t *testing.T) {
	cases := []struct {
		name  string
		setup func(w *Worker)
		// act makes the server close c; it may send frames or act on the
		// server's connection, handed over by OnWebSocketConnected.
		act  func(t *testing.T, c *rawWS, sc *Connection, w *Worker)
		code int
	}{
		{name: "protocol error (opcode 3)", code: 1002,
			act: func(t *testing.T, c *rawWS, _ *Connection, _ *Worker) { c.send(frame(true, 0, 3, true, nil)) }},
		{name: "codec error (RSV1 found by the decoder)", code: 1002,
			act: func(t *testing.T, c *rawWS, _ *Connection, _ *Worker) {
				c.send(frame(true, 4, 2, true, []byte("x")))
			}},
		{name: "invalid UTF-8", code: 1007,
			act: func(t *testing.T, c *rawWS, _ *Connection, _ *Worker) {
				c.send(frame(true, 0, 1, true, []byte{0xff, 0xfe, 0, 0x80}))
			}},
		{name: "size limit", code: 1009,
			act: func(t *testing.T, c *rawWS, sc *Connection, _ *Worker) {
				sc.SetMaxPackageSize(16)
				c.send(frame(true, 0, 2, true, make([]byte, 17)))
			}},
		{name: "idle timeout", code: 1001,
			setup: func(w *Worker) { w.IdleTimeout = 100 * time.Millisecond },
			act:   func(*testing.T, *rawWS, *Connection, *Worker) {}},
		{name: "heartbeat timeout", code: 1001,
			setup: func(w *Worker) {
				w.WebSocket.PingInterval = 50 * time.Millisecond
				w.WebSocket.PingNotResponseLimit = 2
			},
			act: func(*testing.T, *rawWS, *Connection, *Worker) {}},
		{name: "Close", code: 1000,
			act: func(_ *testing.T, _ *rawWS, sc *Connection, _ *Worker) { sc.Close() }},
		{name: "Close with data", code: 1000,
			act: func(_ *testing.T, _ *rawWS, sc *Connection, _ *Worker) { sc.Close([]byte("bye")) }},
		{name: "CloseWebSocket", code: 4001,
			act: func(_ *testing.T, _ *rawWS, sc *Connection, _ *Worker) { sc.CloseWebSocket(4001, "app says bye") }},
		{name: "CloseWebSocket then Close", code: 4002,
			act: func(_ *testing.T, _ *rawWS, sc *Connection, _ *Worker) {
				sc.CloseWebSocket(4002, "")
				sc.Close()
				sc.CloseWebSocket(4003, "")
			}},
		{name: "a close frame sent by the user, then Close", code: 4000,
			act: func(_ *testing.T, _ *rawWS, sc *Connection, _ *Worker) {
				sc.SendMessage(protocol.CloseMessage, protocol.ClosePayload(4000, "bye"))
				sc.Close()
				if err := sc.Send([]byte("after")); err == nil {
					panic("Send after the close frame succeeded")
				}
			}},
		{name: "answer to the peer's close", code: 4004,
			act: func(_ *testing.T, c *rawWS, _ *Connection, _ *Worker) { c.send(closeFrame(4004, "bye")) }},
		{name: "peer's close after a protocol error", code: 1002,
			act: func(_ *testing.T, c *rawWS, _ *Connection, _ *Worker) {
				c.send(frame(true, 0, 3, true, nil), closeFrame(1000, ""))
			}},
		{name: "Shutdown", code: 1001,
			act: func(_ *testing.T, _ *rawWS, _ *Connection, w *Worker) {
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					w.Shutdown(ctx)
				}()
			}},
	}
	engines(t, func(t *testing.T, goroutines bool) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				w := wsEchoWorker(goroutines)
				conns := make(chan *Connection, 1)
				w.OnWebSocketConnected = func(c *Connection, _ *WebSocketRequest) { conns <- c }
				if tc.setup != nil {
					tc.setup(w)
				}
				c := dialWS(t, serve(t, w))
				sc := wait(t, conns, "OnWebSocketConnected")
				tc.act(t, c, sc, w)
				c.expectClose(tc.code)
			})
		}
	})
}

// The same for the client side: an AsyncConnection sends one masked close
// frame, and nothing after it, however its connection ends.
func TestAsyncConnectionOneCloseFrame(t *testing.T) {
	cases := []struct {
		name  string
		setup func(c *client)
		// server runs after the 101 on the raw server's side.
		server func(conn net.Conn)
		// act runs on the client once it is connected.
		act  func(c *client)
		code int
	}{
		{name: "protocol error (masked server frame)", code: 1002,
			server: func(conn net.Conn) { conn.Write(frame(true, 0, 1, true, []byte("masked!"))) }},
		{name: "protocol error (bad opcode)", code: 1002,
			server: func(conn net.Conn) { conn.Write(frame(true, 0, 3, false, nil)) }},
		{name: "invalid UTF-8", code: 1007,
			server: func(conn net.Conn) { conn.Write(frame(true, 0, 1, false, []byte{0xff, 0xfe})) }},
		{name: "size limit", code: 1009,
			act: func(c *client) {
				c.Connection().SetMaxPackageSize(16)
				c.SendString("go")
			},
			server: func(conn net.Conn) {
				io.ReadFull(conn, make([]byte, 2+4+2)) // the client's "go"
				conn.Write(frame(true, 0, 2, false, make([]byte, 17)))
			}},
		{name: "heartbeat timeout", code: 1001,
			setup: func(c *client) {
				c.WebSocket.PingInterval = 50 * time.Millisecond
				c.WebSocket.PingNotResponseLimit = 2
			}},
		{name: "Close", code: 1000, act: func(c *client) { c.Close() }},
		{name: "CloseWebSocket", code: 4001, act: func(c *client) { c.CloseWebSocket(4001, "bye") }},
		{name: "CloseWebSocket then Close", code: 4002, act: func(c *client) {
			c.CloseWebSocket(4002, "")
			c.Close()
		}},
		{name: "answer to the server's close", code: 4005,
			server: func(conn net.Conn) { conn.Write(frame(true, 0, 8, false, binary.BigEndian.AppendUint16(nil, 4005))) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			frames := make(chan []clientFrame, 1)
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				defer conn.Close()
				br := bufio.NewReader(conn)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				fmt.Fprintf(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
					protocolAccept(req.Header.Get("Sec-WebSocket-Key")))
				if tc.server != nil {
					tc.server(conn)
				}
				conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				frames <- readClientFrames(br)
			}()
			c := newClient(t, "ws://"+ln.Addr().String()+"/")
			c.WebSocket.NoCompression = true
			if tc.setup != nil {
				tc.setup(c)
			}
			c.connect(t)
			wait(t, c.wsConn, "handshake")
			if tc.act != nil {
				tc.act(c)
			}
			got := wait(t, frames, "the client's frames")
			wait(t, c.closed, "OnClose")
			var closes []int
			for i, f := range got {
				if f.op == 8 {
					closes = append(closes, f.code)
					if i != len(got)-1 {
						t.Fatalf("frames after the close frame: %+v", got)
					}
				}
			}
			if len(closes) != 1 || closes[0] != tc.code {
				t.Fatalf("client sent close frames with codes %v (frames %+v), want exactly one with %d", closes, got, tc.code)
			}
		})
	}
}

type clientFrame struct {
	op   byte
	code int
	err  error
}

// readClientFrames reads masked client frames until EOF; a frame that is
// not masked or is cut short ends the list with its error.
func readClientFrames(r *bufio.Reader) []clientFrame {
	var out []clientFrame
	for {
		var h [2]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			if err != io.EOF && !isReset(err) {
				out = append(out, clientFrame{err: err})
			}
			return out
		}
		if h[1]&0x80 == 0 {
			return append(out, clientFrame{op: h[0] & 0xf, err: fmt.Errorf("unmasked client frame")})
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var l [2]byte
			io.ReadFull(r, l[:])
			n = uint64(binary.BigEndian.Uint16(l[:]))
		case 127:
			var l [8]byte
			io.ReadFull(r, l[:])
			n = binary.BigEndian.Uint64(l[:])
		}
		var key [4]byte
		p := make([]byte, n)
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return append(out, clientFrame{err: err})
		}
		if _, err := io.ReadFull(r, p); err != nil {
			return append(out, clientFrame{err: err})
		}
		for i := range p {
			p[i] ^= key[i%4]
		}
		f := clientFrame{op: h[0] & 0xf, code: 1005}
		if f.op == 8 && len(p) >= 2 {
			f.code = int(binary.BigEndian.Uint16(p))
		}
		out = append(out, f)
	}
}

// Shutdown ends with the closing handshakes: after the 1001 close frame it
// waits for the peer to answer and close (the socket lingers after
// OnClose), and returns as soon as it did, long before the linger time.
func TestShutdownWaitsForTheClosingHandshake(t *testing.T) {
	leakcheck.Check(t)
	engines(t, func(t *testing.T, goroutines bool) {
		w := &Worker{URI: "websocket://127.0.0.1:0", goroutines: goroutines}
		connected := make(chan struct{}, 1)
		w.OnWebSocketConnected = func(*Connection, *WebSocketRequest) { connected <- struct{}{} }
		if err := w.Listen(); err != nil {
			t.Fatal(err)
		}
		c := dialWS(t, w.Addr().String())
		wait(t, connected, "OnWebSocketConnected")
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done <- w.Shutdown(ctx)
		}()
		f := c.next()
		if code, _ := protocol.ParseClosePayload(f.payload); f.op != 8 || code != protocol.CloseGoingAway {
			t.Fatalf("frame op %d code %d, want a close frame with 1001", f.op, code)
		}
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned (%v) before the client answered the close frame", err)
		default:
		}
		answered := time.Now()
		c.send(frame(true, 0, 8, true, protocol.ClosePayload(protocol.CloseGoingAway, "")))
		expectEOF(t, c.conn) // the server's FIN, not a reset
		c.conn.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Shutdown never returned")
		}
		if took := time.Since(answered); took >= engine.LingerTimeout {
			t.Fatalf("Shutdown returned %v after the client's close: the linger timeout, not the close", took)
		}
	})
}

// CloseWhenBufferFull: the first send that finds the buffer full closes
// the connection: the peer gets everything queued before it, in order,
// then a close frame with 1013, and nothing sent after it.
func TestCloseWhenBufferFull(t *testing.T) {
	leakcheck.Check(t)
	w := &Worker{URI: "websocket://127.0.0.1:0", MaxSendBufferSize: 64 << 10}
	conns := make(chan *Connection, 1)
	w.OnWebSocketConnected = func(c *Connection, _ *WebSocketRequest) { conns <- c }
	errs := make(chan error, 16)
	w.OnError = func(_ *Connection, err error) { errs <- err }
	addr := serve(t, w)
	c := dialWS(t, addr) // reads nothing until the server gave up
	sc := wait(t, conns, "OnWebSocketConnected")
	sc.CloseWhenBufferFull()
	pad := strings.Repeat("x", 1000)
	sent, dropped := 0, -1
	for i := 0; i < 100000 && dropped < 0; i++ {
		switch err := sc.Send([]byte(fmt.Sprintf("%d %s", i, pad))); {
		case err == nil:
			sent++
		case errors.Is(err, ErrSendBufferFull):
			dropped = i
		default:
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if dropped < 0 {
		t.Fatal("the buffer never filled")
	}
	if err := sc.Send([]byte("after")); !errors.Is(err, ErrClosed) {
		t.Fatalf("a send after the drop: %v, want ErrClosed", err)
	}
	if err := wait(t, errs, "OnError"); !errors.Is(err, ErrSendBufferFull) {
		t.Fatalf("OnError(%v), want ErrSendBufferFull", err)
	}
	for i := 0; i < sent; i++ {
		f := c.next()
		if n, _, _ := strings.Cut(string(f.payload), " "); f.op != 1 || n != strconv.Itoa(i) {
			t.Fatalf("frame %d: op %d %.20q", i, f.op, f.payload)
		}
	}
	f := c.next()
	if code, _ := protocol.ParseClosePayload(f.payload); f.op != 8 || code != protocol.CloseTryAgainLater {
		t.Fatalf("after the %d queued messages: op %d %.40q, want a close frame with 1013", sent, f.op, f.payload)
	}
}
