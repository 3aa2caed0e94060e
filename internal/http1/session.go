package http1

import (
	"bytes"
	"net/http"
	"strings"
	"time"

	"github.com/workerman-go/workerman/internal/proto"
	"github.com/workerman-go/workerman/protocol"
)

// The session: keep-alive, pipelining and file responses, and, once a
// request was upgraded, the WebSocket session for everything.

var _ proto.Session = (*Codec)(nil)

// Accepted starts the clock of the first request's head.
func (c *Codec) Accepted(proto.Conn) {
	if c.cfg.HeaderTimeout > 0 {
		c.headSince.Store(time.Now().UnixNano())
	}
}

// Handle gives a request to OnRequest (or its body to OnMessage).
func (c *Codec) Handle(conn proto.Conn, m protocol.Message) {
	if ws := c.ws.Load(); ws != nil {
		ws.Handle(conn, m)
		return
	}
	if req, ok := m.Value.(*protocol.Request); ok && c.cfg.OnRequest != nil {
		conn.Call("OnRequest", func() { c.cfg.OnRequest(conn, req) })
		return
	}
	conn.Deliver(m)
}

// Send answers the request being handled. While a file is being sent, what
// follows waits for it, with the state of the request it answers; a
// complete response ends the connection unless it is kept alive.
func (c *Codec) Send(conn proto.Conn, m protocol.Message, drop bool) error {
	if ws := c.ws.Load(); ws != nil {
		return ws.Send(conn, m, drop)
	}
	if fs := c.stream.Load(); fs != nil {
		m.Data = bytes.Clone(m.Data)
		fs.after = append(fs.after, deferred{m: m, st: c.state()})
		return nil
	}
	if r, ok := m.Value.(*protocol.Response); ok && r.File != "" {
		return c.startFile(conn, r)
	}
	if err := proto.WriteEncoded(conn, c, conn, m, drop); err != nil {
		return err
	}
	if ends(m) && !c.state().keepAlive {
		conn.Close(nil)
	}
	return nil
}

// ends reports whether m completes a response (and so may end the
// connection): a plain response or bytes, or the last chunk.
func ends(m protocol.Message) bool {
	switch v := m.Value.(type) {
	case *protocol.Response:
		return v.Header.Get("Transfer-Encoding") != "chunked" && !strings.HasPrefix(v.Header.Get("Content-Type"), "text/event-stream")
	case protocol.Chunk:
		return len(v) == 0
	case protocol.ServerSentEvent:
		return false
	}
	return true
}

// Closing says goodbye on an upgraded connection (a close frame).
func (c *Codec) Closing(conn proto.Conn, closeFrame []byte) {
	if ws := c.ws.Load(); ws != nil {
		ws.Closing(conn, closeFrame)
	}
}

// Fail answers a refused request with its status and closes.
func (c *Codec) Fail(conn proto.Conn, err error) {
	if ws := c.ws.Load(); ws != nil {
		ws.Fail(conn, err)
		return
	}
	conn.LockSend()
	defer conn.UnlockSend()
	if !conn.Closing() {
		conn.Write(errorResponse(err), false)
	}
	conn.Close(nil)
}

// EOF closes once the answers to what was received went out.
func (c *Codec) EOF(conn proto.Conn) {
	if ws := c.ws.Load(); ws != nil {
		ws.EOF(conn)
		return
	}
	conn.LockSend()
	conn.Close(nil)
	conn.UnlockSend()
}

// Drained sends more of a file response.
func (c *Codec) Drained(conn proto.Conn) {
	if c.stream.Load() == nil {
		return
	}
	conn.Later(func() {
		conn.LockSend()
		c.pump(conn)
		conn.UnlockSend()
	})
}

// Closed closes the file being sent and releases the WebSocket session's
// buffers.
func (c *Codec) Closed(conn proto.Conn) {
	if ws := c.framedWS.Load(); ws != nil {
		ws.Closed(conn) // its buffers, even if the upgrade was never decoded
	}
	conn.LockSend()
	if fs := c.stream.Swap(nil); fs != nil {
		fs.f.Close()
	}
	conn.UnlockSend()
}

// Due, Tick and Timeout: an HTTP connection's deadlines are the idle
// timeout and the head's (slowloris clients trickle a head a byte at a
// time, which the idle timeout never catches); an upgraded one has
// WebSocket's.
func (c *Codec) Due(conn proto.Conn, now int64) bool {
	if ws := c.ws.Load(); ws != nil {
		return ws.Due(conn, now)
	}
	return c.headLate(now)
}

func (c *Codec) headLate(now int64) bool {
	since := c.headSince.Load()
	return since != 0 && c.cfg.HeaderTimeout > 0 && now-since >= int64(c.cfg.HeaderTimeout)
}

// Tick answers a late head with 408, or runs the WebSocket deadlines of
// an upgraded connection.
func (c *Codec) Tick(conn proto.Conn, now int64) {
	if ws := c.ws.Load(); ws != nil {
		ws.Tick(conn, now)
		return
	}
	if !c.headLate(now) {
		return // the head completed meanwhile
	}
	err := badRequest(http.StatusRequestTimeout, "request head not received within %v", c.cfg.HeaderTimeout)
	conn.Report(err)
	c.Fail(conn, err)
}

// Timeout closes an idle connection (with 1001 once upgraded).
func (c *Codec) Timeout(conn proto.Conn) {
	if ws := c.ws.Load(); ws != nil {
		ws.Timeout(conn)
		return
	}
	conn.LockSend()
	conn.Close(nil)
	conn.UnlockSend()
}
