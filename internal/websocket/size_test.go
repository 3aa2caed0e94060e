package websocket

import (
	"testing"
	"unsafe"
)

// Every idle WebSocket connection of a server holds one Codec: it stays in
// the runtime's 128-byte size class (the client-only fields and a refused
// handshake's answer live behind pointers).
func TestCodecSize(t *testing.T) {
	if n := unsafe.Sizeof(Codec{}); n > 128 {
		t.Fatalf("Codec is %d bytes: more than the 128-byte size class", n)
	}
}
