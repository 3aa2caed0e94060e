package websocket

import (
	"testing"
	"unsafe"
)

// Every idle WebSocket connection of a server holds one Codec: it stays in
// the runtime's 96-byte size class (the client-only fields and a refused
// handshake's answer live behind pointers, the two deadlines share a clock,
// the shared flags a word, and the fields are ordered so that none needs
// padding of its own).
func TestCodecSize(t *testing.T) {
	if n := unsafe.Sizeof(Codec{}); n > 96 {
		t.Fatalf("Codec is %d bytes: more than the 96-byte size class", n)
	}
}
