package workerman

import (
	"errors"
	"fmt"
	"net"

	"github.com/workerman-go/workerman/protocol"
)

// Errors reported through OnError and returned by methods. Compare with
// errors.Is: the values returned are often wrapped with more context.
var (
	// ErrSendBufferFull: Send dropped the data because MaxSendBufferSize
	// bytes were already queued (Workerman's "send buffer full and drop
	// package", SEND_FAIL).
	ErrSendBufferFull = protocol.ErrSendBufferFull

	// ErrClosed is returned by Send after Close or Destroy, or once the peer
	// is gone. It wraps net.ErrClosed.
	ErrClosed = fmt.Errorf("workerman: connection closed: %w", net.ErrClosed)

	// ErrPackageTooLarge: a packet (or reassembled message) exceeded
	// MaxPackageSize; the connection is closed.
	ErrPackageTooLarge = protocol.ErrPackageTooLarge

	// ErrBadPacket: the codec rejected the bytes received; the connection
	// is closed.
	ErrBadPacket = protocol.ErrBadPacket

	// ErrInvalidUTF8: a text WebSocket message was not valid UTF-8. Send
	// returns it and reports it through OnError; nothing is sent (send the
	// bytes as protocol.BinaryMessage instead).
	ErrInvalidUTF8 = protocol.ErrInvalidUTF8

	// ErrIdleTimeout: nothing was received for IdleTimeout; the connection
	// is closed.
	ErrIdleTimeout = errors.New("workerman: idle timeout")

	// ErrConnectFailed: an AsyncConnection could not connect (Workerman's
	// CONNECT_FAIL).
	ErrConnectFailed = errors.New("workerman: connect failed")

	// ErrWorkerStarted is returned by Listen for a worker that already runs.
	ErrWorkerStarted = errors.New("workerman: worker already started")

	// ErrWorkerClosed is returned by Listen after the worker was stopped.
	ErrWorkerClosed = errors.New("workerman: worker closed")
)

// PanicError is reported through OnError when a callback panics. The
// connection whose callback panicked is destroyed; every other connection
// keeps being served.
type PanicError struct {
	Callback string // "OnMessage", "OnConnect", ...
	Value    any    // what was passed to panic
	Stack    []byte
}

// Error describes the panic.
func (e *PanicError) Error() string {
	return fmt.Sprintf("workerman: panic in %s: %v", e.Callback, e.Value)
}

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}
