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
// records read at once (about 2 KiB after a handshake, 576 bytes after a
// small message), and the handshake message buffer (hand, about 1.5 KiB).
// With the handshake's goroutine and buffers gone they would be most of an
// idle TLS connection's memory, and a loop serves many idle connections.
//
// So the loop lends crypto/tls a record buffer from the engine's pool for
// each batch of reads (lendTLSInput) and takes it back when crypto/tls has
// used up what was read (releaseTLSBuffers); the handshake buffer is dropped
// when it is empty (a handshake message after the handshake, a key update,
// grows it again). An idle connection keeps neither.
//
// crypto/tls has no API for this: the buffers are found by name and type
// once, through reflection. Should a Go release rename or retype them,
// tlsBuffersFound is false, nothing is lent or dropped (connections only
// keep more memory) and TestTLSBuffersReleased fails, to say so.
var tlsRawInput, tlsInput, tlsHand, tlsBuffersFound = func() (raw, input, hand uintptr, ok bool) {
	raw, ok1 := tlsConnField[bytes.Buffer]("rawInput")
	input, ok2 := tlsConnField[bytes.Reader]("input")
	hand, ok3 := tlsConnField[bytes.Buffer]("hand")
	return raw, input, hand, ok1 && ok2 && ok3
}()

// tlsConnField returns the offset in tls.Conn of its field name, if the
// field exists and has type T.
func tlsConnField[T any](name string) (uintptr, bool) {
	f, ok := reflect.TypeFor[tls.Conn]().FieldByName(name)
	if !ok || f.Type != reflect.TypeFor[T]() {
		return 0, false
	}
	return f.Offset, true
}

func tlsBuffers(tc *tls.Conn) (raw *bytes.Buffer, input *bytes.Reader, hand *bytes.Buffer) {
	p := unsafe.Pointer(tc)
	return (*bytes.Buffer)(unsafe.Add(p, tlsRawInput)), (*bytes.Reader)(unsafe.Add(p, tlsInput)), (*bytes.Buffer)(unsafe.Add(p, tlsHand))
}

// tlsLendSlack is what crypto/tls wants free in its record buffer beyond the
// bytes it reads: a record header, and bytes.MinRead, which it asks for
// before every read from the transport.
const tlsLendSlack = 5 + bytes.MinRead

// tlsMaxLend bounds the record buffer lent for one batch of reads: enough
// for what the loop reads at once by default (64 KiB), so that crypto/tls
// does not grow it; for more, crypto/tls grows its own, dropped afterwards.
const tlsMaxLend = 64<<10 + tlsLendSlack

// lendTLSInput gives tc a pooled record buffer for about n bytes of input
// when it has none (it has one when a partial record or unread plaintext
// waits in it), and returns the buffer, or nil. The caller is the only
// reader of tc (the loop), and hands the buffer to releaseTLSBuffers.
func lendTLSInput(tc *tls.Conn, n int) *[]byte {
	if !tlsBuffersFound {
		return nil
	}
	raw, _, _ := tlsBuffers(tc)
	if raw.Cap() != 0 {
		return nil
	}
	b := bufferGet(min(n+tlsLendSlack, tlsMaxLend))
	*raw = *bytes.NewBuffer((*b)[:0])
	return b
}

// releaseTLSBuffers drops tc's input buffers when they are empty: the
// record buffer when crypto/tls has neither unread records nor unread
// plaintext in it (the plaintext is a slice of it), back to the pool when
// it is lent (the buffer lendTLSInput returned, still in place), and the
// handshake buffer. The caller is the only reader of tc: the handshake's
// goroutine once it ended, or the loop after crypto/tls asked for more
// input than there was.
func releaseTLSBuffers(tc *tls.Conn, lent *[]byte) {
	if !tlsBuffersFound {
		return
	}
	raw, input, hand := tlsBuffers(tc)
	if raw.Len() == 0 && input.Len() == 0 && raw.Cap() > 0 {
		raw.Reset()
		own := lent != nil && unsafe.SliceData(raw.AvailableBuffer()) == unsafe.SliceData((*lent)[:cap(*lent)])
		// crypto/tls resets input before it reads a record; done here
		// as well, the input cannot point into a buffer given back.
		input.Reset(nil)
		*raw = bytes.Buffer{}
		if own {
			bufferPut(lent)
		}
	}
	if hand.Len() == 0 && hand.Cap() > 0 {
		*hand = bytes.Buffer{}
	}
}

// tlsBufferCaps is for tests: the capacities of tc's record and handshake
// buffers.
func tlsBufferCaps(tc *tls.Conn) (raw, hand int) {
	if !tlsBuffersFound {
		return -1, -1
	}
	r, _, h := tlsBuffers(tc)
	return r.Cap(), h.Cap()
}
