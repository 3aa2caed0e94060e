//go:build linux

package engine

import (
	"bytes"
	"crypto/tls"
	"net"
	"testing"
	"time"
)

// heldHandshake dials, holds back the client's Finished and returns the raw
// conn, the client, its keys and the held bytes.
func heldHandshake(t *testing.T, addr string, cfg *tls.Config, maxVers uint16) (net.Conn, *tls.Conn, *recordKeys, []byte) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	hc := &holdConn{Conn: nc}
	log := &keyLog{}
	ccfg := cfg.Clone()
	ccfg.ServerName = "127.0.0.1"
	ccfg.MaxVersion = maxVers
	ccfg.KeyLogWriter = log
	tc := tls.Client(hc, ccfg)
	tc.SetDeadline(time.Now().Add(recordIO))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	var keys *recordKeys
	if maxVers == tls.VersionTLS13 {
		keys = newRecordKeys(t, tc.ConnectionState().CipherSuite, log.secret(t, "CLIENT_TRAFFIC_SECRET_0"))
	}
	hc.mu.Lock()
	held := bytes.Clone(hc.held)
	hc.mu.Unlock()
	return nc, tc, keys, held
}

// The client's Finished, data and TCP FIN in one go (a health check that
// completes the handshake and leaves): the owner hears OnEOF after the
// data, as with crypto/tls's record layer.
func TestTLSFINWithFinished(t *testing.T) {
	tlsEngines(t, func(t *testing.T, eng Engine) {
		addr, cfg, handlers := recordsServer(t, eng, 0)
		for _, withData := range []bool{false, true} {
			nc, _, keys, held := heldHandshake(t, addr, cfg, tls.VersionTLS13)
			h := waitFor(t, handlers, "accept")
			seg := held
			if withData {
				seg = append(seg, keys.seal(recApplicationData, []byte("hello"), 0)...)
			}
			nc.Write(seg)
			nc.(*net.TCPConn).CloseWrite()
			waitFor(t, h.eof, "OnEOF after the client's FIN")
		}
	})
}

type pauseOnce struct {
	c      Conn
	first  chan struct{}
	got    []byte
	gotCh  chan []byte
	eof    chan struct{}
	paused bool
}

func (h *pauseOnce) OnRead(in []byte) (int, int) {
	h.got = append(h.got, in...)
	if !h.paused {
		h.paused = true
		h.c.PauseRead(ByUser)
		close(h.first)
	}
	return len(in), 0
}
func (h *pauseOnce) OnEOF()            { h.gotCh <- bytes.Clone(h.got); close(h.eof) }
func (h *pauseOnce) OnDrain()          {}
func (h *pauseOnce) OnClose(err error) {}

// Records that came with the client's Finished wait while the owner
// pauses after the first; the peer's FIN and the owner's ResumeRead then
// race (the loop may read the FIN before the resume runs): whichever comes
// first, the owner gets every record, then OnEOF.
func TestTLSPausedRecordsThenFIN(t *testing.T) {
	tlsEngines(t, func(t *testing.T, eng Engine) {
		hs := make(chan *pauseOnce, 1)
		addr, cfg := tlsServer(t, eng, func(c Conn, _ int) Handler {
			h := &pauseOnce{c: c, first: make(chan struct{}), eof: make(chan struct{}), gotCh: make(chan []byte, 1)}
			hs <- h
			return h
		})
		for range 10 {
			nc, _, keys, held := heldHandshake(t, addr, cfg, tls.VersionTLS13)
			h := waitFor(t, hs, "accept")
			seg := held
			for _, s := range []string{"rec1-", "rec2-", "rec3-"} {
				seg = append(seg, keys.seal(recApplicationData, []byte(s), 0)...)
			}
			nc.Write(seg)
			waitFor(t, h.first, "first OnRead")
			nc.(*net.TCPConn).CloseWrite()
			h.c.ResumeRead(ByUser)
			if got := waitFor(t, h.gotCh, "OnEOF"); string(got) != "rec1-rec2-rec3-" {
				t.Fatalf("owner got %q before OnEOF, want %q", got, "rec1-rec2-rec3-")
			}
		}
	})
}

type plainPause struct {
	c      Conn
	first  chan struct{}
	got    []byte
	gotCh  chan []byte
	paused bool
}

func (h *plainPause) OnRead(in []byte) (int, int) {
	if !h.paused {
		h.paused = true
		h.got = append(h.got, in[:4]...)
		h.c.PauseRead(ByUser)
		close(h.first)
		return 4, 0
	}
	h.got = append(h.got, in...)
	return len(in), 0
}
func (h *plainPause) OnEOF()            { h.gotCh <- bytes.Clone(h.got); h.c.Close() }
func (h *plainPause) OnDrain()          {}
func (h *plainPause) OnClose(err error) {}

// Plain TCP: bytes kept while the owner pauses, the peer's FIN and the
// owner's ResumeRead race; the owner gets every byte, then OnEOF.
func TestPausedInputThenFIN(t *testing.T) {
	for _, e := range testEngines(1) {
		t.Run(e.name, func(t *testing.T) {
			eng, err := e.new()
			if err != nil {
				t.Fatal(err)
			}
			defer eng.Stop()
			hs := make(chan *plainPause, 1)
			ln := &Listener{Network: "tcp", Address: "127.0.0.1:0"}
			if err := eng.Listen(ln, func(c Conn, _ int) Handler {
				h := &plainPause{c: c, first: make(chan struct{}), gotCh: make(chan []byte, 1)}
				hs <- h
				return h
			}); err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			for range 20 {
				nc, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				h := waitFor(t, hs, "accept")
				nc.Write([]byte("AAAABBBB"))
				waitFor(t, h.first, "first")
				nc.(*net.TCPConn).CloseWrite()
				h.c.ResumeRead(ByUser)
				if got := waitFor(t, h.gotCh, "OnEOF"); string(got) != "AAAABBBB" {
					t.Fatalf("got %q before OnEOF, want AAAABBBB", got)
				}
			}
		})
	}
}
