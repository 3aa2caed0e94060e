package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"unicode/utf8"
)

// The WebSocket protocol itself (websocket:// servers, ws:// clients) lives
// in the library's internal packages; this file holds what its users touch:
// close codes, close errors and the client's view of a handshake.

// CloseError is a WebSocket failure with the close code sent to the peer
// (RFC 6455 section 7.4): 1002 for protocol errors, 1007 for invalid UTF-8,
// 1009 for a message that is too big. It is what OnError receives; use
// errors.As to read the code.
type CloseError struct {
	Code   int
	Reason string
}

// Error describes the failure with its close code.
func (e *CloseError) Error() string {
	return fmt.Sprintf("websocket: close %d: %s", e.Code, e.Reason)
}

// Is makes errors.Is(err, ErrPackageTooLarge) hold for code 1009.
func (e *CloseError) Is(target error) bool {
	return target == ErrPackageTooLarge && e.Code == CloseMessageTooBig ||
		target == ErrBadPacket && e.Code != CloseMessageTooBig
}

// WebSocket close codes (RFC 6455 section 7.4.1).
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001
	CloseProtocolError   = 1002
	CloseUnsupportedData = 1003
	CloseNoStatus        = 1005 // never sent: "no code in the close frame"
	CloseAbnormal        = 1006 // never sent: "closed without a close frame"
	CloseInvalidPayload  = 1007
	ClosePolicyViolation = 1008
	CloseMessageTooBig   = 1009
	CloseMandatoryExt    = 1010
	CloseInternalError   = 1011
	CloseTryAgainLater   = 1013 // the server is overloaded: reconnect later (IANA registry)
)

// ValidCloseCode reports whether code may appear in a close frame: the
// registered 1000–1003 and 1007–1014, and 3000–4999 for applications.
func ValidCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// ClosePayload builds the payload of a close frame: the code, then the
// reason cut to 123 bytes (on a character boundary). Code 0 gives an empty
// payload.
func ClosePayload(code int, reason string) []byte {
	if code == 0 {
		return nil
	}
	if len(reason) > 123 {
		reason = reason[:123]
		for !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	p := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	return append(p, reason...)
}

// ParseClosePayload splits a close frame's payload; code is CloseNoStatus
// (1005) when the frame carried none.
func ParseClosePayload(p []byte) (code int, reason string) {
	if len(p) < 2 {
		return CloseNoStatus, ""
	}
	return int(binary.BigEndian.Uint16(p)), string(p[2:])
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

// WebSocketResponse is the server's answer to a client handshake, given to
// the client's OnWebSocketConnect.
type WebSocketResponse struct {
	Status      int
	Header      http.Header
	Subprotocol string // the protocol the server chose, if any
	Compressed  bool   // permessage-deflate is in use
}
