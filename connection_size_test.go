package workerman

import (
	"testing"
	"unsafe"
)

// Every open connection is one Connection: it stays in the runtime's
// 160-byte size class (what few connections need is in connExt).
func TestConnectionSize(t *testing.T) {
	if n := unsafe.Sizeof(Connection{}); n > 160 {
		t.Fatalf("Connection is %d bytes: more than the 160-byte size class", n)
	}
}

// An idle AsyncConnection made with shared AsyncOptions is this struct, its
// Connection, connExt, codec and the engine's state: it stays in the
// 128-byte size class (its settings are in the shared AsyncOptions).
func TestAsyncConnectionSize(t *testing.T) {
	if n := unsafe.Sizeof(AsyncConnection{}); n > 128 {
		t.Fatalf("AsyncConnection is %d bytes: more than the 128-byte size class", n)
	}
}
