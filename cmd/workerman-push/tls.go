package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certFiles serves the certificate of -tls-cert and -tls-key and loads them
// again when either file changes (a renewal by certbot, cert-manager or an
// operator), so that rotating a certificate needs no restart: each handshake
// compares the files' size and modification time with those loaded. A new
// pair that does not load (a half-written file) is logged and the previous
// certificate kept until the files change again.
type certFiles struct {
	certPath, keyPath string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]fileStamp
	refused [2]fileStamp // the last pair that did not load: not retried until it changes
}

type fileStamp struct {
	size int64
	mod  time.Time
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.Size(), fi.ModTime()}, nil
}

// loadCertFiles loads the pair once; an error here stops the server.
func loadCertFiles(certPath, keyPath string, log *slog.Logger) (*certFiles, error) {
	f := &certFiles{certPath: certPath, keyPath: keyPath, log: log}
	stamp, err := f.stamps()
	if err == nil {
		err = f.load(stamp)
	}
	if err != nil {
		return nil, fmt.Errorf("-tls-cert %q, -tls-key %q: %w", certPath, keyPath, err)
	}
	return f, nil
}

func (f *certFiles) stamps() ([2]fileStamp, error) {
	c, err := stampOf(f.certPath)
	if err != nil {
		return [2]fileStamp{}, err
	}
	k, err := stampOf(f.keyPath)
	return [2]fileStamp{c, k}, err
}

func (f *certFiles) load(stamp [2]fileStamp) error {
	cert, err := tls.LoadX509KeyPair(f.certPath, f.keyPath)
	if err != nil {
		return err
	}
	f.cert, f.stamp = &cert, stamp
	return nil
}

// get is tls.Config.GetCertificate.
func (f *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	stamp, err := f.stamps()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil && stamp != f.stamp && stamp != f.refused {
		if err := f.load(stamp); err != nil {
			f.refused = stamp
			f.log.Error("TLS certificate not reloaded: keeping the previous one", "cert", f.certPath, "key", f.keyPath, "err", err)
		} else {
			f.log.Info("TLS certificate reloaded", "cert", f.certPath)
		}
	}
	return f.cert, nil
}

// config is the TLS configuration of the clients' port.
func (f *certFiles) config() *tls.Config {
	return &tls.Config{GetCertificate: f.get, MinVersion: tls.VersionTLS12}
}
