// Package protocol holds the codecs that turn a byte stream into messages and
// back, following PHP Workerman's protocol contract:
//
//   - Input(buf) returns the length of the first packet in buf as soon as it
//     can tell (it may be larger than len(buf): the connection then waits for
//     that many bytes), 0 when it cannot tell yet, or an error for bytes that
//     can never form a valid packet;
//   - Decode(packet) turns exactly one packet into a message;
//   - Encode(message) turns an outgoing message into bytes.
//
// Codecs are registered under a URI scheme ("text" for text://…) with
// Register, as Workerman looks up Protocols\Text for text://. A codec value
// belongs to one connection; stateless codecs may share one value.
//
// # Goroutines
//
// The three methods of a Codec run on three different goroutines, never
// concurrently with themselves for one connection:
//
//   - Input runs on the connection's event loop. It must be fast, must not
//     block and must not keep buf. It may keep per-connection framing state.
//   - Decode runs on the goroutine that runs the connection's callbacks, in
//     packet order. It may block briefly and may keep per-connection state
//     (fragment reassembly, decompression).
//   - Encode runs on the goroutine that calls Send, under the connection's
//     send lock, so encoding and writing happen in one order.
package protocol

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// MessageType tells what kind of message a packet carried. The zero value,
// DataMessage, is an application message of a protocol without message types.
type MessageType uint8

const (
	// DataMessage is an application message of a protocol without types
	// (tcp, text, frame, custom codecs).
	DataMessage MessageType = iota
	// TextMessage is a WebSocket text message (valid UTF-8).
	TextMessage
	// BinaryMessage is a WebSocket binary message.
	BinaryMessage
	// PingMessage, PongMessage and CloseMessage are WebSocket control
	// frames; Data holds the payload (for Close: the 2-byte code and the
	// reason).
	PingMessage
	PongMessage  // see PingMessage
	CloseMessage // see PingMessage
	// HandshakeMessage is an opening handshake; Value holds its parsed form.
	HandshakeMessage
	// NoMessage means the packet carried nothing to deliver.
	NoMessage
)

var typeNames = [...]string{"data", "text", "binary", "ping", "pong", "close", "handshake", "none"}

// String names the type ("text", "binary", ...).
func (t MessageType) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("MessageType(%d)", t)
}

// Message is one decoded or outgoing message.
type Message struct {
	Type MessageType
	// Data is the payload. A decoded payload is only valid until the callback
	// that receives it returns.
	Data []byte
	// Value carries a decoded object for protocols whose messages are not
	// plain bytes (an HTTP request, a WebSocket handshake).
	Value any
}

// Conn is what a codec sees of its connection.
type Conn interface {
	// MaxPackageSize is the largest packet (and, for codecs that reassemble
	// or decompress, the largest message) the connection accepts.
	MaxPackageSize() int
}

// Codec frames, decodes and encodes the messages of one connection.
type Codec interface {
	// Input returns the length of the first packet in buf: n > 0 as soon as
	// it is known (n may exceed len(buf)), 0 when more bytes are needed to
	// tell, or an error when buf can never start a valid packet. A packet
	// longer than c.MaxPackageSize() is rejected by the caller.
	Input(c Conn, buf []byte) (int, error)
	// Decode turns one packet, exactly as long as Input said, into a
	// message. The packet is owned by the caller and valid until the message
	// has been handled; Decode may modify it in place (unmasking).
	Decode(c Conn, packet []byte) (Message, error)
	// Encode appends the wire form of m to dst and returns it. It may instead
	// return m.Data itself when no framing is needed. An empty result sends
	// nothing.
	Encode(c Conn, dst []byte, m Message) ([]byte, error)
}

// ErrorResponder is implemented by codecs that answer bad input before the
// connection closes (an error line, a status): the returned bytes are sent
// as they are, then the connection closes. (The library's WebSocket and
// HTTP protocols answer with their own close frame or status.)
type ErrorResponder interface {
	ErrorResponse(err error) []byte
}

// Protocol creates the codec of each new connection.
type Protocol interface {
	NewCodec() Codec
}

// ProtocolFunc adapts a function to Protocol.
type ProtocolFunc func() Codec

// NewCodec calls f.
func (f ProtocolFunc) NewCodec() Codec { return f() }

// Shared returns a Protocol whose connections all use c. Use it for codecs
// without per-connection state.
func Shared(c Codec) Protocol { return ProtocolFunc(func() Codec { return c }) }

// ErrPackageTooLarge is returned for a packet (or a reassembled message)
// longer than the connection's MaxPackageSize.
var ErrPackageTooLarge = errors.New("workerman: package exceeds MaxPackageSize")

// ErrBadPacket is wrapped by codecs for bytes that can never form a packet.
var ErrBadPacket = errors.New("workerman: bad packet")

// ErrSendBufferFull is returned by a send that found MaxSendBufferSize
// bytes already queued: the data is dropped (Workerman's "send buffer full
// and drop package").
var ErrSendBufferFull = errors.New("workerman: send buffer full and drop package")

// ErrHandshakeTimeout: a WebSocket opening handshake did not complete in
// time.
var ErrHandshakeTimeout = errors.New("workerman: websocket handshake timed out")

// ErrHeartbeatTimeout: a WebSocket peer stayed silent for
// PingNotResponseLimit ping intervals.
var ErrHeartbeatTimeout = errors.New("workerman: websocket peer did not answer heartbeats")

// ErrInvalidUTF8 is returned by the WebSocket codecs' Encode for a text
// message whose bytes are not valid UTF-8: RFC 6455 allows only UTF-8 in
// text frames, and a strict peer (a browser, Node's ws) drops the
// connection on one. Nothing is sent; send such bytes as a binary message.
var ErrInvalidUTF8 = errors.New("workerman: text message is not valid UTF-8 (send it as a binary message)")

var (
	regMu    sync.RWMutex
	registry = map[string]Protocol{}
)

// Register makes p available under scheme, so that a Worker listening on
// scheme://host:port uses it. Registering an existing scheme replaces it,
// which lets an application swap a built-in codec. Safe for concurrent use.
func Register(scheme string, p Protocol) {
	if scheme == "" || p == nil {
		panic("protocol: Register needs a scheme and a protocol")
	}
	regMu.Lock()
	registry[scheme] = p
	regMu.Unlock()
}

// Lookup returns the protocol registered under scheme.
func Lookup(scheme string) (Protocol, bool) {
	regMu.RLock()
	p, ok := registry[scheme]
	regMu.RUnlock()
	return p, ok
}

// Schemes lists the registered schemes, sorted.
func Schemes() []string {
	regMu.RLock()
	s := make([]string, 0, len(registry))
	for k := range registry {
		s = append(s, k)
	}
	regMu.RUnlock()
	sort.Strings(s)
	return s
}

func init() {
	Register("tcp", Shared(Raw{}))
	Register("text", Shared(Text{}))
	Register("frame", Shared(Frame{}))
}
