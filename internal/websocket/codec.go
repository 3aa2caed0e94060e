// Package websocket is the WebSocket protocol (RFC 6455, RFC 7692) of
// websocket:// servers and ws:// clients: the codec that frames, validates,
// reassembles and inflates what the peer sends and frames what the
// connection sends, and the session that drives the connection through the
// opening handshake, control frames, the closing handshake, heartbeats and
// timeouts. Its state is its own; the connection reaches it only through
// proto.Session and proto.WebSocket.
package websocket

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"

	"github.com/workerman-go/workerman/internal/bufpool"
	"github.com/workerman-go/workerman/internal/proto"
	"github.com/workerman-go/workerman/protocol"
)

// Config configures the WebSocket side of a connection, server or client.
// The zero value works.
type Config struct {
	// MaxHandshakeSize bounds the opening handshake (default 16 KiB); a
	// larger one is answered with 431 and closed.
	MaxHandshakeSize int
	// Compression negotiates permessage-deflate (RFC 7692): on the server
	// when the client offers it, on the client by offering it. Both
	// directions run without context takeover, so an idle connection keeps
	// no compressor state.
	Compression bool
	// CompressionThreshold: shorter messages are sent uncompressed
	// (default 128 bytes).
	CompressionThreshold int
	// HandshakeTimeout closes a connection whose handshake did not complete
	// in time (default 10 s).
	HandshakeTimeout time.Duration
	// BinaryType makes data messages binary instead of text.
	BinaryType bool
	// PingInterval sends a ping (or PingData as a message) every interval;
	// PingNotResponseLimit closes the connection after that many intervals
	// in which nothing was received (0: never).
	PingInterval         time.Duration
	PingNotResponseLimit int
	PingData             []byte
	// KeepRequest keeps the server's handshake after OnConnected.
	KeepRequest bool

	// The hooks; each runs on the connection's callback goroutine through
	// Conn.Call. OnRequest (server) sees the handshake before the 101 and
	// may reject it; OnConnected runs after the handshake with the
	// *protocol.WebSocketRequest (server) or *protocol.WebSocketResponse
	// (client); OnPing replaces the automatic pong.
	OnRequest   func(c proto.Conn, r *protocol.WebSocketRequest) error
	OnConnected func(c proto.Conn, v any)
	OnPing      func(c proto.Conn, data []byte)
	OnPong      func(c proto.Conn, data []byte)
	OnClose     func(c proto.Conn, code int, reason string)
}

func (cfg Config) withDefaults() *Config {
	if cfg.MaxHandshakeSize <= 0 {
		cfg.MaxHandshakeSize = 16 << 10
	}
	if cfg.CompressionThreshold <= 0 {
		cfg.CompressionThreshold = 128
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	return &cfg
}

// Protocol creates the codecs of one endpoint's connections.
type Protocol struct {
	cfg  *Config
	ccfg *ClientConfig // nil on the server
}

// Server returns the websocket:// server protocol.
func Server(cfg Config) *Protocol { return &Protocol{cfg: cfg.withDefaults()} }

// NewCodec returns the codec (and session) of a new connection.
func (p *Protocol) NewCodec() protocol.Codec {
	if p.ccfg != nil {
		return p.newClient()
	}
	return &Codec{cfg: p.cfg}
}

// Period is the shortest deadline the sessions need checked: the
// handshake timeout or the ping interval.
func (p *Protocol) Period() time.Duration {
	d := p.cfg.HandshakeTimeout
	if iv := p.cfg.PingInterval; iv > 0 && iv < d {
		d = iv
	}
	return d
}

func init() {
	protocol.Register("websocket", Server(Config{Compression: true}))
}

// Codec is one connection's WebSocket codec and session: it answers (or,
// on a client, checks) the opening handshake, frames and validates what
// the peer sends (RFC 6455, strictly), reassembles fragmented messages,
// inflates compressed ones and frames what the connection sends.
type Codec struct {
	cfg  *Config
	dial *clientSide // a client's until its handshake was checked (callback goroutine); nil on the server

	// Callback-goroutine-owned: Decode.
	frag      *[]byte                                   // reassembly buffer
	held      *[]byte                                   // buffer of the last message, released at the next Decode
	request   atomic.Pointer[protocol.WebSocketRequest] // read by Connection.WebSocketRequest from any goroutine
	rejection *[]byte                                   // the HTTP answer to a refused handshake

	// Send-lock-owned.
	pending *[]byte // frames sent before the handshake completed

	// Deadlines (unix ns): when the handshake started, the last ping.
	started atomic.Int64
	pinged  atomic.Int64

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

	// Send-lock-owned. Among the other bytes, where it needs no padding of
	// its own: the codec stays in the 112-byte size class.
	defaultType protocol.MessageType

	// Set at creation: a client's codec masks what it sends and refuses
	// masked frames. In the struct's last padding bytes.
	client bool
}

// clientSide is what only a client's codec has, and only until the
// server's answer was checked: an idle client does not keep it.
type clientSide struct {
	cfg *ClientConfig
	key [24]byte // Sec-WebSocket-Key: 16 random bytes in base64, inline (no string to allocate)
}

func (c *Codec) isClient() bool { return c.client }

// Established reports whether the handshake completed.
func (c *Codec) Established() bool { return c.established.Load() }

// Compressed reports whether permessage-deflate was negotiated.
func (c *Codec) Compressed() bool { return c.deflate.Load() }

// Request is the server's handshake, once decoded, until it is dropped
// after OnConnected (unless KeepRequest).
func (c *Codec) Request() *protocol.WebSocketRequest { return c.request.Load() }

// SetDefaultType sets the type of data messages (caller holds the send
// lock).
func (c *Codec) SetDefaultType(t protocol.MessageType) { c.defaultType = t }

// DefaultType is the type of data messages.
func (c *Codec) DefaultType() protocol.MessageType { return c.defaultType }

// WebSocket returns c itself.
func (c *Codec) WebSocket() proto.WebSocket { return c }

// Start begins the handshake's deadline; an HTTP connection upgraded to
// WebSocket calls it when the upgrade request arrives, before it shares c.
func (c *Codec) Start(now int64) {
	if c.cfg.BinaryType {
		c.defaultType = protocol.BinaryMessage
	}
	c.started.Store(now)
}

// ---- Input: the event loop ----

// Input frames the handshake, then one frame at a time. It fails fast on
// everything a header decides and on invalid UTF-8 in uncompressed text,
// even before a frame is complete.
func (c *Codec) Input(conn protocol.Conn, buf []byte) (int, error) {
	if !c.scan.handshaken {
		return c.inputHandshake(buf)
	}
	h, ok, err := parseFrameHeader(buf)
	if err != nil || !ok {
		return 0, err
	}
	if err := checkFrame(h, c.scan.inMessage, !c.client); err != nil {
		return 0, err
	}
	if max := conn.MaxPackageSize(); h.length > uint64(max) {
		return 0, &protocol.CloseError{Code: protocol.CloseMessageTooBig, Reason: fmt.Sprintf("frame of %d bytes exceeds %d", h.length, max)}
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
				return 0, &protocol.CloseError{Code: protocol.CloseInvalidPayload, Reason: "invalid UTF-8 in a text message"}
			}
			c.scan.checked = have
		}
		if total > len(buf) {
			return 0, nil // keep checking as bytes arrive
		}
		if h.fin && !c.scan.frame.complete() {
			return 0, &protocol.CloseError{Code: protocol.CloseInvalidPayload, Reason: "text message ends inside a UTF-8 sequence"}
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

func (c *Codec) inputHandshake(buf []byte) (int, error) {
	// Garbage (a TLS hello on a plain port, a stray protocol) is refused at
	// once instead of after the size bound or the timeout.
	if c.client {
		if n := min(len(buf), 5); !bytes.Equal(buf[:n], []byte("HTTP/")[:n]) {
			return 0, &protocol.HandshakeError{Status: http.StatusBadGateway, Err: errNotHTTP}
		}
		return c.handshakeEnd(buf)
	}
	for i, b := range buf {
		if b == ' ' && i > 0 {
			break
		}
		if b < 'A' || b > 'Z' || i >= 16 {
			return 0, &protocol.HandshakeError{Status: http.StatusBadRequest, Err: errNotHTTP}
		}
	}
	return c.handshakeEnd(buf)
}

func (c *Codec) handshakeEnd(buf []byte) (int, error) {
	if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
		if i+4 > c.cfg.MaxHandshakeSize {
			return 0, &protocol.HandshakeError{Status: http.StatusRequestHeaderFieldsTooLarge, Err: errHandshakeTooLarge}
		}
		c.scan.handshaken = true
		return i + 4, nil
	}
	if len(buf) >= c.cfg.MaxHandshakeSize {
		return 0, &protocol.HandshakeError{Status: http.StatusRequestHeaderFieldsTooLarge, Err: errHandshakeTooLarge}
	}
	return 0, nil
}

// ---- Decode: the callback goroutine ----

// Decode answers the handshake or decodes one frame.
func (c *Codec) Decode(conn protocol.Conn, packet []byte) (protocol.Message, error) {
	if c.held != nil {
		bufpool.Put(c.held)
		c.held = nil
	}
	if !c.upgraded {
		if c.client {
			return c.clientHandshake(packet)
		}
		return c.handshake(conn, packet)
	}
	h, _, err := parseFrameHeader(packet)
	if err != nil {
		return protocol.Message{}, err
	}
	payload := packet[h.size:]
	if h.masked {
		ws.Cipher(payload, h.mask, 0)
	}
	if h.rsv&rsv1 != 0 && !c.deflate.Load() {
		return protocol.Message{}, protocolError("RSV1 set but permessage-deflate was not negotiated")
	}
	switch h.op {
	case ws.OpPing:
		return protocol.Message{Type: protocol.PingMessage, Data: payload}, nil
	case ws.OpPong:
		return protocol.Message{Type: protocol.PongMessage, Data: payload}, nil
	case ws.OpClose:
		if err := checkClosePayload(payload); err != nil {
			return protocol.Message{}, err
		}
		return protocol.Message{Type: protocol.CloseMessage, Data: payload}, nil
	case ws.OpText, ws.OpBinary:
		compressed := h.rsv&rsv1 != 0
		if !h.fin {
			c.fragOp, c.fragCompressed = h.op, compressed
			c.frag = appendPooled(nil, payload)
			return protocol.Message{Type: protocol.NoMessage}, nil
		}
		return c.message(conn, h.op, compressed, payload)
	case ws.OpContinuation:
		max := conn.MaxPackageSize()
		if len(*c.frag)+len(payload) > max {
			return protocol.Message{}, &protocol.CloseError{Code: protocol.CloseMessageTooBig, Reason: fmt.Sprintf("message exceeds %d bytes", max)}
		}
		c.frag = appendPooled(c.frag, payload)
		if !h.fin {
			return protocol.Message{Type: protocol.NoMessage}, nil
		}
		whole := c.frag
		c.frag = nil
		c.held = whole
		return c.message(conn, c.fragOp, c.fragCompressed, *whole)
	}
	return protocol.Message{}, protocolError("unexpected opcode %#x", byte(h.op))
}

// message finishes a complete data message: inflate, check UTF-8.
func (c *Codec) message(conn protocol.Conn, op ws.OpCode, compressed bool, p []byte) (protocol.Message, error) {
	typ := protocol.BinaryMessage
	if op == ws.OpText {
		typ = protocol.TextMessage
	}
	if compressed {
		out, err := inflate(p, conn.MaxPackageSize())
		if err != nil {
			return protocol.Message{}, err
		}
		if c.held != nil {
			bufpool.Put(c.held)
		}
		c.held = out
		p = *out
		// Uncompressed text was checked on the loop; inflated text here.
		var s utf8Stream
		if typ == protocol.TextMessage && (!s.feed(p) || !s.complete()) {
			return protocol.Message{}, &protocol.CloseError{Code: protocol.CloseInvalidPayload, Reason: "invalid UTF-8 in a text message"}
		}
	}
	return protocol.Message{Type: typ, Data: p}, nil
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

// release returns the connection's buffers to their pool.
func (c *Codec) release() {
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
func (c *Codec) handshake(conn protocol.Conn, packet []byte) (protocol.Message, error) {
	req := protocol.NewWebSocketRequest(packet)
	accepted := false
	var rejectedBy *protocol.HandshakeError
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
			if err := c.onRequest(conn, req); err != nil {
				rejectedBy = asHandshakeError(err)
				return nil, gobwasRejection(rejectedBy)
			}
			return ws.HandshakeHeaderBytes(responseHeader(req)), nil
		},
	}
	rw := &handshakeRW{}
	rw.r.Reset(packet)
	if _, err := u.Upgrade(rw); err != nil {
		he := rejectedBy
		if he == nil {
			he = &protocol.HandshakeError{Status: http.StatusBadRequest, Err: err}
			var rej *ws.ConnectionRejectedError
			if errors.As(err, &rej) {
				he.Status = rej.StatusCode()
			}
		}
		if b := rw.w.Bytes(); len(b) > 0 {
			c.rejection = &b
		}
		return protocol.Message{}, he
	}
	c.upgraded = true
	c.request.Store(req)
	c.deflate.Store(accepted)
	return protocol.Message{Type: protocol.HandshakeMessage, Data: rw.w.Bytes(), Value: req}, nil
}

// asHandshakeError turns what OnRequest returned into the rejection sent.
func asHandshakeError(err error) *protocol.HandshakeError {
	var he *protocol.HandshakeError
	if errors.As(err, &he) {
		c := *he
		return &c
	}
	return &protocol.HandshakeError{Status: http.StatusForbidden, Reason: http.StatusText(http.StatusForbidden), Err: err}
}

var errPanicked = errors.New("panicked")

// onRequest runs the OnRequest hook, as user code: a panic in it is
// answered with 500.
func (c *Codec) onRequest(conn protocol.Conn, req *protocol.WebSocketRequest) error {
	f := c.cfg.OnRequest
	pc, ok := conn.(proto.Conn)
	if f == nil || !ok {
		return nil
	}
	err := errPanicked
	pc.Call("OnWebSocketConnect", func() { err = f(pc, req) })
	if err == errPanicked {
		return protocol.Reject(http.StatusInternalServerError, "")
	}
	return err
}

// responseHeader renders the subprotocol and the headers OnRequest added.
func responseHeader(r *protocol.WebSocketRequest) []byte {
	var b bytes.Buffer
	if p := r.Subprotocol(); p != "" {
		fmt.Fprintf(&b, "Sec-WebSocket-Protocol: %s\r\n", sanitizeHeader(p))
	}
	for k, vs := range r.ResponseHeader() {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", sanitizeHeader(k), sanitizeHeader(v))
		}
	}
	return b.Bytes()
}

// sanitizeHeader keeps a header from splitting the response.
func sanitizeHeader(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}

// gobwasRejection converts the rejection for gobwas/ws, which writes the
// response.
func gobwasRejection(he *protocol.HandshakeError) error {
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

// markEstablished records that the handshake completed and returns what
// was sent before, to write right after the 101 (caller holds the send
// lock).
func (c *Codec) markEstablished() []byte {
	c.established.Store(true)
	if c.pending == nil {
		return nil
	}
	p := *c.pending
	c.pending = nil
	return p
}

// heldBytes is the size of the frames held (caller holds the send lock).
func (c *Codec) heldBytes() int {
	if c.pending == nil {
		return 0
	}
	return len(*c.pending)
}

// hold keeps an encoded frame until the handshake completes (caller holds
// the send lock).
func (c *Codec) hold(frame []byte) {
	if c.pending == nil {
		c.pending = new([]byte)
	}
	*c.pending = append(*c.pending, frame...)
}

// ---- Encode: the sending goroutine ----

// Encode frames m: protocol.DataMessage as the connection's default type (text
// unless set to binary), compressed when negotiated and long enough.
func (c *Codec) Encode(_ protocol.Conn, dst []byte, m protocol.Message) ([]byte, error) {
	return encodeFrame(dst, m, c.defaultType, c.deflate.Load(), c.cfg.CompressionThreshold, c.maskKey())
}

// maskKey is nil on the server and a fresh random key per frame on the
// client (RFC 6455 section 5.3).
func (c *Codec) maskKey() *[4]byte {
	if !c.client {
		return nil
	}
	var k [4]byte
	binary.LittleEndian.PutUint32(k[:], rand.Uint32())
	return &k
}

// errorResponse is the HTTP answer to bad input during a server's
// handshake (after it, the answer is a close frame).
func (c *Codec) errorResponse(err error) []byte {
	if c.isClient() || c.established.Load() {
		return nil // a client has nobody to answer during the handshake
	}
	var he *protocol.HandshakeError
	if errors.As(err, &he) {
		if c.rejection != nil {
			return *c.rejection
		}
		return httpResponse(he.Status, "")
	}
	if errors.Is(err, protocol.ErrPackageTooLarge) {
		return httpResponse(http.StatusRequestHeaderFieldsTooLarge, "")
	}
	return httpResponse(http.StatusBadRequest, "")
}

// httpResponse is a complete HTTP answer that closes the connection.
func httpResponse(status int, reason string) []byte {
	if reason == "" {
		reason = http.StatusText(status)
	}
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s",
		status, http.StatusText(status), len(reason), reason)
}

// encodeFrame appends the frame of m; mask != nil masks it (client side).
func encodeFrame(dst []byte, m protocol.Message, defaultType protocol.MessageType, deflate bool, threshold int, mask *[4]byte) ([]byte, error) {
	var op ws.OpCode
	switch m.Type {
	case protocol.DataMessage:
		op = ws.OpText
		if defaultType == protocol.BinaryMessage {
			op = ws.OpBinary
		}
	case protocol.TextMessage:
		op = ws.OpText
	case protocol.BinaryMessage:
		op = ws.OpBinary
	case protocol.PingMessage, protocol.PongMessage, protocol.CloseMessage:
		op = map[protocol.MessageType]ws.OpCode{protocol.PingMessage: ws.OpPing, protocol.PongMessage: ws.OpPong, protocol.CloseMessage: ws.OpClose}[m.Type]
		if len(m.Data) > 125 {
			return nil, fmt.Errorf("websocket: control frame payload of %d bytes (max 125)", len(m.Data))
		}
	default:
		return nil, fmt.Errorf("websocket: cannot send a %v message", m.Type)
	}
	payload := m.Data
	if op == ws.OpText && !utf8.Valid(payload) {
		return nil, protocol.ErrInvalidUTF8
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

// ServerFrame appends the frame a server sends for m, uncompressed and
// unmasked: the same bytes for every connection, so that a broadcast
// builds it once (an uncompressed message is valid with permessage-deflate
// too, RFC 7692 section 6).
func ServerFrame(dst []byte, m protocol.Message) ([]byte, error) {
	return encodeFrame(dst, m, protocol.TextMessage, false, 0, nil)
}
