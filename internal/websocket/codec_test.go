package websocket

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/workerman-go/workerman/internal/codectest"
	"github.com/workerman-go/workerman/protocol"
)

const testHandshake = "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
	"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"

func maskedFrame(fin bool, rsv, op byte, payload []byte) []byte {
	var key [4]byte
	rand.Read(key[:])
	f := appendFrameHeader(nil, 0, 0, len(payload), &key)
	b0 := op | rsv<<4
	if fin {
		b0 |= 0x80
	}
	f[0] = b0
	for i, c := range payload {
		f = append(f, c^key[i%4])
	}
	return f
}

// feed runs a byte stream through the codec in pieces and returns the
// messages it delivered.
func feed(codec *Codec, c protocol.Conn, stream []byte, step int) ([]protocol.Message, error) {
	var out []protocol.Message
	err := codectest.Feed(codec, c, stream, step, func(m protocol.Message) {
		if m.Type != protocol.NoMessage {
			m.Data = bytes.Clone(m.Data)
			out = append(out, m)
		}
	})
	return out, err
}

func newTestCodec() *Codec {
	return Server(Config{Compression: true}).NewCodec().(*Codec)
}

func TestCodecHandshakeAndFrames(t *testing.T) {
	codec := newTestCodec()
	c := codectest.Conn{Max: 1 << 20}
	stream := append([]byte(testHandshake), maskedFrame(false, 0, 1, []byte("hel"))...)
	stream = append(stream, maskedFrame(true, 0, 9, []byte("ping"))...)
	stream = append(stream, maskedFrame(true, 0, 0, []byte("lo"))...)
	msgs, err := feed(codec, c, stream, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || msgs[0].Type != protocol.HandshakeMessage || msgs[1].Type != protocol.PingMessage || msgs[2].Type != protocol.TextMessage || string(msgs[2].Data) != "hello" {
		t.Fatalf("got %+v", msgs)
	}
	resp := string(msgs[0].Data)
	if !strings.HasPrefix(resp, "HTTP/1.1 101 ") || !strings.Contains(resp, "permessage-deflate") {
		t.Fatalf("response %q", resp)
	}
	if !codec.Compressed() {
		t.Fatal("compression not negotiated")
	}
}

func TestUTF8StreamMatchesStdlib(t *testing.T) {
	samples := [][]byte{
		[]byte("plain ascii"), []byte("κόσμε"), []byte("€𝄞✓"), {0xed, 0xa0, 0x80}, {0xf4, 0x90, 0x80, 0x80},
		{0xc0, 0x80}, {0xe0, 0x80, 0x80}, {0xf0, 0x80, 0x80, 0x80}, {0xff}, {0xce, 0xba, 0xe1}, {0x80},
		[]byte("a\xe2\x82\xacb"), {0xef, 0xbf, 0xbf}, {0xf4, 0x8f, 0xbf, 0xbf},
	}
	for _, s := range samples {
		for cut := 0; cut <= len(s); cut++ {
			for cut2 := cut; cut2 <= len(s); cut2++ {
				var st utf8Stream
				ok := st.feed(s[:cut]) && st.feed(s[cut:cut2]) && st.feed(s[cut2:]) && st.complete()
				if ok != utf8.Valid(s) {
					t.Fatalf("%x split at %d,%d: stream says %v, utf8.Valid %v", s, cut, cut2, ok, utf8.Valid(s))
				}
			}
		}
	}
}

func FuzzUTF8Stream(f *testing.F) {
	f.Add([]byte("κόσμε€𝄞"), 3)
	f.Add([]byte{0xed, 0xa0, 0x80, 'a'}, 1)
	f.Fuzz(func(t *testing.T, s []byte, step int) {
		step = 1 + codectest.Abs(step)%7
		var st utf8Stream
		ok := true
		for off := 0; off < len(s) && ok; off += step {
			ok = st.feed(s[off:min(off+step, len(s))])
		}
		if got := ok && st.complete(); got != utf8.Valid(s) {
			t.Fatalf("%x step %d: %v, utf8.Valid %v", s, step, got, utf8.Valid(s))
		}
	})
}

// FuzzWebSocketFrames throws arbitrary bytes at an established connection:
// no panic, the outcome does not depend on how the bytes are split, decoded
// text is valid UTF-8, and failures carry a close code a peer may receive.
func FuzzWebSocketFrames(f *testing.F) {
	f.Add(maskedFrame(true, 0, 1, []byte("hello")), 1)
	f.Add(append(maskedFrame(false, 0, 1, []byte{0xe2, 0x82}), maskedFrame(true, 0, 0, []byte{0xac})...), 2)
	f.Add(maskedFrame(true, 0, 8, []byte{0x03, 0xe8, 'b', 'y', 'e'}), 3)
	f.Add(maskedFrame(true, 4, 2, []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}), 5)
	f.Add([]byte{0x81, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}, 4)
	f.Add(maskedFrame(true, 0, 9, bytes.Repeat([]byte("p"), 126)), 7)
	f.Fuzz(func(t *testing.T, stream []byte, step int) {
		step = 1 + codectest.Abs(step)%64
		c := codectest.Conn{Max: 1 << 16}
		run := func(step int) ([]protocol.Message, error) {
			codec := newTestCodec()
			if _, err := feed(codec, c, []byte(testHandshake), len(testHandshake)); err != nil {
				t.Fatal(err)
			}
			codec.markEstablished()
			return feed(codec, c, stream, step)
		}
		whole, errWhole := run(max(len(stream), 1))
		split, errSplit := run(step)
		compareOutcomes(t, step, whole, errWhole, split, errSplit)
		for _, m := range whole {
			if m.Type == protocol.TextMessage && !utf8.Valid(m.Data) {
				t.Fatalf("invalid UTF-8 delivered: %x", m.Data)
			}
		}
	})
}

func isCode(err error, code int) bool {
	var ce *protocol.CloseError
	return errors.As(err, &ce) && ce.Code == code
}

// FuzzWebSocketHandshake: any request either gets a 101 or an HTTP error,
// never a panic.
func FuzzWebSocketHandshake(f *testing.F) {
	f.Add([]byte(testHandshake))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10, permessage-deflate; x=\"\r\n\r\n"))
	f.Fuzz(func(t *testing.T, req []byte) {
		codec := newTestCodec()
		c := codectest.Conn{Max: 1 << 20}
		n, err := codec.Input(c, req)
		if err != nil {
			if resp := codec.errorResponse(err); !bytes.HasPrefix(resp, []byte("HTTP/1.1 4")) {
				t.Fatalf("error %v answered with %q", err, resp)
			}
			return
		}
		if n == 0 || n > len(req) {
			return // needs more
		}
		m, err := codec.Decode(c, bytes.Clone(req[:n]))
		if err != nil {
			resp := codec.errorResponse(err)
			if !bytes.HasPrefix(resp, []byte("HTTP/1.1 4")) && !bytes.HasPrefix(resp, []byte("HTTP/1.1 5")) {
				t.Fatalf("error %v answered with %q", err, resp)
			}
			return
		}
		if !bytes.HasPrefix(m.Data, []byte("HTTP/1.1 101 ")) {
			t.Fatalf("accepted with %q", m.Data)
		}
	})
}
