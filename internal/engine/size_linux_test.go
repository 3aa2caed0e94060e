//go:build linux

package engine

import (
	"testing"
	"unsafe"
)

// Every idle connection of a loop is one fdConn: it stays in the runtime's
// 112-byte size class. What few connections need (dialing, a flush or
// linger deadline, the error that ended it, an IPv6 peer) is in connExtra.
func TestFdConnSize(t *testing.T) {
	if n := unsafe.Sizeof(fdConn{}); n > 112 {
		t.Fatalf("fdConn is %d bytes: more than the 112-byte size class", n)
	}
}

// A TLS connection adds a tlsConn, in the 112-byte size class, and, once
// the engine's record layer took over from crypto/tls, a tlsRecords in the
// 112-byte class too (in place of crypto/tls's 896-byte tls.Conn).
func TestTLSConnSize(t *testing.T) {
	if n := unsafe.Sizeof(tlsConn{}); n > 112 {
		t.Fatalf("tlsConn is %d bytes: more than the 112-byte size class", n)
	}
	if n := unsafe.Sizeof(tlsRecords{}); n > 112 {
		t.Fatalf("tlsRecords is %d bytes: more than the 112-byte size class", n)
	}
}
