package websocket

import (
	"testing"
	"unsafe"
)

// Every idle WebSocket connection of a server holds one Codec: it stays in
// the runtime's 112-byte size class (the client-only fields and a refused
// handshake's answer live behind pointers; the fields are ordered so that
// none needs padding of its own).
func TestCodecSize(t *testing.T) {
	if n := unsafe.Sizeof(Codec{}); n > 112 {
		t.Fatalf("Codec is %d bytes: more than the 112-byte size class", n)
	}
}
