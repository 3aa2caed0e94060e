//go:build linux

package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"unsafe"
)

// After its handshake a tls.Conn keeps what only the handshake or features
// the engine never uses need, in small objects (about 170 bytes a
// connection, in the size classes the handshake's garbage crowds, where a
// long-lived object keeps a whole span):
//
//   - handshakeFn, the method value (a closure) that runs the handshake: a
//     completed handshake is never run again (Handshake returns at once,
//     and a client's renegotiation calls the client's handshake directly);
//   - ekm, the keying material exporter (RFC 5705) that ConnectionState
//     hands out: the engine never calls ConnectionState, and keeps its
//     tls.Conn to itself;
//   - resumptionSecret, which a server uses only to issue session tickets:
//     during the handshake, or later through QUIC, which the engine does not
//     run. (A client keeps it: it makes the tickets the server sends after
//     the handshake usable.)
//
// dropTLSSecrets lets them go once the handshake is over. ekm becomes a
// function that says so, in case a later change calls ConnectionState.
// The fields are found by name and type once, through reflection; should a
// Go release rename or retype them, tlsSecretsFound is false, nothing is
// dropped and TestTLSSecretsDropped fails, to say so.
var tlsHandshakeFn, tlsEKM, tlsResumptionSecret, tlsSecretsFound = func() (fn, ekm, resumption uintptr, ok bool) {
	fn, ok0 := tlsConnField[func(context.Context) error]("handshakeFn")
	ekm, ok1 := tlsConnField[tlsExporter]("ekm")
	resumption, ok2 := tlsConnField[[]byte]("resumptionSecret")
	return fn, ekm, resumption, ok0 && ok1 && ok2
}()

// tlsExporter is the type of tls.Conn's ekm field.
type tlsExporter = func(label string, context []byte, length int) ([]byte, error)

var errNoEKM = errors.New("workerman: TLS keying material is not kept after the handshake")

func noEKM(string, []byte, int) ([]byte, error) { return nil, errNoEKM }

// dropTLSSecrets drops tc's handshake function, what it keeps for the
// exporter and, on a server, for session tickets. The caller is the handshake's goroutine once the
// handshake succeeded: no other goroutine uses tc yet.
func dropTLSSecrets(tc *tls.Conn, server bool) {
	if !tlsSecretsFound {
		return
	}
	p := unsafe.Pointer(tc)
	*(*func(context.Context) error)(unsafe.Add(p, tlsHandshakeFn)) = nil
	*(*tlsExporter)(unsafe.Add(p, tlsEKM)) = noEKM
	if server {
		*(*[]byte)(unsafe.Add(p, tlsResumptionSecret)) = nil
	}
}
