package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

type fakeConn struct{ max int }

func (f fakeConn) MaxPackageSize() int { return f.max }

func TestTextInput(t *testing.T) {
	c := fakeConn{max: 16}
	cases := []struct {
		name string
		in   string
		want int
		err  error
	}{
		{name: "empty", in: "", want: 0},
		{name: "partial", in: "abc", want: 0},
		{name: "one line", in: "abc\n", want: 4},
		{name: "crlf", in: "abc\r\n", want: 5},
		{name: "two lines", in: "a\nb\n", want: 2},
		{name: "empty line", in: "\n", want: 1},
		{name: "no newline at the limit", in: "0123456789abcdef", err: ErrPackageTooLarge},
		{name: "newline within the limit", in: "0123456789abcde\n", want: 16},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Text{}.Input(c, []byte(tc.in))
			if !errors.Is(err, tc.err) || n != tc.want {
				t.Fatalf("Input(%q) = %d, %v; want %d, %v", tc.in, n, err, tc.want, tc.err)
			}
		})
	}
}

func TestTextDecodeEncode(t *testing.T) {
	for in, want := range map[string]string{
		"abc\n": "abc", "abc\r\n": "abc", "abc\r\r\n": "abc", "\n": "", "a b\t\n": "a b\t",
	} {
		m, err := Text{}.Decode(nil, []byte(in))
		if err != nil || string(m.Data) != want {
			t.Errorf("Decode(%q) = %q, %v", in, m.Data, err)
		}
	}
	out, _ := Text{}.Encode(nil, nil, Message{Data: []byte("hi")})
	if string(out) != "hi\n" {
		t.Fatalf("Encode = %q", out)
	}
}

func TestFrame(t *testing.T) {
	c := fakeConn{max: 1 << 20}
	cases := []struct {
		name string
		in   []byte
		want int
		err  error
	}{
		{name: "short header", in: []byte{0, 0, 0}, want: 0},
		{name: "header only", in: []byte{0, 0, 0, 4}, want: 4},
		{name: "announced longer than buffer", in: []byte{0, 0, 1, 0, 'a'}, want: 256},
		{name: "length below header", in: []byte{0, 0, 0, 3}, err: ErrBadPacket},
		{name: "zero length", in: []byte{0, 0, 0, 0}, err: ErrBadPacket},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Frame{}.Input(c, tc.in)
			if !errors.Is(err, tc.err) || n != tc.want {
				t.Fatalf("Input = %d, %v; want %d, %v", n, err, tc.want, tc.err)
			}
		})
	}
	out, _ := Frame{}.Encode(nil, nil, Message{Data: []byte("ping")})
	if !bytes.Equal(out, []byte{0, 0, 0, 8, 'p', 'i', 'n', 'g'}) {
		t.Fatalf("Encode = % x", out)
	}
	m, _ := Frame{}.Decode(nil, out)
	if string(m.Data) != "ping" {
		t.Fatalf("Decode = %q", m.Data)
	}
}

func TestRegistry(t *testing.T) {
	for _, s := range []string{"tcp", "text", "frame"} {
		if _, ok := Lookup(s); !ok {
			t.Errorf("%s is not registered", s)
		}
	}
	Register("test-proto", Shared(Raw{}))
	if _, ok := Lookup("test-proto"); !ok {
		t.Fatal("Register did not register")
	}
	found := false
	for _, s := range Schemes() {
		found = found || s == "test-proto"
	}
	if !found {
		t.Fatal("Schemes misses a registered scheme")
	}
}

// feedCodec frames stream with codec the way a connection does, feeding it
// in pieces of step bytes, and hands every decoded message to got (its Data
// only valid during the call). It stops at the first error.
func feedCodec(codec Codec, c Conn, stream []byte, step int, got func(Message)) error {
	var pending []byte
	for off := 0; off < len(stream); off += step {
		pending = append(pending, stream[off:min(off+step, len(stream))]...)
		for len(pending) > 0 {
			n, err := codec.Input(c, pending)
			if err != nil {
				return err
			}
			if n == 0 || n > len(pending) {
				break
			}
			if n > c.MaxPackageSize() {
				return ErrPackageTooLarge
			}
			m, err := codec.Decode(c, bytes.Clone(pending[:n]))
			if err != nil {
				return err
			}
			got(m)
			pending = pending[n:]
		}
	}
	return nil
}

// splitAll returns the payloads of the messages in buf, fed step bytes at a
// time.
func splitAll(t *testing.T, codec Codec, c Conn, buf []byte, step int) ([][]byte, error) {
	var out [][]byte
	err := feedCodec(codec, c, buf, step, func(m Message) { out = append(out, bytes.Clone(m.Data)) })
	return out, err
}

// The framing must not depend on how the stream is split.
func FuzzText(f *testing.F) {
	f.Add([]byte("hello\nworld\r\n"), 1)
	f.Add([]byte("\n\n\r\n"), 3)
	f.Add(bytes.Repeat([]byte("x"), 100), 7)
	f.Fuzz(func(t *testing.T, stream []byte, step int) {
		c := fakeConn{max: 64}
		step = 1 + abs(step)%32
		whole, errWhole := splitAll(t, Text{}, c, stream, max(len(stream), 1))
		split, errSplit := splitAll(t, Text{}, c, stream, step)
		if (errWhole == nil) != (errSplit == nil) && len(stream) < 64 {
			t.Fatalf("error depends on splitting: %v vs %v", errWhole, errSplit)
		}
		if errWhole == nil && errSplit == nil {
			if len(whole) != len(split) {
				t.Fatalf("%d vs %d messages", len(whole), len(split))
			}
			for i := range whole {
				if !bytes.Equal(whole[i], split[i]) || bytes.ContainsAny(whole[i], "\n") {
					t.Fatalf("message %d: %q vs %q", i, whole[i], split[i])
				}
			}
		}
		// Round trip: encoding what was decoded frames back to the same.
		for _, m := range whole {
			enc, _ := Text{}.Encode(nil, nil, Message{Data: m})
			n, err := Text{}.Input(fakeConn{max: 1 << 20}, enc)
			if err != nil || n != len(enc) {
				t.Fatalf("re-encoded %q framed as %d, %v", m, n, err)
			}
		}
	})
}

func FuzzFrame(f *testing.F) {
	f.Add(append(binary.BigEndian.AppendUint32(nil, 9), "hello"...), 1)
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 5, 'x'}, 2)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, 1)
	f.Add([]byte{0, 0, 0, 1}, 1)
	f.Fuzz(func(t *testing.T, stream []byte, step int) {
		c := fakeConn{max: 1 << 16}
		step = 1 + abs(step)%32
		whole, errWhole := splitAll(t, Frame{}, c, stream, max(len(stream), 1))
		split, errSplit := splitAll(t, Frame{}, c, stream, step)
		if len(whole) != len(split) && errWhole == nil && errSplit == nil {
			t.Fatalf("%d vs %d frames", len(whole), len(split))
		}
		for i := range min(len(whole), len(split)) {
			if !bytes.Equal(whole[i], split[i]) {
				t.Fatalf("frame %d differs", i)
			}
			enc, err := Frame{}.Encode(nil, nil, Message{Data: whole[i]})
			if err != nil {
				t.Fatal(err)
			}
			if n, err := (Frame{}).Input(c, enc); err != nil || n != len(enc) {
				t.Fatalf("re-encoded frame framed as %d, %v", n, err)
			}
		}
	})
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
