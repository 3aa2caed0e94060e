package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/testcert"
)

// The clients' port over TLS (-tls-cert, -tls-key, -listen wss://): clients
// connect with wss:// and get pushes, the JS client is served over https://,
// and a renewed certificate is served from the next handshake on without a
// restart (a broken renewal keeps the previous one).
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first, second := testcert.New(t, 1), testcert.New(t, 2)
	first.WriteFiles(t, certFile, keyFile)
	pool := x509.NewCertPool()
	pool.AddCert(first.TLS.Leaf)
	pool.AddCert(second.TLS.Leaf)
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
	if !bytes.Equal(served(), first.DER) {
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

	second.WriteFiles(t, certFile, keyFile)
	if !bytes.Equal(served(), second.DER) {
		t.Fatal("the renewed certificate is not served")
	}
	n.log.waitLine(t, regexp.MustCompile(`TLS certificate reloaded`))

	// A renewal that left a broken file: the previous certificate stays.
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(served(), second.DER) {
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
