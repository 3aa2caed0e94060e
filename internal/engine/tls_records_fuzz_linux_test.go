//go:build linux

package engine

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// fuzzEcho echoes and closes at the end of the stream.
type fuzzEcho struct{ c Conn }

func (h *fuzzEcho) OnRead(in []byte) (int, int) {
	h.c.Write(in, 1<<30, false)
	return len(in), 0
}
func (h *fuzzEcho) OnEOF()        { h.c.Close() }
func (h *fuzzEcho) OnDrain()      {}
func (h *fuzzEcho) OnClose(error) {}

// FuzzTLSRecords sends a TLS 1.3 server, after a real handshake, records
// the input describes, sealed under the client's real keys: application
// data, alerts, handshake messages and other content types, with padding,
// some with a flipped bit, in one write or split in two. Whatever they
// are, the server echoes a prefix of the application data in order and
// then, at the close_notify that ends the input (or at an earlier record
// it must refuse), closes the connection; it never panics.
//
// A record sealed with type 0 is read as the receiver reads it: its type
// is the last byte of its content that is not zero.
//
// The input is a list of records: a control byte (bits 0-1: data, alert,
// handshake, or the content type in the first content byte; bits 2-4:
// padding; bit 5: flip a bit; bit 6: split the stream before it), a length
// byte and the content.
func FuzzTLSRecords(f *testing.F) {
	f.Add([]byte{0, 5, 'h', 'e', 'l', 'l', 'o'})
	f.Add([]byte{0, 2, 'h', 'i', 2, 5, hsKeyUpdate, 0, 0, 1, 1, 0, 3, 'a', 'f', 't'})
	f.Add([]byte{0, 1, 'x', 1, 2, 1, 90, 0, 1, 'y'})
	f.Add([]byte{2, 2, hsKeyUpdate, 0, 66, 3, 0, 1, 1, 0, 1, 'z'})
	f.Add([]byte{0x20, 3, 'b', 'a', 'd'})
	f.Add([]byte{3, 2, 20, 1, 0x1c, 0})
	eng, err := New(Config{Loops: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(eng.Stop)
	addr, cfg := tlsServer(f, eng, func(c Conn, _ int) Handler { return &fuzzEcho{c: c} })
	f.Fuzz(func(t *testing.T, in []byte) {
		c := dialRaw(t, addr, cfg)
		var stream []byte
		var want []byte // the application data, in order
		split := -1
		for len(in) >= 2 {
			ctl, n := in[0], int(in[1])
			in = in[2:]
			content := in[:min(n, len(in))]
			in = in[len(content):]
			var typ byte
			switch ctl & 3 {
			case 0:
				typ = recApplicationData
			case 1:
				typ = 21
			case 2:
				typ = 22
			case 3:
				if len(content) == 0 {
					continue
				}
				typ, content = content[0], content[1:]
			}
			// The receiver's view (RFC 8446, 5.4): the type is the last
			// byte of the inner plaintext that is not zero, so a record
			// sealed with type 0 carries the type its content ends with.
			if inner := bytes.TrimRight(append(content[:len(content):len(content)], typ), "\x00"); len(inner) > 0 && inner[len(inner)-1] == recApplicationData {
				want = append(want, inner[:len(inner)-1]...)
			}
			rec := c.out.seal(typ, content, 3*int(ctl>>2&7))
			if ctl&0x20 != 0 {
				rec[len(rec)-1-int(ctl)%len(rec[5:])] ^= 0x10
			}
			if ctl&0x40 != 0 && split < 0 {
				split = len(stream)
			}
			stream = append(stream, rec...)
		}
		stream = append(stream, c.out.seal(21, []byte{1, 0}, 0)...) // close_notify
		if split < 0 {
			split = len(stream) / 2
		}
		go func() {
			c.nc.Write(stream[:split])
			c.nc.Write(stream[split:])
		}()
		got, err := c.readToEnd()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the server neither closed nor finished the echo (got %d of %d bytes)", len(got), len(want))
		}
		if !bytes.HasPrefix(want, got) {
			t.Fatalf("echo %q is not a prefix of the application data sent %q", got, want)
		}
	})
}

// FuzzTLSTicket: validTicket never reads out of bounds, and accepts a body
// exactly when its fields add up to its length.
func FuzzTLSTicket(f *testing.F) {
	f.Add([]byte{0, 0, 0, 60, 1, 2, 3, 4, 0, 0, 1, 7, 0, 0})
	f.Add([]byte{0, 0, 0, 60, 1, 2, 3, 4, 4, 9, 9, 9, 9, 0, 1, 24, 0, 4, 0, 42, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ok := validTicket(b)
		// The same check, written as a walk with explicit offsets.
		want := func() bool {
			off := 8
			if len(b) < off+1 {
				return false
			}
			off += 1 + int(b[off])
			if len(b) < off+2 {
				return false
			}
			n := int(b[off])<<8 | int(b[off+1])
			off += 2
			if n == 0 || len(b) < off+n+2 {
				return false
			}
			off += n
			n = int(b[off])<<8 | int(b[off+1])
			off += 2
			if len(b)-off != n {
				return false
			}
			for off < len(b) {
				if len(b)-off < 4 {
					return false
				}
				off += 4 + (int(b[off+2])<<8 | int(b[off+3]))
				if off > len(b) {
					return false
				}
			}
			return true
		}()
		if ok != want {
			t.Fatalf("validTicket(%x) = %v, want %v", b, ok, want)
		}
	})
}
