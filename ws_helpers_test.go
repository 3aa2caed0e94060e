package workerman

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawWS is a byte-level WebSocket client for conformance tests: it sends
// exactly the frames a test builds and parses what the server sends.
type rawWS struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	resp *http.Response
}

const wsKey = "dGhlIHNhbXBsZSBub25jZQ=="

func handshakeRequest(path string, extra ...string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + wsKey + "\r\nSec-WebSocket-Version: 13\r\n" + strings.Join(extra, "") + "\r\n"
}

// dialWS connects and completes the handshake; the response must be 101.
func dialWS(t *testing.T, addr string, extra ...string) *rawWS {
	t.Helper()
	w := &rawWS{t: t, conn: dial(t, addr)}
	w.r = bufio.NewReader(w.conn)
	w.conn.Write([]byte(handshakeRequest("/", extra...)))
	w.resp = w.readResponse()
	if w.resp.StatusCode != 101 {
		t.Fatalf("handshake: status %d", w.resp.StatusCode)
	}
	if got := w.resp.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("Sec-WebSocket-Accept %q", got)
	}
	return w
}

func (w *rawWS) readResponse() *http.Response {
	w.t.Helper()
	w.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(w.r, nil)
	if err != nil {
		w.t.Fatalf("reading handshake response: %v", err)
	}
	return resp
}

// frame builds a client frame; masked frames use a random key.
func frame(fin bool, rsv byte, op byte, masked bool, payload []byte) []byte {
	b0 := op | rsv<<4
	if fin {
		b0 |= 0x80
	}
	var b []byte
	var mbit byte
	if masked {
		mbit = 0x80
	}
	switch n := len(payload); {
	case n <= 125:
		b = []byte{b0, mbit | byte(n)}
	case n <= 0xffff:
		b = []byte{b0, mbit | 126, byte(n >> 8), byte(n)}
	default:
		b = append([]byte{b0, mbit | 127}, binary.BigEndian.AppendUint64(nil, uint64(n))...)
	}
	if !masked {
		return append(b, payload...)
	}
	var key [4]byte
	rand.Read(key[:])
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

func text(s string) []byte { return frame(true, 0, 1, true, []byte(s)) }

type serverFrame struct {
	fin     bool
	rsv     byte
	op      byte
	payload []byte
}

func (w *rawWS) send(frames ...[]byte) {
	w.t.Helper()
	for _, f := range frames {
		if _, err := w.conn.Write(f); err != nil {
			w.t.Fatalf("write: %v", err)
		}
	}
}

// next reads one server frame; server frames must not be masked.
func (w *rawWS) next() serverFrame {
	w.t.Helper()
	f, err := w.tryNext()
	if err != nil {
		w.t.Fatalf("reading a frame: %v", err)
	}
	return f
}

func (w *rawWS) tryNext() (serverFrame, error) {
	w.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var h [2]byte
	if _, err := io.ReadFull(w.r, h[:]); err != nil {
		return serverFrame{}, err
	}
	if h[1]&0x80 != 0 {
		return serverFrame{}, fmt.Errorf("server frame is masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		io.ReadFull(w.r, l[:])
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		io.ReadFull(w.r, l[:])
		n = binary.BigEndian.Uint64(l[:])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(w.r, p); err != nil {
		return serverFrame{}, err
	}
	return serverFrame{fin: h[0]&0x80 != 0, rsv: h[0] >> 4 & 7, op: h[0] & 0xf, payload: p}, nil
}

// expectClose reads until a close frame, checks its code, and expects the
// server to close the connection right after it: exactly one close frame
// (RFC 6455 section 5.5.1), and not one byte after it.
func (w *rawWS) expectClose(code int) {
	w.t.Helper()
	for {
		f := w.next()
		if f.op != 8 {
			continue
		}
		got := 1005
		if len(f.payload) >= 2 {
			got = int(binary.BigEndian.Uint16(f.payload))
		}
		if got != code {
			w.t.Fatalf("close code %d (%q), want %d", got, f.payload, code)
		}
		break
	}
	w.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := io.ReadAll(w.r)
	if err != nil && !isReset(err) {
		w.t.Fatalf("after the close frame: %v", err)
	}
	if len(rest) > 0 {
		w.t.Fatalf("%d bytes after the close frame (% x): one close frame per connection, then the TCP close", len(rest), rest[:min(len(rest), 16)])
	}
}

func (w *rawWS) expectText(want string) {
	w.t.Helper()
	f := w.next()
	if f.op != 1 || !f.fin || string(f.payload) != want {
		w.t.Fatalf("got op %d fin %v %q, want text %q", f.op, f.fin, f.payload, want)
	}
}

func closeFrame(code int, reason string) []byte {
	p := binary.BigEndian.AppendUint16(nil, uint16(code))
	return frame(true, 0, 8, true, append(p, reason...))
}

func wsEchoWorker(goroutines bool) *Worker {
	w := &Worker{URI: "websocket://127.0.0.1:0", goroutines: goroutines}
	w.OnMessage = func(c *Connection, data []byte) {
		c.SendMessage(c.MessageType(), data)
	}
	return w
}

// expectBinary checks that f is one binary message carrying want.
func expectBinary(t *testing.T, f serverFrame, want []byte) {
	t.Helper()
	if f.op != 2 || !bytes.Equal(f.payload, want) {
		t.Fatalf("op %d, %d bytes; want a binary message of %d bytes", f.op, len(f.payload), len(want))
	}
}
