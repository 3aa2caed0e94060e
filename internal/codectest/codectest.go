// Package codectest feeds byte streams to codecs the way a connection
// does, for the tests and fuzzers of the protocol packages.
package codectest

import (
	"bytes"
	"sync"
	"time"

	"github.com/workerman-go/workerman/internal/proto"
	"github.com/workerman-go/workerman/protocol"
)

// Conn is a codec's connection with a MaxPackageSize of Max.
type Conn struct{ Max int }

// MaxPackageSize returns Max.
func (c Conn) MaxPackageSize() int { return c.Max }

// Feed frames stream with codec the way a connection does, feeding it in
// pieces of step bytes, and hands every decoded message to got (its Data
// only valid during the call). It stops at the first error.
func Feed(codec protocol.Codec, c protocol.Conn, stream []byte, step int, got func(protocol.Message)) error {
	var pending []byte
	for off := 0; off < len(stream); off += step {
		pending = append(pending, stream[off:min(off+step, len(stream))]...)
		for len(pending) > 0 {
			n, err := codec.Input(c, pending)
			if err != nil {
				return err
			}
			if n == 0 || n > len(pending) {
				break
			}
			if n > c.MaxPackageSize() {
				return protocol.ErrPackageTooLarge
			}
			m, err := codec.Decode(c, bytes.Clone(pending[:n]))
			if err != nil {
				return err
			}
			got(m)
			pending = pending[n:]
		}
	}
	return nil
}

// Abs is |x|, for fuzzers that turn any int into a step.
func Abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// SessionConn is a proto.Conn for session tests: it records what is
// written, reported and delivered, and runs callbacks at once.
type SessionConn struct {
	Conn
	mu        sync.Mutex
	Written   bytes.Buffer
	Reported  []error
	Delivered []protocol.Message
	Closed    bool
	CloseWith []byte
}

var _ proto.Conn = (*SessionConn)(nil)

func (c *SessionConn) MaxSendBufferSize() int { return 1 << 20 }
func (c *SessionConn) Queued() int            { return 0 }
func (c *SessionConn) LockSend()              { c.mu.Lock() }
func (c *SessionConn) UnlockSend()            { c.mu.Unlock() }
func (c *SessionConn) Closing() bool          { return c.Closed }
func (c *SessionConn) Write(b []byte, _ bool) error {
	c.Written.Write(b)
	return nil
}
func (c *SessionConn) Close(closeFrame []byte) {
	if !c.Closed {
		c.Closed, c.CloseWith = true, closeFrame
	}
}
func (c *SessionConn) Send(m protocol.Message) error {
	c.Written.Write(m.Data)
	return nil
}
func (c *SessionConn) Deliver(m protocol.Message)  { c.Delivered = append(c.Delivered, m) }
func (c *SessionConn) Call(_ string, fn func())    { fn() }
func (c *SessionConn) Report(err error)            { c.Reported = append(c.Reported, err) }
func (c *SessionConn) Later(fn func())             { fn() }
func (c *SessionConn) Stopping() bool              { return false }
func (c *SessionConn) IdleFor(int64) time.Duration { return 0 }

func (c *SessionConn) WebSocketEstablished(protocol.MessageType) {}
