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
