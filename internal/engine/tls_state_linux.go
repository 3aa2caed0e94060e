//go:build linux

package engine

import (
	"crypto/tls"
	"errors"
	"reflect"
	"unsafe"
)

// After its handshake a tls.Conn keeps two secrets for features the engine
// never uses, each with the small objects that hold it (about 150 bytes a
// connection, in the size classes the handshake's garbage crowds, where a
// long-lived object keeps a whole span):
//
//   - ekm, the keying material exporter (RFC 5705) that ConnectionState
//     hands out: the engine never calls ConnectionState, and keeps its
//     tls.Conn to itself;
//   - resumptionSecret, which a server uses only to issue session tickets:
//     during the handshake, or later through QUIC, which the engine does not
//     run. (A client keeps it: it makes the tickets the server sends after
//     the handshake usable.)
//
// dropTLSSecrets lets both go once the handshake is over. ekm becomes a
// function that says so, in case a later change calls ConnectionState.
// The fields are found by name and type once, through reflection; should a
// Go release rename or retype them, tlsSecretsFound is false, nothing is
// dropped and TestTLSSecretsDropped fails, to say so.
var tlsEKM, tlsResumptionSecret, tlsSecretsFound = func() (ekm, resumption uintptr, ok bool) {
	t := reflect.TypeFor[tls.Conn]()
	e, ok1 := t.FieldByName("ekm")
	r, ok2 := t.FieldByName("resumptionSecret")
	if !ok1 || !ok2 || e.Type != reflect.TypeFor[tlsExporter]() || r.Type != reflect.TypeFor[[]byte]() {
		return 0, 0, false
	}
	return e.Offset, r.Offset, true
}()

// tlsExporter is the type of tls.Conn's ekm field.
type tlsExporter = func(label string, context []byte, length int) ([]byte, error)

var errNoEKM = errors.New("workerman: TLS keying material is not kept after the handshake")

func noEKM(string, []byte, int) ([]byte, error) { return nil, errNoEKM }

// dropTLSSecrets drops what tc keeps for the exporter and, on a server, for
// session tickets. The caller is the handshake's goroutine once the
// handshake succeeded: no other goroutine uses tc yet.
func dropTLSSecrets(tc *tls.Conn, server bool) {
	if !tlsSecretsFound {
		return
	}
	p := unsafe.Pointer(tc)
	*(*tlsExporter)(unsafe.Add(p, tlsEKM)) = noEKM
	if server {
		*(*[]byte)(unsafe.Add(p, tlsResumptionSecret)) = nil
	}
}
