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
	if c.recvPause.Load() {
		return 0, 0
	}
	var cc protocol.Conn = c
	if c.session() != nil {
		cc = c.side()
	}
	consumed, need, err := framePackets(c.codec, cc, in, c.MaxPackageSize(), func(packet []byte) bool {
		j := newJob(jobMessage)
		j.buf = bufpool.Get(len(packet))
		copy(*j.buf, packet)
		c.enqueueOnLoop(j)
		return !c.backpressure() && !c.recvPause.Load()
	})
	if err != nil {
		c.badInput = true
		c.countError(err, true)
		j := newJob(jobFail)
		j.err = err
		c.enqueueOnLoop(j)
		return len(in), 0
	}
	return consumed, need
}

// framePackets is the one packet-framing loop, for stream and datagram
// connections alike. It frames the packets at the start of buf with codec
// and hands each to emit (the packet is only valid during the call), which
// returns false to stop. It returns the bytes consumed; the length of the
// next packet, counted from the first byte not consumed, when the codec
// already knows it (0 otherwise); and, for bad input, the codec's error or
// a size error for a packet over max.
func framePackets(codec protocol.Codec, cc protocol.Conn, buf []byte, max int, emit func(packet []byte) bool) (consumed, need int, err error) {
	for consumed < len(buf) {
		rest := buf[consumed:]
		n, err := codec.Input(cc, rest)
		if err == nil && n > max {
			err = errTooLarge(n, max)
		}
		if err == nil && n == 0 && len(rest) >= max {
			err = errTooLarge(len(rest), max)
		}
		if err != nil {
			return consumed, 0, err
		}
		if n == 0 || n > len(rest) {
			return consumed, n, nil
		}
		consumed += n
		if !emit(rest[:n]) {
			break
		}
	}
	return consumed, 0, nil
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
	(*Connection)(l).enqueueOnLoop(newJob(jobEOF))
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
