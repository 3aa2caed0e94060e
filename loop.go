package workerman

import (
	"github.com/workerman-go/workerman/internal/bufpool"
	"github.com/workerman-go/workerman/internal/engine"
	"github.com/workerman-go/workerman/protocol"
)

// loopSide is a Connection as the engine sees it: the engine.Handler whose
// methods the event loop (or a connection's reader goroutine) calls. It is
// a separate, unexported type so that these methods are not part of
// Connection's API: called by a user they would race the loop's framing
// state, or run OnClose without closing the socket.
type loopSide Connection

var _ engine.Handler = (*loopSide)(nil)

// handler is c as the engine's handler.
func (c *Connection) handler() *loopSide { return (*loopSide)(c) }

// OnRead frames packets on the event loop and queues them for the callbacks.
func (l *loopSide) OnRead(in []byte) (consumed, need int) {
	c := (*Connection)(l)
	if c.badInput {
		return len(in), 0
	}
	if c.ep.r.tick > 0 {
		c.lastRead.Store(c.ep.r.now.Load())
	}
	max := c.MaxPackageSize()
	var cc protocol.Conn = c
	if c.session() != nil {
		cc = c.side()
	}
	for consumed < len(in) {
		if c.recvPause.Load() {
			return consumed, 0
		}
		rest := in[consumed:]
		n, err := c.codec.Input(cc, rest)
		if err == nil && n > max {
			err = errTooLarge(n, max)
		}
		if err == nil && n == 0 && len(rest) >= max {
			err = errTooLarge(len(rest), max)
		}
		if err != nil {
			c.badInput = true
			j := newJob(jobFail)
			j.err = err
			c.enqueue(j)
			return len(in), 0
		}
		if n == 0 || n > len(rest) {
			return consumed, n
		}
		j := newJob(jobMessage)
		j.buf = bufpool.Get(n)
		copy(*j.buf, rest[:n])
		consumed += n
		c.enqueue(j)
		if c.backpressure() {
			return consumed, 0
		}
	}
	return consumed, 0
}

// backpressure pauses reading while too much input waits for callbacks.
func (c *Connection) backpressure() bool {
	c.mu.Lock()
	pause := !c.bpPaused && c.pendingIn > maxPendingInput && !c.closeQueued
	if pause {
		c.bpPaused = true
	}
	paused := c.bpPaused
	c.mu.Unlock()
	if pause {
		c.tc.PauseRead(engineBackpressure)
	}
	return paused
}

// OnEOF: the peer will send nothing more.
func (l *loopSide) OnEOF() {
	(*Connection)(l).enqueue(newJob(jobEOF))
}

// OnDrain: everything queued was written.
func (l *loopSide) OnDrain() {
	c := (*Connection)(l)
	if s := c.session(); s != nil {
		s.Drained(c.side())
	}
	c.markDrained()
}

// OnClose: the socket is closed.
func (l *loopSide) OnClose(err error) {
	j := newJob(jobClose)
	j.err = err
	(*Connection)(l).enqueue(j)
}
