package websocket

import (
	"bytes"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/codectest"
	"github.com/workerman-go/workerman/protocol"
)

// lockHook runs onLock once, just before the send lock is taken: the
// moment between the ticker's look at the handshake and its lock.
type lockHook struct {
	codectest.SessionConn
	onLock func()
}

func (c *lockHook) LockSend() {
	if f := c.onLock; f != nil {
		c.onLock = nil
		f()
	}
	c.SessionConn.LockSend()
}

// A handshake that completes while the ticker finds its deadline passed
// is not answered with a 408 after the 101.
func TestHandshakeTimeoutRacingTheHandshake(t *testing.T) {
	codec := Server(Config{HandshakeTimeout: time.Millisecond}).NewCodec().(*Codec)
	conn := &lockHook{SessionConn: codectest.SessionConn{Conn: codectest.Conn{Max: 1 << 20}}}
	codec.Accepted(conn)
	req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	var hs protocol.Message
	if err := codectest.Feed(codec, conn, []byte(req), len(req), func(m protocol.Message) { hs = m }); err != nil {
		t.Fatal(err)
	}
	conn.onLock = func() { codec.Handle(conn, hs) }
	now := time.Now().Add(time.Second).UnixNano()
	if !codec.Due(conn, now) {
		t.Fatal("the handshake's deadline is not due")
	}
	codec.Tick(conn, now)
	out := conn.Written.Bytes()
	if !bytes.HasPrefix(out, []byte("HTTP/1.1 101 ")) || bytes.Contains(out, []byte("408")) || conn.Closed {
		t.Fatalf("wire %q, closed %v: want the 101 alone", out, conn.Closed)
	}
}
