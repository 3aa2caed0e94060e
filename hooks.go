package workerman

import (
	"time"

	"github.com/workerman-go/workerman/protocol"
)

// protoHooks is where a protocol with a life of its own (WebSocket's
// handshake, control frames and closing handshake; HTTP) plugs into the
// connection. Plain codecs (tcp, text, frame, custom ones) use plainHooks.
type protoHooks interface {
	// accepted runs on the loop when the connection is created.
	accepted(c *Connection)
	// onMessage delivers an application message (callback goroutine).
	onMessage(c *Connection, m protocol.Message)
	// onControl handles any other decoded message type.
	onControl(c *Connection, m protocol.Message)
	// onEOF: the peer closed its side and every message before it ran.
	onEOF(c *Connection)
	// onClosed runs before OnClose.
	onClosed(c *Connection, err error)
	// send writes an outgoing message (caller holds sendMu); drop false
	// queues past MaxSendBufferSize instead of dropping (Pipe).
	send(c *Connection, m protocol.Message, raw, drop bool) error
	// closing runs in the close sequence before the socket is closed
	// (holds sendMu); closeFrame is the WebSocket close payload asked for,
	// nil for the default.
	closing(c *Connection, closeFrame []byte)
	// period is the shortest timeout the hooks need checked, or 0.
	period() time.Duration
	// due reports (cheaply, under a lock) whether tick has work for c.
	due(c *Connection, now int64) bool
	// tick checks the protocol's timeouts (ticker goroutine).
	tick(c *Connection, now int64)
	// timeout ends a connection that timed out.
	timeout(c *Connection, err error)
}

type plainHooks struct{}

func (plainHooks) accepted(*Connection) {}

func (plainHooks) onMessage(c *Connection, m protocol.Message) {
	if f := c.ep.onMessage; f != nil {
		c.call("OnMessage", func() { f(c, m.Data) })
	}
}

func (plainHooks) onControl(*Connection, protocol.Message) {}

func (plainHooks) onEOF(c *Connection) { c.Close() }

func (plainHooks) onClosed(*Connection, error) {}

func (plainHooks) send(c *Connection, m protocol.Message, raw, drop bool) error {
	return c.writeLimited(m, raw, drop)
}

func (plainHooks) closing(*Connection, []byte) {}

func (plainHooks) period() time.Duration { return 0 }

func (plainHooks) due(*Connection, int64) bool { return false }

func (plainHooks) tick(*Connection, int64) {}

func (plainHooks) timeout(c *Connection, _ error) { c.Close() }
