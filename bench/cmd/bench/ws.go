package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// wsClient is a lean WebSocket client for load generation: it sends masked
// text frames and reads unmasked server frames, skipping control frames.
type wsClient struct {
	c    net.Conn
	r    *bufio.Reader
	out  []byte
	hdr  [14]byte
	sink []byte
}

var wsMask = [4]byte{0x12, 0x34, 0x56, 0x78}

func dialWS(addr string, size int, secure bool) (client, error) {
	c, err := dialTCP(addr)
	if err != nil {
		return nil, err
	}
	if secure {
		// The servers' certificate is made by their process at start: the
		// load generator measures, it does not authenticate.
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		tc.SetDeadline(time.Time{})
		c = tc
	}
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		c.Close()
		return nil, err
	}
	r := bufio.NewReaderSize(c, 64<<10)
	var head []byte
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		b, err := r.ReadByte()
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("handshake: %w", err)
		}
		head = append(head, b)
	}
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 101")) {
		c.Close()
		return nil, fmt.Errorf("handshake: %q", head)
	}
	return &wsClient{c: c, r: r, sink: make([]byte, max(size, 64<<10))}, nil
}

func (w *wsClient) send(msg []byte) error {
	b := w.out[:0]
	switch n := len(msg); {
	case n <= 125:
		b = append(b, 0x81, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x81, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x81, 0x80|127)
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

// recv reads frames until a data frame ends.
func (w *wsClient) recv() error {
	for {
		if _, err := io.ReadFull(w.r, w.hdr[:2]); err != nil {
			return err
		}
		n := uint64(w.hdr[1] & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(w.r, w.hdr[2:4]); err != nil {
				return err
			}
			n = uint64(binary.BigEndian.Uint16(w.hdr[2:4]))
		case 127:
			if _, err := io.ReadFull(w.r, w.hdr[2:10]); err != nil {
				return err
			}
			n = binary.BigEndian.Uint64(w.hdr[2:10])
		}
		for n > 0 {
			m, err := w.r.Read(w.sink[:min(uint64(len(w.sink)), n)])
			if err != nil {
				return err
			}
			n -= uint64(m)
		}
		op := w.hdr[0] & 0x0f
		if op == 8 {
			return io.EOF
		}
		if op < 8 && w.hdr[0]&0x80 != 0 {
			return nil
		}
	}
}

func (w *wsClient) close() { w.c.Close() }
