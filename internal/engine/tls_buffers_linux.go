//go:build linux

package engine

import (
	"bytes"
	"crypto/tls"
	"reflect"
	"unsafe"
)

// crypto/tls keeps the capacity of its two input buffers for the life of a
// connection: the record buffer (rawInput), grown to the largest flight of
// records read at once (about 2 KiB after a handshake), and the handshake
// message buffer (hand, about 1.5 KiB). With the handshake's goroutine and
// buffers gone they are most of an idle TLS connection's memory, and a loop
// serves many idle connections. When they are empty the loop drops them;
// the next record grows the record buffer again (to 576 bytes for a small
// message), a handshake message after the handshake (a key update) the
// other.
//
// crypto/tls has no API for this: the buffers are found by name and type
// once, through reflection. Should a Go release rename or retype them,
// tlsBuffersFound is false, nothing is dropped (connections only keep more
// memory) and TestTLSBuffersReleased fails, to say so.
var tlsRawInput, tlsHand, tlsBuffersFound = func() (raw, hand uintptr, ok bool) {
	t := reflect.TypeFor[tls.Conn]()
	buf := reflect.TypeFor[bytes.Buffer]()
	r, ok1 := t.FieldByName("rawInput")
	h, ok2 := t.FieldByName("hand")
	if !ok1 || !ok2 || r.Type != buf || h.Type != buf {
		return 0, 0, false
	}
	return r.Offset, h.Offset, true
}()

// releaseTLSBuffers drops tc's input buffers that are empty and hold at
// least keep bytes of capacity. The caller is the only reader of tc: the
// handshake's goroutine once it ended, or the loop.
func releaseTLSBuffers(tc *tls.Conn, keep int) {
	if !tlsBuffersFound {
		return
	}
	for _, off := range [2]uintptr{tlsRawInput, tlsHand} {
		b := (*bytes.Buffer)(unsafe.Add(unsafe.Pointer(tc), off))
		if b.Len() == 0 && b.Cap() >= keep && b.Cap() > 0 {
			*b = bytes.Buffer{}
		}
	}
}

// tlsBufferCaps is for tests: the capacities of tc's record and handshake
// buffers.
func tlsBufferCaps(tc *tls.Conn) (raw, hand int) {
	if !tlsBuffersFound {
		return -1, -1
	}
	raw = (*bytes.Buffer)(unsafe.Add(unsafe.Pointer(tc), tlsRawInput)).Cap()
	hand = (*bytes.Buffer)(unsafe.Add(unsafe.Pointer(tc), tlsHand)).Cap()
	return raw, hand
}
