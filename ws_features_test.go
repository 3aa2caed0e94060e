package workerman

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/workerman-go/workerman/protocol"

	"github.com/workerman-go/workerman/internal/testcert"
)

func TestWebSocketInteropGobwas(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		addr := serve(t, wsEchoWorker(goroutines))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, _, _, err := ws.Dial(ctx, "ws://"+addr+"/")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for i := range 50 {
			msg := []byte(fmt.Sprintf("message %d %s", i, strings.Repeat("z", i*37)))
			if err := wsutil.WriteClientMessage(conn, ws.OpText, msg); err != nil {
				t.Fatal(err)
			}
			got, op, err := wsutil.ReadServerData(conn)
			if err != nil || op != ws.OpText || !bytes.Equal(got, msg) {
				t.Fatalf("message %d: op %v err %v", i, op, err)
			}
		}
	})
}

// Compression negotiated exactly as Chrome offers it; compressed frames both
// ways.
func TestWebSocketCompressionAsBrowsersOffer(t *testing.T) {
	w := wsEchoWorker(false)
	addr := serve(t, w)
	c := dialWS(t, addr, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n")
	ext := c.resp.Header.Get("Sec-WebSocket-Extensions")
	for _, want := range []string{"permessage-deflate", "server_no_context_takeover", "client_no_context_takeover"} {
		if !strings.Contains(ext, want) {
			t.Fatalf("Sec-WebSocket-Extensions %q lacks %s", ext, want)
		}
	}
	msg := strings.Repeat("all work and no play ", 200)
	c.send(frame(true, 4, 1, true, deflateRaw(t, []byte(msg))))
	f := c.next()
	if f.op != 1 || f.rsv != 4 {
		t.Fatalf("reply op %d rsv %d, want a compressed text frame", f.op, f.rsv)
	}
	if got := inflateRaw(t, f.payload); got != msg {
		t.Fatalf("inflated reply differs (%d bytes)", len(got))
	}
	if len(f.payload) >= len(msg)/4 {
		t.Fatalf("reply of %d bytes for %d is not compressed", len(f.payload), len(msg))
	}
	// A short message goes uncompressed; a compressed fragmented message
	// carries RSV1 on its first frame only.
	c.send(text("short"))
	c.expectText("short")
	z := deflateRaw(t, []byte(msg))
	c.send(frame(false, 4, 1, true, z[:10]), frame(false, 0, 0, true, z[10:20]), frame(true, 0, 0, true, z[20:]))
	if f := c.next(); inflateRaw(t, f.payload) != msg {
		t.Fatal("fragmented compressed message differs")
	}

	// A deflate bomb is refused with 1009.
	w2 := wsEchoWorker(false)
	w2.MaxPackageSize = 1 << 20
	c2 := dialWS(t, serve(t, w2), "Sec-WebSocket-Extensions: permessage-deflate\r\n")
	c2.send(frame(true, 4, 2, true, deflateRaw(t, make([]byte, 8<<20))))
	c2.expectClose(1009)

	// Switched off per worker: no extension in the response, RSV1 refused.
	w3 := wsEchoWorker(false)
	w3.WebSocket.NoCompression = true
	c3 := dialWS(t, serve(t, w3), "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n")
	if ext := c3.resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("compression switched off, yet negotiated %q", ext)
	}
	c3.send(frame(true, 4, 1, true, deflateRaw(t, []byte("x"))))
	c3.expectClose(1002)
}

func deflateRaw(t *testing.T, p []byte) []byte {
	var b bytes.Buffer
	zw, _ := flate.NewWriter(&b, flate.BestCompression)
	zw.Write(p)
	zw.Flush()
	out := b.Bytes()
	return out[:len(out)-4] // RFC 7692: drop 00 00 ff ff
}

func inflateRaw(t *testing.T, p []byte) string {
	t.Helper()
	r := flate.NewReader(io.MultiReader(bytes.NewReader(p), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff})))
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("inflate: %v", err)
	}
	return string(out)
}

func TestWebSocketLargeAndPipelined(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		addr := serve(t, wsEchoWorker(goroutines))
		big := make([]byte, 8<<20)
		rand.Read(big)
		t.Run("8 MiB in one frame", func(t *testing.T) {
			c := dialWS(t, addr)
			go c.conn.Write(frame(true, 0, 2, true, big))
			expectBinary(t, c.next(), big)
		})
		t.Run("8 MiB in 512 fragments", func(t *testing.T) {
			c := dialWS(t, addr)
			var all []byte
			for i := 0; i < 512; i++ {
				op := byte(0)
				if i == 0 {
					op = 2
				}
				all = append(all, frame(i == 511, 0, op, true, big[i*16384:(i+1)*16384])...)
			}
			go c.conn.Write(all)
			expectBinary(t, c.next(), big)
		})
		t.Run("1000 pipelined messages", func(t *testing.T) {
			c := dialWS(t, addr)
			var all []byte
			for i := range 1000 {
				all = append(all, text(fmt.Sprintf("msg %04d", i))...)
			}
			c.send(all)
			for i := range 1000 {
				c.expectText(fmt.Sprintf("msg %04d", i))
			}
		})
	})
}

func TestWebSocketHooks(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := wsEchoWorker(goroutines)
		type seen struct{ path, room, token, cookie, origin string }
		got := make(chan seen, 4)
		connected := make(chan *WebSocketRequest, 4)
		pings := make(chan string, 4)
		pongs := make(chan string, 4)
		w.OnConnect = func(c *Connection) { c.SendString("sent from OnConnect, before the 101") }
		w.OnWebSocketConnect = func(c *Connection, r *WebSocketRequest) error {
			tok, _ := r.Cookie("token")
			got <- seen{r.Path(), r.Query().Get("room"), r.Header().Get("X-Token"), tok, r.Origin()}
			if r.Header().Get("X-Token") != "secret" {
				return RejectWebSocket(http.StatusUnauthorized, "bad token")
			}
			for _, p := range r.Protocols() {
				if p == "chat.v2" {
					r.AcceptProtocol(p)
				}
			}
			r.SetResponseHeader("X-Served-By", "workerman")
			return nil
		}
		w.OnWebSocketConnected = func(c *Connection, r *WebSocketRequest) { connected <- r }
		w.OnWebSocketPing = func(c *Connection, data []byte) {
			pings <- string(data)
			c.SendMessage(protocol.PongMessage, []byte("custom pong"))
		}
		w.OnWebSocketPong = func(c *Connection, data []byte) { pongs <- string(data) }
		addr := serve(t, w)

		// Rejected: 401 with the reason, no OnWebSocketConnected.
		var rejected *http.Response
		var rejectedBody []byte
		d := ws.Dialer{
			Timeout: 10 * time.Second,
			Header:  ws.HandshakeHeaderHTTP{"X-Token": {"wrong"}},
			OnStatusError: func(_ int, _ []byte, r io.Reader) {
				resp, err := http.ReadResponse(bufio.NewReader(r), nil)
				if err != nil {
					t.Errorf("reading the rejection: %v", err)
					return
				}
				rejected = resp
				rejectedBody, _ = io.ReadAll(resp.Body)
			},
		}
		_, _, _, err := d.Dial(context.Background(), "ws://"+addr+"/chat?room=7")
		var se ws.StatusError
		if !errors.As(err, &se) || se != 401 || rejected == nil || rejected.StatusCode != 401 {
			t.Fatalf("rejected dial: %v %v", rejected, err)
		}
		if !strings.Contains(string(rejectedBody), "bad token") {
			t.Fatalf("rejection body %q", rejectedBody)
		}
		wait(t, got, "OnWebSocketConnect")

		// Accepted: everything the hook read, the chosen subprotocol and the
		// extra header; data sent before the 101 arrives first.
		var servedBy string
		d = ws.Dialer{
			Timeout:   10 * time.Second,
			Protocols: []string{"chat.v1", "chat.v2"},
			Header:    ws.HandshakeHeaderHTTP{"X-Token": {"secret"}, "Cookie": {"token=abc; other=1"}, "Origin": {"http://example.test"}},
			OnHeader: func(key, value []byte) error {
				if http.CanonicalHeaderKey(string(key)) == "X-Served-By" {
					servedBy = string(value)
				}
				return nil
			},
		}
		conn, br, hs, err := d.Dial(context.Background(), "ws://"+addr+"/chat?room=42")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if s := wait(t, got, "OnWebSocketConnect"); s != (seen{"/chat", "42", "secret", "abc", "http://example.test"}) {
			t.Fatalf("OnWebSocketConnect saw %+v", s)
		}
		if hs.Protocol != "chat.v2" || servedBy != "workerman" {
			t.Fatalf("subprotocol %q, X-Served-By %q", hs.Protocol, servedBy)
		}
		if r := wait(t, connected, "OnWebSocketConnected"); r.Path() != "/chat" {
			t.Fatalf("OnWebSocketConnected with %q", r.Path())
		}
		// What the server sent right behind its 101 may sit in br.
		var in io.Reader = conn
		if br != nil {
			in = br
		}
		c := struct {
			io.Reader
			io.Writer
		}{in, conn}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if m, op, err := wsutil.ReadServerData(c); err != nil || op != ws.OpText || string(m) != "sent from OnConnect, before the 101" {
			t.Fatalf("first message %q %v %v", m, op, err)
		}
		if err := wsutil.WriteClientMessage(c, ws.OpPing, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if err := wsutil.WriteClientMessage(c, ws.OpPong, []byte("unsolicited")); err != nil {
			t.Fatal(err)
		}
		if p := wait(t, pings, "OnWebSocketPing"); p != "hi" {
			t.Fatalf("ping %q", p)
		}
		// The hook's pong is the next frame: the hook replaces the automatic one.
		f, err := ws.ReadFrame(c)
		if err != nil || f.Header.OpCode != ws.OpPong || string(f.Payload) != "custom pong" {
			t.Fatalf("the hook's pong: op %v %q %v", f.Header.OpCode, f.Payload, err)
		}
		if p := wait(t, pongs, "OnWebSocketPong"); p != "unsolicited" {
			t.Fatalf("pong hook %q", p)
		}
	})
}

func TestWebSocketServerCloses(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := wsEchoWorker(goroutines)
		w.OnMessage = func(c *Connection, data []byte) {
			switch string(data) {
			case "close":
				c.Close()
			case "close4001":
				c.CloseWebSocket(4001, "go away")
			case "binary":
				c.SetWebSocketType(protocol.BinaryMessage)
				c.Send([]byte("now binary"))
			default:
				c.Send(data)
			}
		}
		addr := serve(t, w)
		for _, tc := range []struct {
			send string
			code int
		}{{"close", 1000}, {"close4001", 4001}} {
			c := dialWS(t, addr)
			c.send(text(tc.send))
			c.expectClose(tc.code)
		}
		c := dialWS(t, addr)
		c.send(text("binary"))
		if f := c.next(); f.op != 2 || string(f.payload) != "now binary" {
			t.Fatalf("op %d %q", f.op, f.payload)
		}
		// Stopping the worker sends 1001 to everyone still connected.
		open := dialWS(t, addr)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			w.Shutdown(ctx)
		}()
		open.expectClose(1001)
		<-w.Done()
	})
}

func TestWebSocketBinaryTypeOption(t *testing.T) {
	w := &Worker{URI: "websocket://127.0.0.1:0", WebSocket: WebSocketOptions{BinaryType: true}}
	w.OnMessage = func(c *Connection, data []byte) { c.Send(data) }
	c := dialWS(t, serve(t, w))
	c.send(text("in text"))
	if f := c.next(); f.op != 2 {
		t.Fatalf("op %d, want binary", f.op)
	}
}

// Heartbeats: pings go out every interval; a peer that answers stays, a
// silent one is closed after PingNotResponseLimit intervals.
func TestWebSocketHeartbeat(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := wsEchoWorker(goroutines)
		w.WebSocket.PingInterval = 100 * time.Millisecond
		w.WebSocket.PingNotResponseLimit = 3
		var timeouts atomic.Int32
		w.OnError = func(c *Connection, err error) {
			if errors.Is(err, ErrHeartbeatTimeout) {
				timeouts.Add(1)
			}
		}
		addr := serve(t, w)
		live := dialWS(t, addr)
		silent := dialWS(t, addr)
		start := time.Now()
		pings := 0
		for pings < 6 {
			f := live.next()
			if f.op == 9 {
				pings++
				live.send(frame(true, 0, 10, true, f.payload))
			}
		}
		if el := time.Since(start); el < 400*time.Millisecond {
			t.Fatalf("6 pings in %v: faster than the interval", el)
		}
		silent.expectClose(1001)
		if timeouts.Load() != 1 {
			t.Fatalf("%d heartbeat timeouts, want 1 (the silent peer)", timeouts.Load())
		}
		live.send(text("still alive"))
		for {
			if f := live.next(); f.op == 1 {
				if string(f.payload) != "still alive" {
					t.Fatalf("got %q", f.payload)
				}
				break
			}
		}
	})
	t.Run("PingData", func(t *testing.T) {
		w := wsEchoWorker(false)
		w.WebSocket.PingInterval = 50 * time.Millisecond
		w.WebSocket.PingData = []byte(`{"type":"ping"}`)
		c := dialWS(t, serve(t, w))
		c.expectText(`{"type":"ping"}`)
	})
}

// wss:// with a Worker on the ssl transport, compression negotiated.
func TestWebSocketTLS(t *testing.T) {
	cert, pool := testcert.Pair(t)
	engines(t, func(t *testing.T, goroutines bool) {
		w := wsEchoWorker(goroutines)
		w.Transport = "ssl"
		w.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		addr := serve(t, w)
		c := newClient(t, "wss://"+addr+"/")
		c.TLSConfig = &tls.Config{RootCAs: pool}
		c.connect(t)
		if r := wait(t, c.wsConn, "OnWebSocketConnect"); r.Status != 101 || !r.Compressed {
			t.Fatalf("response %+v: want 101 with compression", r)
		}
		for _, m := range []string{"over tls", strings.Repeat("big ", 50000)} {
			c.SendString(m)
			if got := wait(t, c.msgs, fmt.Sprintf("the echo of %d bytes", len(m))); got != m {
				t.Fatalf("%d bytes back of %d", len(got), len(m))
			}
		}
		// A plain client on the TLS port is refused without harming the worker.
		plain := dial(t, addr)
		plain.Write([]byte(handshakeRequest("/")))
		expectEOF(t, plain)
		c.SendString("after")
		c.expect(t, "after")
		select {
		case err := <-c.errs:
			t.Fatalf("OnError(%v)", err)
		default:
		}
	})
}
