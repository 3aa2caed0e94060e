package workerman

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/workerman-go/workerman/protocol"
)

// AsyncUDPConnection sends datagrams to one address and receives the
// datagrams it sends back: Workerman's AsyncUdpConnection. The URI is
// udp://host:port (each datagram is a message) or a codec's scheme such as
// text://host:port (each datagram carries packets of that codec).
//
// Unlike AsyncConnection it holds a goroutine while connected: the one that
// reads, and runs OnMessage. Datagrams may be lost or reordered; nothing is
// queued and nothing is resent.
type AsyncUDPConnection struct {
	// OnConnect runs once the socket is ready, before Connect returns.
	OnConnect func(a *AsyncUDPConnection)
	// OnMessage runs on the reading goroutine for each message received,
	// one at a time; data is valid until it returns. While it blocks,
	// datagrams wait in the kernel's buffer (and beyond it are dropped).
	OnMessage func(a *AsyncUDPConnection, data []byte)
	// OnError reports a datagram that the codec rejects, a failed send and
	// a failed read.
	OnError func(a *AsyncUDPConnection, err error)
	// OnClose runs once after Close (or StopAll).
	OnClose func(a *AsyncUDPConnection)
	// MaxPackageSize bounds a packet of the codec (default
	// DefaultMaxPackageSize); a datagram is at most 64 KiB anyway.
	MaxPackageSize int

	uri string

	mu     sync.Mutex
	conn   net.Conn
	enc    protocol.Codec
	closed bool
	done   chan struct{} // closed when the reader has finished
}

// NewAsyncUDPConnection returns a client for uri; Connect (or the first
// Send) opens it.
func NewAsyncUDPConnection(uri string) *AsyncUDPConnection {
	return &AsyncUDPConnection{uri: uri}
}

// ErrUnsupportedOverUDP is returned by Connect for a codec that needs a
// stream (websocket, http) or a scheme that names one.
var ErrUnsupportedOverUDP = errors.New("workerman: this protocol needs a stream, not udp")

// Connect opens the socket and starts reading. OnConnect runs before it
// returns. Connecting again after Close is an error.
func (a *AsyncUDPConnection) Connect() error {
	a.mu.Lock()
	err := a.connectLocked()
	a.mu.Unlock()
	if err == nil && a.OnConnect != nil {
		a.OnConnect(a)
	}
	return err
}

// connectLocked opens the socket; the caller runs OnConnect after
// unlocking, so that OnConnect may Send.
func (a *AsyncUDPConnection) connectLocked() error {
	switch {
	case a.closed:
		return ErrClosed
	case a.conn != nil:
		return ErrAlreadyConnected
	}
	e, err := parseURI(a.uri, sideUDP, "", "")
	if err != nil {
		return err
	}
	proto, _ := protocol.Lookup(e.protocol)
	conn, err := net.Dial("udp", e.address)
	if err != nil {
		return fmt.Errorf("workerman: connect %s: %w", a.uri, err)
	}
	a.conn, a.enc, a.done = conn, proto.NewCodec(), make(chan struct{})
	trackAsync(a, true)
	go a.read(conn, proto.NewCodec(), a.done)
	return nil
}

// Send encodes data with the codec and sends it as one datagram,
// connecting first if Connect was not called (as Workerman does).
func (a *AsyncUDPConnection) Send(data []byte) error {
	a.mu.Lock()
	connected := false
	if a.conn == nil {
		if err := a.connectLocked(); err != nil {
			a.mu.Unlock()
			return err
		}
		connected = true
	}
	out, err := a.enc.Encode(udpCodecConn{a}, nil, protocol.Message{Data: data})
	conn := a.conn
	a.mu.Unlock()
	if connected && a.OnConnect != nil {
		a.OnConnect(a)
	}
	if err != nil {
		return err
	}
	if len(out) == 0 {
		return nil
	}
	if _, err := conn.Write(out); err != nil {
		if errors.Is(err, net.ErrClosed) {
			return ErrClosed
		}
		err = fmt.Errorf("workerman: udp send to %s: %w", a.uri, err)
		a.report(err)
		return err
	}
	return nil
}

// SendString is Send for a string.
func (a *AsyncUDPConnection) SendString(s string) error { return a.Send([]byte(s)) }

// Close closes the socket and waits for OnMessage to return; OnClose
// follows once. Calling it again does nothing.
func (a *AsyncUDPConnection) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	conn, done := a.conn, a.done
	a.mu.Unlock()
	if conn != nil {
		conn.Close()
		<-done
		trackAsync(a, false)
	}
	if a.OnClose != nil {
		a.OnClose(a)
	}
	return nil
}

func (a *AsyncUDPConnection) stopAll() { a.Close() }

// LocalAddr and RemoteAddr are nil before Connect.
func (a *AsyncUDPConnection) LocalAddr() net.Addr {
	if c := a.socket(); c != nil {
		return c.LocalAddr()
	}
	return nil
}

// RemoteAddr is the address datagrams are sent to.
func (a *AsyncUDPConnection) RemoteAddr() net.Addr {
	if c := a.socket(); c != nil {
		return c.RemoteAddr()
	}
	return nil
}

func (a *AsyncUDPConnection) socket() net.Conn {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.conn
}

func (a *AsyncUDPConnection) maxPackage() int { return cmpOr(a.MaxPackageSize, DefaultMaxPackageSize) }

func (a *AsyncUDPConnection) report(err error) {
	if a.OnError != nil {
		a.OnError(a, err)
	}
}

func (a *AsyncUDPConnection) read(conn net.Conn, dec protocol.Codec, done chan struct{}) {
	defer close(done)
	buf := make([]byte, 64<<10)
	pc := udpCodecConn{a}
	for {
		n, err := conn.Read(buf)
		if err != nil {
			a.mu.Lock()
			closed := a.closed
			a.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			// Linux reports an ICMP "port unreachable" for an earlier
			// datagram here; the socket stays usable.
			a.report(fmt.Errorf("workerman: udp read from %s: %w", a.uri, err))
			continue
		}
		// A packet cut short at the end of the datagram is dropped, as
		// Workerman does.
		var decodeErr error
		_, _, err = framePackets(dec, pc, buf[:n], a.maxPackage(), func(packet []byte) bool {
			m, err := dec.Decode(pc, packet)
			if err != nil {
				decodeErr = err
				return false
			}
			switch m.Type {
			case protocol.DataMessage, protocol.TextMessage, protocol.BinaryMessage:
				if a.OnMessage != nil {
					a.OnMessage(a, m.Data)
				}
			}
			return true
		})
		if err = cmp.Or(err, decodeErr); err != nil {
			a.report(err)
		}
	}
}

// udpCodecConn gives the codec the client's MaxPackageSize.
type udpCodecConn struct{ a *AsyncUDPConnection }

func (c udpCodecConn) MaxPackageSize() int { return c.a.maxPackage() }
