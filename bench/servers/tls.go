package servers

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"sync"
	"time"
)

// TLSConfig is the server configuration every "wss" server uses: one
// self-signed ECDSA P-256 certificate for 127.0.0.1, made once per process,
// TLS 1.3 (Go's default), so that every server runs the same handshake and
// the same cipher (AES-128-GCM).
var TLSConfig = sync.OnceValue(func() *tls.Config {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
})

// listen is net.Listen, wrapped in TLS for proto "wss".
func listen(proto, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil || proto != "wss" {
		return ln, err
	}
	return tls.NewListener(ln, TLSConfig()), nil
}
