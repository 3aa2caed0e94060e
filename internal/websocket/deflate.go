package websocket

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"sync"

	"github.com/workerman-go/workerman/internal/bufpool"
	"github.com/workerman-go/workerman/protocol"
)

// permessage-deflate without context takeover: every message is compressed
// and decompressed on its own, with compressors and decompressors borrowed
// from pools for the duration of one message.

var (
	deflaters = sync.Pool{New: func() any {
		w, _ := flate.NewWriter(nil, flate.BestSpeed)
		return w
	}}
	inflaters = sync.Pool{New: func() any {
		return flate.NewReader(bytes.NewReader(nil))
	}}
)

// deflateTail ends a sync flush; RFC 7692 removes it from the frame and the
// receiver appends it back. The final empty stored block after it makes the
// decompressor end the stream.
var (
	deflateTail = []byte{0, 0, 0xff, 0xff}
	inflateTail = []byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}
)

// pooledWriter appends to a pooled buffer.
type pooledWriter struct{ b *[]byte }

func (w *pooledWriter) Write(p []byte) (int, error) {
	w.b = appendPooled(w.b, p)
	return len(p), nil
}

// deflateMessage compresses one message (RFC 7692 section 7.2.1).
func deflateMessage(p []byte) (*[]byte, error) {
	zw := deflaters.Get().(*flate.Writer)
	defer deflaters.Put(zw)
	out := &pooledWriter{b: bufpool.Get(0)}
	zw.Reset(out)
	if _, err := zw.Write(p); err != nil {
		return nil, err
	}
	if err := zw.Flush(); err != nil {
		return nil, err
	}
	b := out.b
	if n := len(*b); n >= 4 && bytes.Equal((*b)[n-4:], deflateTail) {
		*b = (*b)[:n-4]
	}
	return b, nil
}

// multiReader reads the payload, then the tail, without allocating.
type multiReader struct {
	a, b bytes.Reader
}

func (m *multiReader) Read(p []byte) (int, error) {
	if m.a.Len() > 0 {
		return m.a.Read(p)
	}
	return m.b.Read(p)
}

func (m *multiReader) ReadByte() (byte, error) {
	if m.a.Len() > 0 {
		return m.a.ReadByte()
	}
	return m.b.ReadByte()
}

// inflate decompresses one message, refusing to produce more than max bytes
// (a small compressed frame can expand enormously).
func inflate(p []byte, limit int) (*[]byte, error) {
	var src multiReader
	src.a.Reset(p)
	src.b.Reset(inflateTail)
	zr := inflaters.Get().(io.ReadCloser)
	defer inflaters.Put(zr)
	if err := zr.(flate.Resetter).Reset(&src, nil); err != nil {
		return nil, err
	}
	out := bufpool.Get(min(max(4*len(p), 512), limit+1))
	*out = (*out)[:0]
	for {
		if len(*out) == cap(*out) {
			if len(*out) > limit {
				bufpool.Put(out)
				return nil, &protocol.CloseError{Code: protocol.CloseMessageTooBig, Reason: fmt.Sprintf("inflated message exceeds %d bytes", limit)}
			}
			nb := bufpool.Get(min(2*cap(*out), limit+1))
			*nb = append((*nb)[:0], *out...)
			bufpool.Put(out)
			out = nb
		}
		n, err := zr.Read((*out)[len(*out):cap(*out)])
		*out = (*out)[:len(*out)+n]
		if len(*out) > limit {
			bufpool.Put(out)
			return nil, &protocol.CloseError{Code: protocol.CloseMessageTooBig, Reason: fmt.Sprintf("inflated message exceeds %d bytes", limit)}
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			bufpool.Put(out)
			return nil, &protocol.CloseError{Code: protocol.CloseInvalidPayload, Reason: "invalid compressed data: " + err.Error()}
		}
	}
}
