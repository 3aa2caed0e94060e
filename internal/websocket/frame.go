package websocket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/workerman-go/workerman/protocol"
)

func protocolError(format string, args ...any) *protocol.CloseError {
	return &protocol.CloseError{Code: protocol.CloseProtocolError, Reason: fmt.Sprintf(format, args...)}
}

// frameHeader is a parsed WebSocket frame header.
type frameHeader struct {
	fin    bool
	rsv    byte // the three RSV bits, RSV1 = 4
	op     ws.OpCode
	masked bool
	mask   [4]byte
	length uint64 // payload length
	size   int    // header length in bytes
}

const rsv1 = 4

var errTooLong = errors.New("frame length does not fit 63 bits")

// parseFrameHeader parses the header at the start of b. It returns ok false
// when b does not hold the whole header yet.
func parseFrameHeader(b []byte) (h frameHeader, ok bool, err error) {
	if len(b) < 2 {
		return h, false, nil
	}
	h.fin = b[0]&0x80 != 0
	h.rsv = (b[0] >> 4) & 7
	h.op = ws.OpCode(b[0] & 0x0f)
	h.masked = b[1]&0x80 != 0
	n := 2
	switch l := b[1] & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return h, false, nil
		}
		h.length = uint64(binary.BigEndian.Uint16(b[2:]))
		n = 4
	case 127:
		if len(b) < 10 {
			return h, false, nil
		}
		h.length = binary.BigEndian.Uint64(b[2:])
		if h.length>>63 != 0 {
			return h, false, protocolError("%v", errTooLong)
		}
		n = 10
	default:
		h.length = uint64(l)
	}
	if h.masked {
		if len(b) < n+4 {
			return h, false, nil
		}
		copy(h.mask[:], b[n:n+4])
		n += 4
	}
	h.size = n
	return h, true, nil
}

// appendFrameHeader appends the header of a final frame.
func appendFrameHeader(dst []byte, op ws.OpCode, rsv byte, length int, mask *[4]byte) []byte {
	b0 := 0x80 | rsv<<4 | byte(op)
	var b1 byte
	if mask != nil {
		b1 = 0x80
	}
	switch {
	case length <= 125:
		dst = append(dst, b0, b1|byte(length))
	case length <= 0xffff:
		dst = append(dst, b0, b1|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(length))
	default:
		dst = append(dst, b0, b1|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(length))
	}
	if mask != nil {
		dst = append(dst, mask[:]...)
	}
	return dst
}

// checkFrame applies the rules that a header alone decides (RFC 6455
// section 5). inMessage says whether a fragmented message is in progress.
func checkFrame(h frameHeader, inMessage bool, wantMask bool) error {
	switch {
	case h.masked != wantMask && wantMask:
		return protocolError("client frame is not masked")
	case h.masked != wantMask:
		return protocolError("server frame is masked")
	case h.op.IsReserved():
		return protocolError("reserved opcode %#x", byte(h.op))
	case h.rsv&^rsv1 != 0:
		return protocolError("RSV2/RSV3 set without an extension")
	}
	if h.op.IsControl() {
		switch {
		case !h.fin:
			return protocolError("fragmented control frame")
		case h.length > 125:
			return protocolError("control frame payload of %d bytes", h.length)
		case h.rsv != 0:
			return protocolError("RSV1 set on a control frame")
		}
		return nil
	}
	switch {
	case h.op == ws.OpContinuation && !inMessage:
		return protocolError("continuation frame without a message in progress")
	case h.op != ws.OpContinuation && inMessage:
		return protocolError("new data frame inside a fragmented message")
	case h.op == ws.OpContinuation && h.rsv != 0:
		return protocolError("RSV1 set on a continuation frame")
	}
	return nil
}

// checkClosePayload validates a received close frame's payload.
func checkClosePayload(p []byte) error {
	switch {
	case len(p) == 0:
		return nil
	case len(p) == 1:
		return protocolError("close frame with a 1-byte payload")
	}
	code := int(binary.BigEndian.Uint16(p))
	if !protocol.ValidCloseCode(code) {
		return protocolError("invalid close code %d", code)
	}
	if !utf8.Valid(p[2:]) {
		return &protocol.CloseError{Code: protocol.CloseInvalidPayload, Reason: "close reason is not valid UTF-8"}
	}
	return nil
}

// utf8Stream validates UTF-8 that arrives in pieces: a code point may be
// split across reads and frames. The zero value is at a boundary.
type utf8Stream struct {
	need   uint8 // continuation bytes still expected
	lo, hi byte  // bounds of the next continuation byte
}

func (s *utf8Stream) reset() { *s = utf8Stream{} }

// complete reports whether the bytes so far end on a code point boundary.
func (s *utf8Stream) complete() bool { return s.need == 0 }

// feed validates p; false means the stream is not valid UTF-8.
func (s *utf8Stream) feed(p []byte) bool {
	for s.need > 0 && len(p) > 0 {
		if !s.cont(p[0]) {
			return false
		}
		p = p[1:]
	}
	if len(p) == 0 {
		return true
	}
	// Validate the bulk with the standard library and only the trailing,
	// possibly incomplete, sequence byte by byte.
	cut := len(p)
	for i := len(p) - 1; i >= 0 && i >= len(p)-4; i-- {
		if p[i]&0xc0 != 0x80 { // a start byte
			if i+seqLen(p[i]) > len(p) {
				cut = i
			}
			break
		}
	}
	if !utf8.Valid(p[:cut]) {
		return false
	}
	for _, b := range p[cut:] {
		if s.need > 0 {
			if !s.cont(b) {
				return false
			}
			continue
		}
		if !s.start(b) {
			return false
		}
	}
	return true
}

func seqLen(b byte) int {
	switch {
	case b < 0x80:
		return 1
	case b&0xe0 == 0xc0:
		return 2
	case b&0xf0 == 0xe0:
		return 3
	case b&0xf8 == 0xf0:
		return 4
	}
	return 1 // invalid start byte: utf8.Valid rejects it
}

func (s *utf8Stream) start(b byte) bool {
	s.lo, s.hi = 0x80, 0xbf
	switch {
	case b < 0x80:
		s.need = 0
	case b >= 0xc2 && b <= 0xdf:
		s.need = 1
	case b == 0xe0:
		s.need, s.lo = 2, 0xa0
	case b >= 0xe1 && b <= 0xec, b == 0xee, b == 0xef:
		s.need = 2
	case b == 0xed:
		s.need, s.hi = 2, 0x9f // no surrogates
	case b == 0xf0:
		s.need, s.lo = 3, 0x90
	case b >= 0xf1 && b <= 0xf3:
		s.need = 3
	case b == 0xf4:
		s.need, s.hi = 3, 0x8f // nothing above U+10FFFF
	default:
		return false
	}
	return true
}

func (s *utf8Stream) cont(b byte) bool {
	if b < s.lo || b > s.hi {
		return false
	}
	s.need--
	s.lo, s.hi = 0x80, 0xbf
	return true
}

// feedMasked validates payload bytes, masked or not, without changing them;
// off is the position of p within the frame's payload (for the mask key).
func (s *utf8Stream) feedMasked(p []byte, masked bool, mask [4]byte, off int) bool {
	if !masked {
		return s.feed(p)
	}
	var tmp [512]byte
	for len(p) > 0 {
		n := copy(tmp[:], p)
		ws.Cipher(tmp[:n], mask, off)
		if !s.feed(tmp[:n]) {
			return false
		}
		p, off = p[n:], off+n
	}
	return true
}
