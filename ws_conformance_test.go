package workerman

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Bad handshakes get the HTTP status RFC 6455 asks for, and the connection
// is closed; the worker keeps serving.
func TestWebSocketBadHandshakes(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := wsEchoWorker(goroutines)
		w.WebSocket.HandshakeTimeout = 300 * time.Millisecond
		errs := make(chan error, 20)
		w.OnError = func(c *Connection, err error) { errs <- err }
		addr := serve(t, w)
		req := func(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }
		cases := []struct {
			name   string
			send   string
			status int
			header [2]string
		}{
			{name: "missing key", status: 400,
				send: req("GET / HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13")},
			{name: "POST", status: 405,
				send: req("POST / HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: "+wsKey, "Sec-WebSocket-Version: 13")},
			{name: "version 8", status: 426, header: [2]string{"Sec-WebSocket-Version", "13"},
				send: req("GET / HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: "+wsKey, "Sec-WebSocket-Version: 8")},
			{name: "no upgrade header", status: 400,
				send: req("GET / HTTP/1.1", "Host: x", "Connection: Upgrade", "Sec-WebSocket-Key: "+wsKey, "Sec-WebSocket-Version: 13")},
			{name: "HTTP/1.0", status: 505,
				send: req("GET / HTTP/1.0", "Host: x", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: "+wsKey, "Sec-WebSocket-Version: 13")},
			{name: "handshake over 16 KiB", status: 431,
				send: "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 17<<10)},
			{name: "garbage instead of a handshake", status: 400,
				send: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c := dial(t, addr)
				c.Write([]byte(tc.send))
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatalf("reading the response: %v", err)
				}
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
				}
				if k := tc.header[0]; k != "" && resp.Header.Get(k) != tc.header[1] {
					t.Fatalf("%s: %q, want %q", k, resp.Header.Get(k), tc.header[1])
				}
				expectEOF(t, c)
				var he *HandshakeError
				if err := wait(t, errs, "OnError"); !errors.As(err, &he) || he.Status != tc.status {
					t.Fatalf("OnError(%v), want a HandshakeError with %d", err, tc.status)
				}
			})
		}
		t.Run("too slow", func(t *testing.T) {
			c := dial(t, addr)
			start := time.Now()
			c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n")) // and nothing more
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil || resp.StatusCode != 408 {
				t.Fatalf("got %v, %v; want 408", resp, err)
			}
			expectEOF(t, c)
			if el := time.Since(start); el < 300*time.Millisecond {
				t.Fatalf("closed after %v, before the timeout", el)
			}
			if err := wait(t, errs, "OnError"); !errors.Is(err, ErrHandshakeTimeout) {
				t.Fatalf("OnError(%v)", err)
			}
		})
		// After all that, a good client is served.
		good := dialWS(t, addr)
		good.send(text("still serving"))
		good.expectText("still serving")
	})
}

// Every framing rule of RFC 6455 section 5 fails the connection with the
// right close code.
func TestWebSocketProtocolErrors(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 126)
	cases := []struct {
		name   string
		frames [][]byte
		code   int
	}{
		{name: "unmasked client frame", code: 1002, frames: [][]byte{frame(true, 0, 1, false, []byte("hi"))}},
		{name: "control frame over 125 bytes", code: 1002, frames: [][]byte{frame(true, 0, 9, true, big)}},
		{name: "fragmented ping", code: 1002, frames: [][]byte{frame(false, 0, 9, true, []byte("p"))}},
		{name: "fragmented close", code: 1002, frames: [][]byte{frame(false, 0, 8, true, nil)}},
		{name: "RSV1 without extension", code: 1002, frames: [][]byte{frame(true, 4, 1, true, []byte("x"))}},
		{name: "RSV2", code: 1002, frames: [][]byte{frame(true, 2, 1, true, []byte("x"))}},
		{name: "RSV3", code: 1002, frames: [][]byte{frame(true, 1, 1, true, []byte("x"))}},
		{name: "RSV on a ping", code: 1002, frames: [][]byte{frame(true, 4, 9, true, nil)}},
		{name: "opcode 3", code: 1002, frames: [][]byte{frame(true, 0, 3, true, nil)}},
		{name: "opcode 7", code: 1002, frames: [][]byte{frame(true, 0, 7, true, nil)}},
		{name: "opcode 0xB", code: 1002, frames: [][]byte{frame(true, 0, 0xb, true, nil)}},
		{name: "opcode 0xF", code: 1002, frames: [][]byte{frame(true, 0, 0xf, true, nil)}},
		{name: "continuation without a message", code: 1002, frames: [][]byte{frame(true, 0, 0, true, []byte("x"))}},
		{name: "new message inside a fragmented one", code: 1002, frames: [][]byte{
			frame(false, 0, 1, true, []byte("a")), frame(true, 0, 1, true, []byte("b"))}},
		{name: "invalid UTF-8 in a text frame", code: 1007, frames: [][]byte{frame(true, 0, 1, true, []byte{'a', 0xff, 'b'})}},
		{name: "surrogate in UTF-8", code: 1007, frames: [][]byte{frame(true, 0, 1, true, []byte{0xed, 0xa0, 0x80})}},
		{name: "overlong UTF-8", code: 1007, frames: [][]byte{frame(true, 0, 1, true, []byte{0xc0, 0xaf})}},
		{name: "text ending inside a code point", code: 1007, frames: [][]byte{frame(true, 0, 1, true, []byte{'a', 0xe2, 0x82})}},
		{name: "invalid UTF-8 across fragments", code: 1007, frames: [][]byte{
			frame(false, 0, 1, true, []byte{'o', 'k', 0xe2}), frame(true, 0, 0, true, []byte{0x28, 0xa1})}},
		{name: "invalid UTF-8 in close reason", code: 1007, frames: [][]byte{
			frame(true, 0, 8, true, []byte{0x03, 0xe8, 0xff})}},
		{name: "close payload of 1 byte", code: 1002, frames: [][]byte{frame(true, 0, 8, true, []byte{0x03})}},
		{name: "close code 0", code: 1002, frames: [][]byte{closeFrame(0, "")}},
		{name: "close code 999", code: 1002, frames: [][]byte{closeFrame(999, "")}},
		{name: "close code 1004", code: 1002, frames: [][]byte{closeFrame(1004, "")}},
		{name: "close code 1005", code: 1002, frames: [][]byte{closeFrame(1005, "")}},
		{name: "close code 1006", code: 1002, frames: [][]byte{closeFrame(1006, "")}},
		{name: "close code 1015", code: 1002, frames: [][]byte{closeFrame(1015, "")}},
		{name: "close code 2000", code: 1002, frames: [][]byte{closeFrame(2000, "")}},
		{name: "close code 2999", code: 1002, frames: [][]byte{closeFrame(2999, "")}},
		{name: "close code 5000", code: 1002, frames: [][]byte{closeFrame(5000, "")}},
		{name: "close code 65535", code: 1002, frames: [][]byte{closeFrame(65535, "")}},
		{name: "message over MaxPackageSize", code: 1009, frames: [][]byte{frame(true, 0, 2, true, make([]byte, 70000))}},
		{name: "fragments over MaxPackageSize", code: 1009, frames: [][]byte{
			frame(false, 0, 2, true, make([]byte, 40000)), frame(false, 0, 0, true, make([]byte, 40000))}},
	}
	engines(t, func(t *testing.T, goroutines bool) {
		w := wsEchoWorker(goroutines)
		w.MaxPackageSize = 64 << 10
		errs := make(chan error, 64)
		w.OnError = func(c *Connection, err error) { errs <- err }
		addr := serve(t, w)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c := dialWS(t, addr)
				c.send(tc.frames...)
				c.expectClose(tc.code)
				var ce *CloseError
				if err := wait(t, errs, "OnError"); !errors.As(err, &ce) || ce.Code != tc.code {
					t.Fatalf("OnError(%v), want a CloseError with %d", err, tc.code)
				}
			})
		}
	})
}

// Invalid UTF-8 fails the connection as soon as it arrives, not when the
// message ends: the final fragment is never sent here.
func TestWebSocketUTF8FailsFast(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		addr := serve(t, wsEchoWorker(goroutines))
		t.Run("in an early fragment", func(t *testing.T) {
			c := dialWS(t, addr)
			c.send(frame(false, 0, 1, true, []byte("fine")), frame(false, 0, 0, true, []byte{0xf5}))
			c.expectClose(1007)
		})
		t.Run("inside a frame not yet complete", func(t *testing.T) {
			c := dialWS(t, addr)
			f := frame(true, 0, 1, true, append([]byte{0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80}, bytes.Repeat([]byte("a"), 200)...))
			c.send(f[:30]) // the invalid bytes, but not the rest of the frame
			c.expectClose(1007)
		})
	})
}

// Valid behaviour: ping/pong, unsolicited pongs, close codes answered,
// fragments reassembled with control frames in between, code points split
// across fragments, and data that arrives with the handshake.
func TestWebSocketValidTraffic(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := wsEchoWorker(goroutines)
		closes := make(chan [2]any, 10)
		w.OnWebSocketClose = func(c *Connection, code int, reason string) { closes <- [2]any{code, reason} }
		addr := serve(t, w)

		t.Run("ping answered with the same payload", func(t *testing.T) {
			c := dialWS(t, addr)
			c.send(frame(true, 0, 9, true, []byte("are you there")))
			f := c.next()
			if f.op != 10 || string(f.payload) != "are you there" {
				t.Fatalf("got op %d %q, want a pong with the payload", f.op, f.payload)
			}
			c.send(frame(true, 0, 9, true, nil))
			if f := c.next(); f.op != 10 || len(f.payload) != 0 {
				t.Fatalf("empty ping: got op %d %q", f.op, f.payload)
			}
		})
		t.Run("unsolicited pong ignored", func(t *testing.T) {
			c := dialWS(t, addr)
			c.send(frame(true, 0, 10, true, []byte("unasked")), text("after"))
			c.expectText("after")
		})
		t.Run("fragments with control frames in between", func(t *testing.T) {
			c := dialWS(t, addr)
			c.send(
				frame(false, 0, 1, true, []byte("Hel")),
				frame(true, 0, 9, true, []byte("mid")),
				frame(false, 0, 0, true, []byte("lo, ")),
				frame(true, 0, 10, true, nil),
				frame(true, 0, 0, true, []byte("world")),
			)
			if f := c.next(); f.op != 10 || string(f.payload) != "mid" {
				t.Fatalf("interleaved ping: got op %d %q", f.op, f.payload)
			}
			c.expectText("Hello, world")
		})
		t.Run("code point split across fragments", func(t *testing.T) {
			c := dialWS(t, addr)
			euro := []byte("€") // e2 82 ac
			c.send(frame(false, 0, 1, true, append([]byte("price "), euro[0])), frame(false, 0, 0, true, euro[1:2]), frame(true, 0, 0, true, euro[2:]))
			c.expectText("price €")
		})
		t.Run("empty messages", func(t *testing.T) {
			c := dialWS(t, addr)
			c.send(text(""))
			c.expectText("")
			c.send(frame(true, 0, 2, true, nil))
			if f := c.next(); f.op != 2 || len(f.payload) != 0 {
				t.Fatalf("empty binary: op %d %q", f.op, f.payload)
			}
		})
		t.Run("binary echoed as binary", func(t *testing.T) {
			c := dialWS(t, addr)
			c.send(frame(true, 0, 2, true, []byte{0, 1, 0xff}))
			if f := c.next(); f.op != 2 || !bytes.Equal(f.payload, []byte{0, 1, 0xff}) {
				t.Fatalf("got op %d %x", f.op, f.payload)
			}
		})
		t.Run("frames in the handshake's packet", func(t *testing.T) {
			c := dial(t, addr)
			c.Write(append([]byte(handshakeRequest("/")), text("early")...))
			r := bufio.NewReader(c)
			resp, err := http.ReadResponse(r, nil)
			if err != nil || resp.StatusCode != 101 {
				t.Fatalf("handshake: %v %v", resp, err)
			}
			ws := &rawWS{t: t, conn: c, r: r}
			ws.expectText("early")
		})
		for _, code := range []int{1000, 1001, 1003, 1007, 1011, 1012, 1014, 3000, 4999} {
			t.Run("close code "+strconv.Itoa(code)+" answered", func(t *testing.T) {
				c := dialWS(t, addr)
				c.send(closeFrame(code, "bye"))
				c.expectClose(code)
				if got := wait(t, closes, "OnWebSocketClose"); got != [2]any{code, "bye"} {
					t.Fatalf("OnWebSocketClose%v", got)
				}
			})
		}
		t.Run("close without a code answered", func(t *testing.T) {
			c := dialWS(t, addr)
			c.send(frame(true, 0, 8, true, nil))
			c.expectClose(1005)
			if got := wait(t, closes, "OnWebSocketClose"); got != [2]any{1005, ""} {
				t.Fatalf("OnWebSocketClose%v", got)
			}
		})
	})
}
