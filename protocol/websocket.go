package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"unicode/utf8"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"

	"github.com/workerman-go/workerman/internal/bufpool"
)

// WebSocketConfig configures the websocket:// server codec.
type WebSocketConfig struct {
	// MaxHandshakeSize bounds the opening handshake (default 16 KiB); a
	// larger one is answered with 431 and closed.
	MaxHandshakeSize int
	// Compression negotiates permessage-deflate (RFC 7692) when the client
	// offers it. Both directions run without context takeover, so an idle
	// connection keeps no compressor state.
	Compression bool
	// CompressionThreshold: shorter messages are sent uncompressed
	// (default 128 bytes).
	CompressionThreshold int
	// OnRequest runs on the connection's callback goroutine with the parsed
	// handshake, before the 101 response. A non-nil error rejects the
	// handshake: a *HandshakeError with its status, any other error with 403.
	OnRequest func(c Conn, r *WebSocketRequest) error
}

// WebSocket returns the websocket:// server protocol.
func WebSocket(cfg WebSocketConfig) Protocol {
	if cfg.MaxHandshakeSize <= 0 {
		cfg.MaxHandshakeSize = 16 << 10
	}
	if cfg.CompressionThreshold <= 0 {
		cfg.CompressionThreshold = 128
	}
	p := &cfg
	return ProtocolFunc(func() Codec { return &WebSocketCodec{cfg: p} })
}

func init() {
	Register("websocket", WebSocket(WebSocketConfig{Compression: true}))
}

// WebSocketCodec is the codec of one server-side WebSocket connection: it
// answers the opening handshake, frames and validates what the client sends
// (RFC 6455, strictly), reassembles fragmented messages, inflates compressed
// ones and frames what the server sends.
type WebSocketCodec struct {
	cfg  *WebSocketConfig
	ccfg *WebSocketClientConfig // client side; nil on the server
	key  string                 // client side: Sec-WebSocket-Key

	// Callback-goroutine-owned: Decode.
	frag    *[]byte // reassembly buffer
	held    *[]byte // buffer of the last message, released at the next Decode
	request *WebSocketRequest

	// Send-lock-owned.
	pending *[]byte // frames sent before the handshake completed

	// Owned by the connection that uses the codec: Started and Pinged time
	// the handshake and the heartbeats.
	Started atomic.Int64
	Pinged  atomic.Int64

	// Loop-owned: framing and early validation in Input.
	scan struct {
		checked    uint64     // payload bytes of the current frame checked
		utf8       utf8Stream // state at the end of the last complete frame
		frame      utf8Stream // state within the current, incomplete frame
		handshaken bool
		inMessage  bool // a fragmented message is in progress
		text       bool // it is uncompressed text: UTF-8 checked here
	}

	// Shared.
	established atomic.Bool
	deflate     atomic.Bool // permessage-deflate negotiated

	// Callback-goroutine-owned.
	fragOp         ws.OpCode
	fragCompressed bool
	upgraded       bool // the handshake packet was decoded

	// Send-lock-owned.
	defaultType MessageType
}

// IsClient reports whether this is the client side of a connection.
func (c *WebSocketCodec) IsClient() bool { return c.ccfg != nil }

// Established reports whether the 101 response was sent.
func (c *WebSocketCodec) Established() bool { return c.established.Load() }

// Compressed reports whether permessage-deflate was negotiated.
func (c *WebSocketCodec) Compressed() bool { return c.deflate.Load() }

// Request is the handshake, once it was decoded, until ForgetRequest.
func (c *WebSocketCodec) Request() *WebSocketRequest { return c.request }

// ForgetRequest drops the handshake so that an idle connection does not
// keep its bytes (call it from the callback goroutine).
func (c *WebSocketCodec) ForgetRequest() { c.request = nil }

// ---- Input: the event loop ----

// Input frames the handshake, then one frame at a time. It fails fast on
// everything a header decides and on invalid UTF-8 in uncompressed text,
// even before a frame is complete.
func (c *WebSocketCodec) Input(conn Conn, buf []byte) (int, error) {
	if !c.scan.handshaken {
		return c.inputHandshake(buf)
	}
	h, ok, err := parseFrameHeader(buf)
	if err != nil || !ok {
		return 0, err
	}
	if err := checkFrame(h, c.scan.inMessage, c.ccfg == nil); err != nil {
		return 0, err
	}
	if max := conn.MaxPackageSize(); h.length > uint64(max) {
		return 0, &CloseError{Code: CloseMessageTooBig, Reason: fmt.Sprintf("frame of %d bytes exceeds %d", h.length, max)}
	}
	total := h.size + int(h.length)
	isText := h.op == ws.OpText && h.rsv == 0 || h.op == ws.OpContinuation && c.scan.text
	if isText {
		if c.scan.checked == 0 {
			c.scan.frame = c.scan.utf8
			if h.op == ws.OpText {
				c.scan.frame.reset()
			}
		}
		have := min(uint64(len(buf)-h.size), h.length)
		if have > c.scan.checked {
			p := buf[h.size+int(c.scan.checked) : h.size+int(have)]
			if !c.scan.frame.feedMasked(p, h.masked, h.mask, int(c.scan.checked)) {
				return 0, &CloseError{Code: CloseInvalidPayload, Reason: "invalid UTF-8 in a text message"}
			}
			c.scan.checked = have
		}
		if total > len(buf) {
			return 0, nil // keep checking as bytes arrive
		}
		if h.fin && !c.scan.frame.complete() {
			return 0, &CloseError{Code: CloseInvalidPayload, Reason: "text message ends inside a UTF-8 sequence"}
		}
	}
	if total > len(buf) {
		return total, nil
	}
	// The frame is complete and will be consumed: advance the message state.
	c.scan.checked = 0
	if h.op.IsData() {
		c.scan.inMessage = !h.fin
		if h.op != ws.OpContinuation {
			c.scan.text = h.op == ws.OpText && h.rsv == 0
		}
		if isText {
			c.scan.utf8 = c.scan.frame
		}
		if h.fin {
			c.scan.text = false
			c.scan.utf8.reset()
		}
	}
	return total, nil
}

var (
	errHandshakeTooLarge = errors.New("websocket: handshake exceeds MaxHandshakeSize")
	errNotHTTP           = errors.New("websocket: expected an HTTP request")
)

func (c *WebSocketCodec) inputHandshake(buf []byte) (int, error) {
	// Garbage (a TLS hello on a plain port, a stray protocol) is refused at
	// once instead of after the size bound or the timeout.
	if c.ccfg != nil {
		if n := min(len(buf), 5); !bytes.Equal(buf[:n], []byte("HTTP/")[:n]) {
			return 0, &HandshakeError{Status: http.StatusBadGateway, err: errNotHTTP}
		}
		return c.handshakeEnd(buf)
	}
	for i, b := range buf {
		if b == ' ' && i > 0 {
			break
		}
		if b < 'A' || b > 'Z' || i >= 16 {
			return 0, &HandshakeError{Status: http.StatusBadRequest, err: errNotHTTP}
		}
	}
	return c.handshakeEnd(buf)
}

func (c *WebSocketCodec) handshakeEnd(buf []byte) (int, error) {
	if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
		if i+4 > c.cfg.MaxHandshakeSize {
			return 0, &HandshakeError{Status: http.StatusRequestHeaderFieldsTooLarge, err: errHandshakeTooLarge}
		}
		c.scan.handshaken = true
		return i + 4, nil
	}
	if len(buf) >= c.cfg.MaxHandshakeSize {
		return 0, &HandshakeError{Status: http.StatusRequestHeaderFieldsTooLarge, err: errHandshakeTooLarge}
	}
	return 0, nil
}

// ---- Decode: the callback goroutine ----

// Decode answers the handshake or decodes one frame.
func (c *WebSocketCodec) Decode(conn Conn, packet []byte) (Message, error) {
	if c.held != nil {
		bufpool.Put(c.held)
		c.held = nil
	}
	if !c.upgraded {
		if c.ccfg != nil {
			return c.clientHandshake(packet)
		}
		return c.handshake(conn, packet)
	}
	h, _, err := parseFrameHeader(packet)
	if err != nil {
		return Message{}, err
	}
	payload := packet[h.size:]
	if h.masked {
		ws.Cipher(payload, h.mask, 0)
	}
	if h.rsv&rsv1 != 0 && !c.deflate.Load() {
		return Message{}, protocolError("RSV1 set but permessage-deflate was not negotiated")
	}
	switch h.op {
	case ws.OpPing:
		return Message{Type: PingMessage, Data: payload}, nil
	case ws.OpPong:
		return Message{Type: PongMessage, Data: payload}, nil
	case ws.OpClose:
		if err := checkClosePayload(payload); err != nil {
			return Message{}, err
		}
		return Message{Type: CloseMessage, Data: payload}, nil
	case ws.OpText, ws.OpBinary:
		compressed := h.rsv&rsv1 != 0
		if !h.fin {
			c.fragOp, c.fragCompressed = h.op, compressed
			c.frag = appendPooled(nil, payload)
			return Message{Type: NoMessage}, nil
		}
		return c.message(conn, h.op, compressed, payload)
	case ws.OpContinuation:
		max := conn.MaxPackageSize()
		if len(*c.frag)+len(payload) > max {
			return Message{}, &CloseError{Code: CloseMessageTooBig, Reason: fmt.Sprintf("message exceeds %d bytes", max)}
		}
		c.frag = appendPooled(c.frag, payload)
		if !h.fin {
			return Message{Type: NoMessage}, nil
		}
		whole := c.frag
		c.frag = nil
		c.held = whole
		return c.message(conn, c.fragOp, c.fragCompressed, *whole)
	}
	return Message{}, protocolError("unexpected opcode %#x", byte(h.op))
}

// message finishes a complete data message: inflate, check UTF-8.
func (c *WebSocketCodec) message(conn Conn, op ws.OpCode, compressed bool, p []byte) (Message, error) {
	typ := BinaryMessage
	if op == ws.OpText {
		typ = TextMessage
	}
	if compressed {
		out, err := inflate(p, conn.MaxPackageSize())
		if err != nil {
			return Message{}, err
		}
		if c.held != nil {
			bufpool.Put(c.held)
		}
		c.held = out
		p = *out
		// Uncompressed text was checked on the loop; inflated text here.
		var s utf8Stream
		if typ == TextMessage && (!s.feed(p) || !s.complete()) {
			return Message{}, &CloseError{Code: CloseInvalidPayload, Reason: "invalid UTF-8 in a text message"}
		}
	}
	return Message{Type: typ, Data: p}, nil
}

// appendPooled appends p to a pooled buffer, moving to a bigger one as needed.
func appendPooled(b *[]byte, p []byte) *[]byte {
	if b == nil {
		nb := bufpool.Get(len(p))
		copy(*nb, p)
		return nb
	}
	if len(*b)+len(p) <= cap(*b) {
		*b = append(*b, p...)
		return b
	}
	nb := bufpool.Get(max(2*cap(*b), len(*b)+len(p)))
	*nb = append((*nb)[:0], *b...)
	*nb = append(*nb, p...)
	bufpool.Put(b)
	return nb
}

// OnClose releases the connection's buffers.
func (c *WebSocketCodec) OnClose(Conn) {
	if c.held != nil {
		bufpool.Put(c.held)
		c.held = nil
	}
	if c.frag != nil {
		bufpool.Put(c.frag)
		c.frag = nil
	}
}

// handshakeRW feeds the request bytes to gobwas/ws and collects its answer.
type handshakeRW struct {
	r bytes.Reader
	w bytes.Buffer
}

func (h *handshakeRW) Read(p []byte) (int, error)  { return h.r.Read(p) }
func (h *handshakeRW) Write(p []byte) (int, error) { return h.w.Write(p) }

// handshake runs gobwas/ws's zero-copy upgrade on the request bytes, with
// OnRequest called just before the 101 is written.
func (c *WebSocketCodec) handshake(conn Conn, packet []byte) (Message, error) {
	req := newWebSocketRequest(packet)
	accepted := false
	var rejectedBy *HandshakeError
	u := ws.Upgrader{
		ReadBufferSize: max(len(packet), 512),
		Negotiate: func(opt httphead.Option) (httphead.Option, error) {
			if !c.cfg.Compression || accepted {
				return httphead.Option{}, nil
			}
			resp, ok := negotiateDeflate(opt)
			accepted = ok
			return resp, nil
		},
		OnBeforeUpgrade: func() (ws.HandshakeHeader, error) {
			if f := c.cfg.OnRequest; f != nil {
				if err := f(conn, req); err != nil {
					rejectedBy = asHandshakeError(err)
					return nil, rejectedBy.gobwas()
				}
			}
			return ws.HandshakeHeaderBytes(req.responseHeader()), nil
		},
	}
	rw := &handshakeRW{}
	rw.r.Reset(packet)
	if _, err := u.Upgrade(rw); err != nil {
		he := rejectedBy
		if he == nil {
			he = &HandshakeError{Status: http.StatusBadRequest, err: err}
			var rej *ws.ConnectionRejectedError
			if errors.As(err, &rej) {
				he.Status = rej.StatusCode()
			}
		}
		he.response = rw.w.Bytes()
		return Message{}, he
	}
	c.upgraded = true
	c.request = req
	c.deflate.Store(accepted)
	return Message{Type: HandshakeMessage, Data: rw.w.Bytes(), Value: req}, nil
}

// asHandshakeError turns what OnRequest returned into the rejection sent.
func asHandshakeError(err error) *HandshakeError {
	var he *HandshakeError
	if errors.As(err, &he) {
		c := *he
		return &c
	}
	return &HandshakeError{Status: http.StatusForbidden, Reason: http.StatusText(http.StatusForbidden), err: err}
}

// gobwas converts the rejection for gobwas/ws, which writes the response.
func (he *HandshakeError) gobwas() error {
	opts := []ws.RejectOption{ws.RejectionStatus(he.Status), ws.RejectionReason(cmpString(he.Reason, http.StatusText(he.Status)))}
	if len(he.Header) > 0 {
		opts = append(opts, ws.RejectionHeader(ws.HandshakeHeaderHTTP(he.Header)))
	}
	return ws.RejectConnectionError(opts...)
}

func cmpString(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// negotiateDeflate accepts a permessage-deflate offer that we can honour:
// without context takeover in both directions, so that no connection keeps
// a compressor or decompressor between messages.
func negotiateDeflate(opt httphead.Option) (httphead.Option, bool) {
	if !bytes.Equal(opt.Name, wsflate.ExtensionNameBytes) {
		return httphead.Option{}, false
	}
	var offer wsflate.Parameters
	if err := offer.Parse(opt); err != nil {
		return httphead.Option{}, false // a malformed offer: try the next one
	}
	// compress/flate always uses a 32 KiB window; a client that asks for a
	// smaller one gets an uncompressed connection.
	if offer.ServerMaxWindowBits.Defined() && offer.ServerMaxWindowBits < 15 {
		return httphead.Option{}, false
	}
	resp := wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}
	return resp.Option(), true
}

// MarkEstablished records that the 101 response was sent. The caller holds
// the connection's send lock; it gets back what was sent before, to write
// right after the response.
func (c *WebSocketCodec) MarkEstablished() []byte {
	c.established.Store(true)
	if c.pending == nil {
		return nil
	}
	p := *c.pending
	c.pending = nil
	return p
}

// Hold keeps an encoded frame until the handshake completes (caller holds
// the send lock).
func (c *WebSocketCodec) Hold(frame []byte) {
	if c.pending == nil {
		c.pending = new([]byte)
	}
	*c.pending = append(*c.pending, frame...)
}

// SetDefaultType sets the type Send uses (TextMessage or BinaryMessage);
// Workerman's $connection->websocketType. Caller holds the send lock.
func (c *WebSocketCodec) SetDefaultType(t MessageType) { c.defaultType = t }

// ---- Encode: the sending goroutine ----

// Encode frames m: DataMessage as the connection's default type (text
// unless set to binary), compressed when negotiated and long enough.
func (c *WebSocketCodec) Encode(_ Conn, dst []byte, m Message) ([]byte, error) {
	return encodeFrame(dst, m, c.defaultType, c.deflate.Load(), c.cfg.CompressionThreshold, c.maskKey())
}

// maskKey is nil on the server and a fresh random key per frame on the
// client (RFC 6455 section 5.3).
func (c *WebSocketCodec) maskKey() *[4]byte {
	if c.ccfg == nil {
		return nil
	}
	var k [4]byte
	binary.LittleEndian.PutUint32(k[:], rand.Uint32())
	return &k
}

// ErrorResponse answers bad input during the handshake with an HTTP error.
// After the handshake it returns nil: the answer is a close frame with
// CloseCode(err), which the connection sends itself, because it must send
// at most one close frame however it ends.
func (c *WebSocketCodec) ErrorResponse(err error) []byte {
	if c.ccfg != nil || c.established.Load() {
		return nil // a client has nobody to answer during the handshake
	}
	var he *HandshakeError
	if errors.As(err, &he) {
		if he.response != nil {
			return he.response
		}
		return httpResponse(he.Status, "", "")
	}
	if errors.Is(err, ErrPackageTooLarge) {
		return httpResponse(http.StatusRequestHeaderFieldsTooLarge, "", "")
	}
	return httpResponse(http.StatusBadRequest, "", "")
}

// CloseCode is the close code that answers err on an established WebSocket
// connection: the code of a *CloseError, 1009 for ErrPackageTooLarge, 1002
// (protocol error) for anything else.
func CloseCode(err error) int {
	var ce *CloseError
	switch {
	case errors.As(err, &ce):
		return ce.Code
	case errors.Is(err, ErrPackageTooLarge):
		return CloseMessageTooBig
	}
	return CloseProtocolError
}

// encodeFrame appends the frame of m; mask != nil masks it (client side).
func encodeFrame(dst []byte, m Message, defaultType MessageType, deflate bool, threshold int, mask *[4]byte) ([]byte, error) {
	var op ws.OpCode
	switch m.Type {
	case DataMessage:
		op = ws.OpText
		if defaultType == BinaryMessage {
			op = ws.OpBinary
		}
	case TextMessage:
		op = ws.OpText
	case BinaryMessage:
		op = ws.OpBinary
	case PingMessage, PongMessage, CloseMessage:
		op = map[MessageType]ws.OpCode{PingMessage: ws.OpPing, PongMessage: ws.OpPong, CloseMessage: ws.OpClose}[m.Type]
		if len(m.Data) > 125 {
			return nil, fmt.Errorf("websocket: control frame payload of %d bytes (max 125)", len(m.Data))
		}
	default:
		return nil, fmt.Errorf("websocket: cannot send a %v message", m.Type)
	}
	payload := m.Data
	if op == ws.OpText && !utf8.Valid(payload) {
		return nil, ErrInvalidUTF8
	}
	var rsv byte
	if deflate && op.IsData() && len(payload) >= threshold {
		z, err := deflateMessage(payload)
		if err != nil {
			return nil, err
		}
		defer bufpool.Put(z)
		payload, rsv = *z, rsv1
	}
	dst = appendFrameHeader(dst, op, rsv, len(payload), mask)
	start := len(dst)
	dst = append(dst, payload...)
	if mask != nil {
		ws.Cipher(dst[start:], *mask, 0)
	}
	return dst, nil
}

// EncodeServerFrame appends the frame a server sends for m, uncompressed
// and unmasked: the same bytes for every connection, so that a broadcast
// builds it once (an uncompressed message is valid with permessage-deflate
// too, RFC 7692 section 6).
func EncodeServerFrame(dst []byte, m Message) ([]byte, error) {
	return encodeFrame(dst, m, TextMessage, false, 0, nil)
}
