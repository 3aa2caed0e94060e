package protocol_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/workerman-go/workerman/internal/codectest"
	"github.com/workerman-go/workerman/protocol"
)

func TestTextInput(t *testing.T) {
	c := codectest.Conn{Max: 16}
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
		{name: "no newline at the limit", in: "0123456789abcdef", err: protocol.ErrPackageTooLarge},
		{name: "newline within the limit", in: "0123456789abcde\n", want: 16},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := protocol.Text{}.Input(c, []byte(tc.in))
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
		m, err := protocol.Text{}.Decode(nil, []byte(in))
		if err != nil || string(m.Data) != want {
			t.Errorf("Decode(%q) = %q, %v", in, m.Data, err)
		}
	}
	out, _ := protocol.Text{}.Encode(nil, nil, protocol.Message{Data: []byte("hi")})
	if string(out) != "hi\n" {
		t.Fatalf("Encode = %q", out)
	}
}

func TestFrame(t *testing.T) {
	c := codectest.Conn{Max: 1 << 20}
	cases := []struct {
		name string
		in   []byte
		want int
		err  error
	}{
		{name: "short header", in: []byte{0, 0, 0}, want: 0},
		{name: "header only", in: []byte{0, 0, 0, 4}, want: 4},
		{name: "announced longer than buffer", in: []byte{0, 0, 1, 0, 'a'}, want: 256},
		{name: "length below header", in: []byte{0, 0, 0, 3}, err: protocol.ErrBadPacket},
		{name: "zero length", in: []byte{0, 0, 0, 0}, err: protocol.ErrBadPacket},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := protocol.Frame{}.Input(c, tc.in)
			if !errors.Is(err, tc.err) || n != tc.want {
				t.Fatalf("Input = %d, %v; want %d, %v", n, err, tc.want, tc.err)
			}
		})
	}
	out, _ := protocol.Frame{}.Encode(nil, nil, protocol.Message{Data: []byte("ping")})
	if !bytes.Equal(out, []byte{0, 0, 0, 8, 'p', 'i', 'n', 'g'}) {
		t.Fatalf("Encode = % x", out)
	}
	m, _ := protocol.Frame{}.Decode(nil, out)
	if string(m.Data) != "ping" {
		t.Fatalf("Decode = %q", m.Data)
	}
}

func TestRegistry(t *testing.T) {
	for _, s := range []string{"tcp", "text", "frame"} {
		if _, ok := protocol.Lookup(s); !ok {
			t.Errorf("%s is not registered", s)
		}
	}
	protocol.Register("test-proto", protocol.Shared(protocol.Raw{}))
	if _, ok := protocol.Lookup("test-proto"); !ok {
		t.Fatal("protocol.Register did not register")
	}
	found := false
	for _, s := range protocol.Schemes() {
		found = found || s == "test-proto"
	}
	if !found {
		t.Fatal("protocol.Schemes misses a registered scheme")
	}
}

// splitAll returns the payloads of the messages in buf, fed step bytes at a
// time.
func splitAll(t *testing.T, codec protocol.Codec, c protocol.Conn, buf []byte, step int) ([][]byte, error) {
	var out [][]byte
	err := codectest.Feed(codec, c, buf, step, func(m protocol.Message) { out = append(out, bytes.Clone(m.Data)) })
	return out, err
}

// The framing must not depend on how the stream is split.
func FuzzText(f *testing.F) {
	f.Add([]byte("hello\nworld\r\n"), 1)
	f.Add([]byte("\n\n\r\n"), 3)
	f.Add(bytes.Repeat([]byte("x"), 100), 7)
	f.Fuzz(func(t *testing.T, stream []byte, step int) {
		c := codectest.Conn{Max: 64}
		step = 1 + codectest.Abs(step)%32
		whole, errWhole := splitAll(t, protocol.Text{}, c, stream, max(len(stream), 1))
		split, errSplit := splitAll(t, protocol.Text{}, c, stream, step)
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
			enc, _ := protocol.Text{}.Encode(nil, nil, protocol.Message{Data: m})
			n, err := protocol.Text{}.Input(codectest.Conn{Max: 1 << 20}, enc)
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
		c := codectest.Conn{Max: 1 << 16}
		step = 1 + codectest.Abs(step)%32
		whole, errWhole := splitAll(t, protocol.Frame{}, c, stream, max(len(stream), 1))
		split, errSplit := splitAll(t, protocol.Frame{}, c, stream, step)
		if len(whole) != len(split) && errWhole == nil && errSplit == nil {
			t.Fatalf("%d vs %d frames", len(whole), len(split))
		}
		for i := range min(len(whole), len(split)) {
			if !bytes.Equal(whole[i], split[i]) {
				t.Fatalf("frame %d differs", i)
			}
			enc, err := protocol.Frame{}.Encode(nil, nil, protocol.Message{Data: whole[i]})
			if err != nil {
				t.Fatal(err)
			}
			if n, err := (protocol.Frame{}).Input(c, enc); err != nil || n != len(enc) {
				t.Fatalf("re-encoded frame framed as %d, %v", n, err)
			}
		}
	})
}
