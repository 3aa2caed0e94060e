package pushsub

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"sync"
	"time"
)

// Conn is a lean WebSocket client for load generation: one goroutine
// reads, any goroutine writes masked frames (under mu), pings are answered
// with pongs, and nothing is allocated per received frame beyond what the
// caller keeps.
type Conn struct {
	c   net.Conn
	r   *bufio.Reader
	mu  sync.Mutex
	out []byte
	hdr [14]byte
	buf []byte // the payload of the last frame read
}

var wsMask = [4]byte{0x12, 0x34, 0x56, 0x78}

// Dial connects from the local address src (nil: any) to the ws:// URL u.
func Dial(u *url.URL, src *net.TCPAddr) (*Conn, error) {
	d := net.Dialer{Timeout: 15 * time.Second}
	if src != nil {
		d.LocalAddr = src
	}
	c, err := d.Dial("tcp", u.Host)
	if err != nil {
		return nil, err
	}
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://" + u.Host + "\r\n\r\n"
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		c.Close()
		return nil, err
	}
	r := bufio.NewReaderSize(c, 2048)
	var head []byte
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		b, err := r.ReadByte()
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("handshake: %w", err)
		}
		head = append(head, b)
		if len(head) > 8192 {
			c.Close()
			return nil, errors.New("handshake: response head too long")
		}
	}
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 101")) {
		c.Close()
		return nil, fmt.Errorf("handshake: %q", head)
	}
	c.SetDeadline(time.Time{})
	return &Conn{c: c, r: r}, nil
}

// write sends one masked frame of the given opcode.
func (w *Conn) write(op byte, msg []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.out[:0]
	switch n := len(msg); {
	case n <= 125:
		b = append(b, 0x80|op, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|op, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|op, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, wsMask[:]...)
	for i, c := range msg {
		b = append(b, c^wsMask[i&3])
	}
	w.out = b
	_, err := w.c.Write(b)
	return err
}

// WriteText sends a text frame.
func (w *Conn) WriteText(msg []byte) error { return w.write(0x1, msg) }

// Next reads frames until a whole data message arrived and returns its
// payload (valid until the next call). Pings are answered, pongs skipped;
// a close frame ends the connection with io.EOF.
func (w *Conn) Next() ([]byte, error) {
	msg := w.buf[:0]
	for {
		if _, err := io.ReadFull(w.r, w.hdr[:2]); err != nil {
			return nil, err
		}
		n := uint64(w.hdr[1] & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(w.r, w.hdr[2:4]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(w.hdr[2:4]))
		case 127:
			if _, err := io.ReadFull(w.r, w.hdr[2:10]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(w.hdr[2:10])
		}
		if w.hdr[1]&0x80 != 0 {
			return nil, errors.New("masked frame from the server")
		}
		if n > 16<<20 {
			return nil, fmt.Errorf("frame of %d bytes", n)
		}
		op, fin := w.hdr[0]&0x0f, w.hdr[0]&0x80 != 0
		if op >= 8 { // control frame: read it whole, apart from msg
			var ctl [125]byte
			if _, err := io.ReadFull(w.r, ctl[:n]); err != nil {
				return nil, err
			}
			switch op {
			case 8:
				w.write(0x8, ctl[:min(n, 2)])
				return nil, io.EOF
			case 9:
				if err := w.write(0xA, ctl[:n]); err != nil {
					return nil, err
				}
			}
			continue
		}
		start := len(msg)
		msg = slices.Grow(msg, int(n))[:start+int(n)]
		if _, err := io.ReadFull(w.r, msg[start:]); err != nil {
			return nil, err
		}
		if fin {
			w.buf = msg
			return msg, nil
		}
	}
}

// Close closes the connection.
func (w *Conn) Close() { w.c.Close() }

// SetDeadline bounds the reads and writes that follow (zero: none).
func (w *Conn) SetDeadline(t time.Time) error { return w.c.SetDeadline(t) }
