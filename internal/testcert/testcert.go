// Package testcert makes the self-signed certificates the tests serve TLS
// with (a test helper: no package outside tests imports it).
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Cert is a self-signed ECDSA P-256 certificate for 127.0.0.1, valid for
// an hour.
type Cert struct {
	TLS  tls.Certificate
	Pool *x509.CertPool // trusts the certificate
	DER  []byte
	key  *ecdsa.PrivateKey
}

// New makes a certificate with the given serial number.
func New(t testing.TB, serial int64) *Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "workerman test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &Cert{TLS: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, Pool: pool, DER: der, key: key}
}

// Pair makes a certificate and returns it with a pool that trusts it.
func Pair(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	c := New(t, 1)
	return c.TLS, c.Pool
}

// PEM returns the certificate and its key as PEM files' contents.
func (c *Cert) PEM(t testing.TB) (cert, key []byte) {
	t.Helper()
	kder, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// WriteFiles writes the certificate and its key to certFile and keyFile as
// a renewal does: each through a new file renamed over the old one.
func (c *Cert) WriteFiles(t testing.TB, certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM := c.PEM(t)
	for path, data := range map[string][]byte{certFile: certPEM, keyFile: keyPEM} {
		tmp := path + ".new"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
}

// Files writes a new certificate's PEM files in dir and returns their
// paths and the pool that trusts it.
func Files(t testing.TB, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	c := New(t, 1)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c.WriteFiles(t, certFile, keyFile)
	return certFile, keyFile, c.Pool
}
