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

// An idle AsyncConnection made with shared AsyncOptions is this struct,
// its Connection, codec and the engine's state. The struct holds the
// connExt its attempts point to (none is allocated per attempt) and stays
// in the 144-byte size class: less than the struct (128-byte class) and a
// connExt per attempt (64) it replaced.
func TestAsyncConnectionSize(t *testing.T) {
	if n := unsafe.Sizeof(AsyncConnection{}); n > 144 {
		t.Fatalf("AsyncConnection is %d bytes: more than the 144-byte size class", n)
	}
}
