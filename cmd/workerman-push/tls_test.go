package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// pemPair is a self-signed certificate for 127.0.0.1 as PEM files' contents.
type pemPair struct {
	cert, key []byte
	der       []byte
}

func newPEMPair(t *testing.T, serial int64) pemPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
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
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemPair{
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		der:  der,
	}
}

// write replaces the files as a renewal does: a new file renamed over the
// old one.
func (p pemPair) write(t *testing.T, certFile, keyFile string) {
	t.Helper()
	for path, data := range map[string][]byte{certFile: p.cert, keyFile: p.key} {
		tmp := path + ".new"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
}

// The clients' port over TLS (-tls-cert, -tls-key, -listen wss://): clients
// connect with wss:// and get pushes, the JS client is served over https://,
// and a renewed certificate is served from the next handshake on without a
// restart (a broken renewal keeps the previous one).
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first, second := newPEMPair(t, 1), newPEMPair(t, 2)
	first.write(t, certFile, keyFile)
	pool := x509.NewCertPool()
	for _, p := range []pemPair{first, second} {
		c, _ := x509.ParseCertificate(p.der)
		pool.AddCert(c)
	}
	n := startRun(t, args("-listen", "wss://127.0.0.1:0", "-tls-cert", certFile, "-tls-key", keyFile), nil)
	if !strings.HasPrefix(n.clients, "wss://127.0.0.1:") || !strings.Contains(n.log.String(), "tls=true") {
		t.Fatalf("start line:\n%s", n.log.String())
	}
	n.tlsClient = &tls.Config{RootCAs: pool}

	served := func() []byte {
		t.Helper()
		c := dial(t, n, "")
		defer c.conn.Close()
		tc, ok := c.conn.(*tls.Conn)
		if !ok {
			t.Fatalf("a wss client's connection is %T", c.conn)
		}
		n.mustCall(t, "sendToClient", map[string]any{"client_id": c.id, "message": "over TLS"})
		c.expectText("over TLS")
		return tc.ConnectionState().PeerCertificates[0].Raw
	}
	if !bytes.Equal(served(), first.der) {
		t.Fatal("the server did not present -tls-cert")
	}

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	resp, err := hc.Get("https://" + strings.TrimPrefix(strings.TrimSuffix(n.clients, "/"), "wss://") + "/workerman-push.js")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(js, []byte("WebSocket")) {
		t.Fatalf("GET /workerman-push.js over https: %d, %d bytes", resp.StatusCode, len(js))
	}
	hc.CloseIdleConnections()

	second.write(t, certFile, keyFile)
	if !bytes.Equal(served(), second.der) {
		t.Fatal("the renewed certificate is not served")
	}
	n.log.waitLine(t, regexp.MustCompile(`TLS certificate reloaded`))

	// A renewal that left a broken file: the previous certificate stays.
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(served(), second.der) {
		t.Fatal("a broken renewal replaced the certificate")
	}
	n.log.waitLine(t, regexp.MustCompile(`TLS certificate not reloaded`))
}

func TestTLSFlags(t *testing.T) {
	if _, err := parseConfig([]string{"-tls-cert", "c.pem"}, nil, io.Discard); err == nil {
		t.Error("-tls-cert without -tls-key was accepted")
	}
	cfg, err := parseConfig([]string{"-listen", "wss://127.0.0.1:0"}, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newServer(cfg, nil); err == nil || !strings.Contains(err.Error(), "-tls-cert") {
		t.Errorf("wss without a certificate: %v", err)
	}
	dir := t.TempDir()
	cfg.TLSCert, cfg.TLSKey = filepath.Join(dir, "none.pem"), filepath.Join(dir, "none.key")
	if _, err := newServer(cfg, nil); err == nil || !strings.Contains(err.Error(), "none.pem") {
		t.Errorf("missing certificate files: %v", err)
	}
}
