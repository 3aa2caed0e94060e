package workerman

import (
	"errors"
	"testing"

	"github.com/workerman-go/workerman/protocol"
)

var notUTF8 = []byte{0xff, 0xfe, 0x00, 0x80}

// A text frame is always valid UTF-8: a text send of other bytes sends
// nothing, returns ErrInvalidUTF8 and reports it through OnError; the
// connection goes on.
func TestWebSocketTextSendsAreUTF8(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := wsEchoWorker(goroutines)
		errs := make(chan error, 10)
		sendErrs := make(chan error, 10)
		w.OnError = func(c *Connection, err error) { errs <- err }
		w.OnConnect = func(c *Connection) {
			// Before the handshake: held until the 101, checked now.
			sendErrs <- c.Send(notUTF8)
			c.Send([]byte("early"))
		}
		w.OnMessage = func(c *Connection, data []byte) {
			switch string(data) {
			case "text":
				sendErrs <- c.Send(notUTF8)
				sendErrs <- c.SendMessage(protocol.TextMessage, notUTF8)
				c.Send([]byte("after"))
			case "binary":
				sendErrs <- c.SendMessage(protocol.BinaryMessage, notUTF8)
			case "typed":
				c.SetWebSocketType(protocol.BinaryMessage)
				sendErrs <- c.Send(notUTF8)
			default:
				c.SendMessage(c.MessageType(), data)
			}
		}
		addr := serve(t, w)
		expectRefused := func(n int) {
			t.Helper()
			for range n {
				if err := wait(t, sendErrs, "Send's result"); !errors.Is(err, ErrInvalidUTF8) {
					t.Fatalf("Send of invalid UTF-8 as text: %v, want ErrInvalidUTF8", err)
				}
				if err := wait(t, errs, "OnError"); !errors.Is(err, ErrInvalidUTF8) {
					t.Fatalf("OnError(%v), want ErrInvalidUTF8", err)
				}
			}
		}
		c := dialWS(t, addr)
		expectRefused(1)
		c.expectText("early")
		c.send(text("text"))
		expectRefused(2)
		c.expectText("after") // nothing was sent in between
		c.send(text("binary"))
		if err := wait(t, sendErrs, "Send's result"); err != nil {
			t.Fatalf("binary send: %v", err)
		}
		expectBinary(t, c.next(), notUTF8)
		c.send(frame(true, 0, 2, true, notUTF8)) // echoed as it came: binary
		expectBinary(t, c.next(), notUTF8)
		c.send(text("typed"))
		if err := wait(t, sendErrs, "Send's result"); err != nil {
			t.Fatalf("send on a binary-typed connection: %v", err)
		}
		expectBinary(t, c.next(), notUTF8)
		select {
		case err := <-errs:
			t.Fatalf("unexpected OnError(%v)", err)
		default:
		}
	})
}

// Broadcast of bytes that are not UTF-8 on a text worker reaches nobody;
// on a BinaryType worker it reaches everyone.
func TestWebSocketBroadcastText(t *testing.T) {
	for _, binary := range []bool{false, true} {
		w := wsEchoWorker(false)
		w.WebSocket.BinaryType = binary
		connected := make(chan struct{}, 1)
		w.OnWebSocketConnected = func(*Connection, *WebSocketRequest) { connected <- struct{}{} }
		c := dialWS(t, serve(t, w))
		wait(t, connected, "OnWebSocketConnected")
		n := w.Broadcast(notUTF8)
		if binary {
			if n != 1 {
				t.Fatalf("binary worker: Broadcast reached %d", n)
			}
			expectBinary(t, c.next(), notUTF8)
			continue
		}
		if n != 0 {
			t.Fatalf("text worker: Broadcast of invalid UTF-8 reached %d, want 0", n)
		}
		if n := w.Broadcast([]byte("valid")); n != 1 {
			t.Fatalf("Broadcast reached %d", n)
		}
		c.expectText("valid")
	}
}

// The client refuses the same, connected or not.
func TestAsyncConnectionTextSendsAreUTF8(t *testing.T) {
	addr := serve(t, wsEchoWorker(false))
	c := newClient(t, "ws://"+addr+"/")
	if err := c.Send(notUTF8); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("Send before Connect: %v, want ErrInvalidUTF8", err)
	}
	if err := wait(t, c.errs, "OnError"); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("OnError(%v)", err)
	}
	c.connect(t)
	wait(t, c.wsConn, "handshake")
	if err := c.Send(notUTF8); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("Send: %v, want ErrInvalidUTF8", err)
	}
	if err := wait(t, c.errs, "OnError"); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("OnError(%v)", err)
	}
	if err := c.SendMessage(protocol.BinaryMessage, notUTF8); err != nil {
		t.Fatal(err)
	}
	if got := wait(t, c.msgs, "echo"); got != string(notUTF8) {
		t.Fatalf("echo %q", got)
	}
	if typ := <-c.types; typ != protocol.BinaryMessage {
		t.Fatalf("echo type %v", typ)
	}
	c.SendString("text")
	c.expect(t, "text")
}
