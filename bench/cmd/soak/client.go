package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
)

// sources spreads client connections over several loopback addresses so
// that churn never runs out of ephemeral ports (TIME_WAIT included).
var (
	sources = func() []*net.TCPAddr {
		var s []*net.TCPAddr
		for i := 2; i <= 33; i++ {
			s = append(s, &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(i))})
		}
		return s
	}()
	sourceNext atomic.Uint32
)

// dialTCP connects from the next source address; rcvbuf > 0 shrinks the
// receive buffer first, so that a client that never reads stops the
// server's writes sooner.
func dialTCP(addr string, rcvbuf int) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: sources[sourceNext.Add(1)%uint32(len(sources))]}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			return errors.Join(err, serr)
		}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

func wsKey() (key, accept string) {
	var b [16]byte
	rand.Read(b[:])
	key = base64.StdEncoding.EncodeToString(b[:])
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return key, base64.StdEncoding.EncodeToString(h[:])
}

// handshake performs the client's opening handshake on c and returns the
// reader that holds whatever the server sent after the 101.
func handshake(c net.Conn, host, path string) (*bufio.Reader, error) {
	key, accept := wsKey()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(c, 4096)
	status, err := br.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if !strings.HasPrefix(status, "HTTP/1.1 101 ") {
		return nil, fmt.Errorf("handshake: %q", strings.TrimSpace(status))
	}
	gotAccept := false
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("handshake: %w", err)
		}
		l = strings.TrimSpace(l)
		if l == "" {
			break
		}
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "Sec-WebSocket-Accept") {
			gotAccept = strings.TrimSpace(v) == accept
		}
	}
	if !gotAccept {
		return nil, errors.New("handshake: wrong Sec-WebSocket-Accept")
	}
	return br, nil
}

// wsConn is one client WebSocket connection, read by its own goroutine,
// which checks every message against the one before as it arrives.
type wsConn struct {
	p    *proc
	c    *net.TCPConn
	br   *bufio.Reader
	cid  string
	kind string

	wmu      sync.Mutex
	finDone  atomic.Bool            // the answer to bye arrived and was checked
	ours     atomic.Bool            // we closed it (reset, or the close after fin)
	done     atomic.Bool            // the connection has ended
	vanished atomic.Bool            // half-open: the proxy swallows everything now
	pid      atomic.Pointer[string] // -target push: the client ID of the welcome

	// Owned by the reading goroutine.
	u              uint64 // last unicast seq
	bFirst, bLast  uint64 // broadcasts received, contiguous
	bStart         uint64
	welcomed, fin  bool
	closeFrameSent bool
}

func (p *proc) dial(addr, cid, kind string, rcvbuf int) (*wsConn, error) {
	c, err := dialTCP(addr, rcvbuf)
	if err != nil {
		return nil, err
	}
	br, err := handshake(c, addr, "/?cid="+cid+"&kind="+kind)
	if err != nil {
		c.SetLinger(0)
		c.Close()
		return nil, err
	}
	return &wsConn{p: p, c: c, br: br, cid: cid, kind: kind}, nil
}

func (w *wsConn) write(op ws.OpCode, payload []byte) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	f := ws.MaskFrameInPlace(ws.NewFrame(op, true, append([]byte(nil), payload...)))
	w.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return ws.WriteFrame(w.c, f)
}

// bye asks the server what it sent; the answer ends the connection. A
// server that neither answers nor closes within 15 s is a failure.
func (w *wsConn) bye() {
	if w.p.o.push {
		// The backend answers, through the push server.
		pid := w.pid.Load()
		if pid == nil {
			// Not welcomed yet: nothing was pushed to it; close.
			w.ours.Store(true)
			w.c.Close()
			return
		}
		w.p.say("PUSH BYE %s", *pid)
	} else if err := w.write(ws.OpText, []byte("bye")); err != nil {
		return // the reader sees the connection end
	}
	time.AfterFunc(15*time.Second, func() {
		if !w.finDone.Load() && !w.ours.Load() && !w.done.Load() {
			w.p.violation("%s %s: no answer to bye within 15 s", w.kind, w.cid)
			w.ours.Store(true)
			w.c.Close()
		}
	})
}

// reset closes abruptly: SO_LINGER 0 makes the close send an RST.
func (w *wsConn) reset() {
	w.ours.Store(true)
	w.c.SetLinger(0)
	w.c.Close()
}

// run reads until the connection ends and accounts for how it ended.
func (w *wsConn) run() {
	err := w.read()
	w.done.Store(true)
	w.c.Close()
	switch {
	case w.fin:
		if wellBehaved(w.kind) {
			w.p.verified.Add(1)
		}
	case w.ours.Load():
		if w.kind == kindReset {
			w.p.resets.Add(1)
		}
	case wellBehaved(w.kind):
		// Ended by the server (or its death) without answering bye: the
		// suite matches what arrived with the server's own report.
		pid := ""
		if p := w.pid.Load(); p != nil {
			pid = *p
		}
		w.p.addEnded(endedConn{CID: w.cid, PID: pid, Kind: w.kind, U: w.u, BFirst: w.bFirst, BLast: w.bLast,
			Welcomed: w.welcomed, BStart: w.bStart, At: time.Now().UnixNano(), Err: errText(err)})
	}
}

func errText(err error) string {
	if err == nil || errors.Is(err, io.EOF) {
		return "EOF"
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		return ne.Err.Error()
	}
	return err.Error()
}

func (w *wsConn) read() error {
	buf := make([]byte, 0, 128)
	for {
		h, err := ws.ReadHeader(w.br)
		if err != nil {
			return err
		}
		if h.Length > 1<<20 {
			w.p.violation("%s %s: frame of %d bytes", w.kind, w.cid, h.Length)
			return errors.New("oversized frame")
		}
		if int64(cap(buf)) < h.Length {
			buf = make([]byte, h.Length)
		}
		p := buf[:h.Length]
		if _, err := io.ReadFull(w.br, p); err != nil {
			return err
		}
		if h.Masked {
			w.p.violation("%s %s: masked frame from the server", w.kind, w.cid)
		}
		switch h.OpCode {
		case ws.OpPing:
			w.write(ws.OpPong, p)
		case ws.OpPong:
		case ws.OpClose:
			// The server closes: answer once, then read until EOF. A second
			// close frame from the server is not checked here.
			if !w.closeFrameSent {
				w.closeFrameSent = true
				w.write(ws.OpClose, p[:min(len(p), 2)])
			}
		case ws.OpText:
			if !h.Fin {
				w.p.violation("%s %s: fragmented message", w.kind, w.cid)
			}
			if !w.fin {
				w.message(p)
			}
		default:
			w.p.violation("%s %s: unexpected opcode %d", w.kind, w.cid, h.OpCode)
		}
	}
}

// message checks one server message: unicast and broadcast numbers each
// go up by exactly one, the welcome comes before any broadcast it says is
// newer, and the answer to bye matches everything that came before it.
func (w *wsConn) message(p []byte) {
	if w.p.o.push && len(p) > 0 && p[0] == '{' {
		w.pushWelcome(p)
		return
	}
	tag, v, n, ok := fields(p)
	now := time.Now().UnixNano()
	good := wellBehaved(w.kind) && !w.vanished.Load()
	switch {
	case !ok:
		w.p.violation("%s %s: unparsable message %.40q", w.kind, w.cid, p)
	case tag == 'u' && n >= 2:
		if v[0] != w.u+1 {
			w.p.violation("%s %s: unicast %d after %d", w.kind, w.cid, v[0], w.u)
		}
		w.u = v[0]
		if good {
			w.p.unicast.Add(1)
			w.p.latency(0, time.Duration(now-int64(v[1])))
		}
	case tag == 'b' && n >= 2:
		if w.bLast != 0 && v[0] != w.bLast+1 {
			w.p.violation("%s %s: broadcast %d after %d", w.kind, w.cid, v[0], w.bLast)
		}
		if w.welcomed && v[0] <= w.bStart {
			w.p.violation("%s %s: broadcast %d after the welcome at %d", w.kind, w.cid, v[0], w.bStart)
		}
		if w.bFirst == 0 {
			w.bFirst = v[0]
		}
		w.bLast = v[0]
		if good {
			w.p.broadcast.Add(1)
			w.p.latency(1, time.Duration(now-int64(v[1])))
		}
	case tag == 'w' && n >= 1:
		if w.welcomed {
			w.p.violation("%s %s: second welcome", w.kind, w.cid)
		}
		w.welcomed, w.bStart = true, v[0]
		if w.bLast > w.bStart {
			w.p.violation("%s %s: broadcast %d came before the welcome at %d", w.kind, w.cid, w.bLast, w.bStart)
		}
	case tag == 'f' && n >= 3:
		w.fin = true
		w.finDone.Store(true)
		if w.p.o.push {
			if n < 4 {
				w.p.violation("%s %s: answer to bye without bstart: %.40q", w.kind, w.cid, p)
			}
			w.bStart = v[3]
		}
		w.checkFin(v[0], v[1], v[2])
		w.ours.Store(true)
		w.closeFrameSent = true
		w.write(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
		w.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	default:
		w.p.violation("%s %s: unexpected message %.40q", w.kind, w.cid, p)
	}
}

func (w *wsConn) checkFin(sent, bLast, drops uint64) {
	if !w.welcomed {
		w.p.violation("%s %s: answer to bye without a welcome", w.kind, w.cid)
		return
	}
	if w.u != sent {
		w.p.violation("%s %s: received unicast 1..%d, the server sent 1..%d", w.kind, w.cid, w.u, sent)
	}
	w.checkBroadcasts(bLast)
	if drops > 0 && wellBehaved(w.kind) {
		w.p.violation("%s %s: the server dropped %d messages for a client that reads", w.kind, w.cid, drops)
	}
}

// checkBroadcasts: every broadcast bStart+1..bLast arrived (contiguity was
// checked as they came).
func (w *wsConn) checkBroadcasts(bLast uint64) {
	if bLast > w.bStart {
		if w.bLast != bLast || w.bFirst == 0 || w.bFirst > w.bStart+1 {
			w.p.violation("%s %s: received broadcasts %d..%d, the server sent %d..%d", w.kind, w.cid, w.bFirst, w.bLast, w.bStart+1, bLast)
		}
	} else if w.bLast > w.bStart {
		w.p.violation("%s %s: broadcast %d after the server's last %d", w.kind, w.cid, w.bLast, bLast)
	}
}

// endedConn is a well-behaved connection that ended without an answer to
// bye: the suite checks it against the server's report at the restart.
type endedConn struct {
	CID      string `json:"cid"`
	PID      string `json:"pid,omitempty"` // -target push: the client ID
	Kind     string `json:"kind"`
	U        uint64 `json:"u"`
	BFirst   uint64 `json:"bfirst"`
	BLast    uint64 `json:"blast"`
	Welcomed bool   `json:"welcomed"`
	BStart   uint64 `json:"bstart"`
	At       int64  `json:"at"`
	Err      string `json:"err"`
}

// pushWelcome takes the push server's first frame,
// {"type":"welcome","client_id":"…","uid":""}, and reports the client ID
// to the suite's backend, which starts pushing to it.
func (w *wsConn) pushWelcome(p []byte) {
	var m struct {
		Type     string `json:"type"`
		ClientID string `json:"client_id"`
	}
	if err := json.Unmarshal(p, &m); err != nil || m.Type != "welcome" || m.ClientID == "" {
		w.p.violation("%s %s: unexpected message %.60q", w.kind, w.cid, p)
		return
	}
	if w.welcomed {
		w.p.violation("%s %s: second welcome", w.kind, w.cid)
		return
	}
	if w.u != 0 || w.bLast != 0 {
		w.p.violation("%s %s: messages before the welcome", w.kind, w.cid)
	}
	w.welcomed = true
	// Reported before bye can see it: the suite reads a process's lines in
	// order, so its backend knows the client before any bye from it.
	w.p.say("PUSH CID %s %s %s", m.ClientID, w.kind, w.cid)
	w.pid.Store(&m.ClientID)
}

// readWelcome reads the first frame only (the welcome) of a client that
// never reads after it (-target push: its client ID is needed).
func (w *wsConn) readWelcome() error {
	w.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer w.c.SetReadDeadline(time.Time{})
	h, err := ws.ReadHeader(w.br)
	if err != nil {
		return err
	}
	if h.Length > 4096 || h.OpCode != ws.OpText {
		return fmt.Errorf("first frame: opcode %d, %d bytes", h.OpCode, h.Length)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(w.br, p); err != nil {
		return err
	}
	w.pushWelcome(p)
	return nil
}
