package workerman

import (
	"bufio"
	"errors"
	"strconv"
	"testing"

	"github.com/workerman-go/workerman/protocol"
)

// SendMessages on an established WebSocket: every message arrives, in
// order, as a frame of its own, in the type asked (DataMessage: the
// connection's); text that is not UTF-8 refuses the whole batch; the
// stats count each message.
func TestSendMessagesWebSocket(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := wsEchoWorker(goroutines)
		joined := make(chan *Connection, 2)
		w.OnWebSocketConnected = func(c *Connection, _ *WebSocketRequest) { joined <- c }
		errs := make(chan error, 4)
		w.OnError = func(_ *Connection, err error) { errs <- err }
		addr := serve(t, w)
		ws := dialWS(t, addr)
		c := wait(t, joined, "the handshake")

		var msgs [][]byte
		for i := range 100 {
			msgs = append(msgs, []byte("message "+strconv.Itoa(i)))
		}
		sent := w.Stats().MessagesSent
		if err := c.SendMessages(protocol.TextMessage, msgs); err != nil {
			t.Fatal(err)
		}
		if got := w.Stats().MessagesSent - sent; got != 100 {
			t.Fatalf("MessagesSent grew by %d for a batch of 100", got)
		}
		for i := range msgs {
			ws.expectText("message " + strconv.Itoa(i))
		}

		bad := [][]byte{[]byte("fine"), {0xff, 0xfe}}
		if err := c.SendMessages(protocol.TextMessage, bad); !errors.Is(err, ErrInvalidUTF8) {
			t.Fatalf("a batch with invalid UTF-8: %v", err)
		}
		if err := wait(t, errs, "OnError"); !errors.Is(err, ErrInvalidUTF8) {
			t.Fatalf("OnError: %v", err)
		}
		if err := c.SendMessages(protocol.BinaryMessage, [][]byte{{0xff, 0xfe}, {1}}); err != nil {
			t.Fatal(err)
		}
		if f := ws.next(); f.op != 2 || string(f.payload) != "\xff\xfe" {
			t.Fatalf("first binary: op %d %q (the refused text batch sent something?)", f.op, f.payload)
		}
		if f := ws.next(); f.op != 2 || string(f.payload) != "\x01" {
			t.Fatalf("second binary: op %d %q", f.op, f.payload)
		}
		c.SetWebSocketType(protocol.BinaryMessage)
		if err := c.SendMessages(protocol.DataMessage, [][]byte{[]byte("as binary")}); err != nil {
			t.Fatal(err)
		}
		if f := ws.next(); f.op != 2 || string(f.payload) != "as binary" {
			t.Fatalf("DataMessage on a binary connection: op %d %q", f.op, f.payload)
		}
		if err := c.SendMessages(protocol.TextMessage, nil); err != nil {
			t.Fatalf("an empty batch: %v", err)
		}
		c.Close()
		if err := c.SendMessages(protocol.TextMessage, msgs); !errors.Is(err, ErrClosed) {
			t.Fatalf("after Close: %v", err)
		}
	})
}

// On other codecs the messages go one by one, each encoded by the codec.
func TestSendMessagesOtherCodec(t *testing.T) {
	w := NewWorker("text://127.0.0.1:0")
	joined := make(chan *Connection, 1)
	w.OnConnect = func(c *Connection) { joined <- c }
	addr := serve(t, w)
	conn := dial(t, addr)
	c := wait(t, joined, "OnConnect")
	if err := c.SendMessages(protocol.DataMessage, [][]byte{[]byte("one"), []byte("two")}); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	for _, want := range []string{"one\n", "two\n"} {
		if line, err := r.ReadString('\n'); err != nil || line != want {
			t.Fatalf("line %q (%v), want %q", line, err, want)
		}
	}
}
