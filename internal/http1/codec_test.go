package http1

import (
	"errors"
	"testing"

	"github.com/workerman-go/workerman/internal/codectest"
	"github.com/workerman-go/workerman/protocol"
)

// frameHTTP feeds a stream to the codec in pieces and describes the
// requests it decoded (method, path, body).
func frameHTTP(codec *Codec, stream []byte, step int) ([]string, error) {
	var out []string
	err := codectest.Feed(codec, codectest.Conn{Max: 1 << 16}, stream, step, func(m protocol.Message) {
		r := m.Value.(*protocol.Request)
		out = append(out, r.Method+" "+r.URL.Path+" "+string(r.RawBody()))
	})
	return out, err
}

func FuzzHTTPRequest(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 1)
	f.Add([]byte("POST /a?b=c HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /2 HTTP/1.0\r\n\r\n"), 3)
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n"), 2)
	f.Add([]byte("PUT / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab"), 4)
	f.Fuzz(func(t *testing.T, stream []byte, step int) {
		step = 1 + codectest.Abs(step)%64
		whole, errWhole := frameHTTP(New(Config{}).NewCodec().(*Codec), stream, max(len(stream), 1))
		split, errSplit := frameHTTP(New(Config{}).NewCodec().(*Codec), stream, step)
		if (errWhole == nil) != (errSplit == nil) {
			// Splitting may only make an error show earlier, never invent one
			// for a stream that is fine whole, nor hide one.
			t.Fatalf("whole: %v; split by %d: %v", errWhole, step, errSplit)
		}
		if len(whole) != len(split) {
			t.Fatalf("%d vs %d requests", len(whole), len(split))
		}
		for i := range whole {
			if whole[i] != split[i] {
				t.Fatalf("request %d: %q vs %q", i, whole[i], split[i])
			}
		}
		for _, err := range []error{errWhole, errSplit} {
			var he *protocol.HTTPError
			if err != nil && !errors.As(err, &he) && !errors.Is(err, protocol.ErrPackageTooLarge) {
				t.Fatalf("error of type %T: %v", err, err)
			}
		}
	})
}
