package engine

import "github.com/workerman-go/workerman/internal/bufpool"

// The queue is made of pooled chunks. Small queued writes are packed into
// one chunk of chunkSize, so that a burst of small messages becomes one
// writev entry. A large write goes into chunks as large as it, up to
// maxChunkSize, and the next write first fills the room left in the last
// chunk: the queue holds its bytes and less than one chunk of room. (A
// write in a single pooled buffer of the next power of two took twice its
// size: a client that stopped reading 64 KiB messages held twice its send
// buffer.) Chunks no smaller than a large write keep the spans few: the
// runtime keeps the descriptors of the most spans the heap ever had.
const (
	chunkSize    = 16 << 10
	maxChunkSize = 64 << 10
)

// outbox is the queue of bytes waiting for the socket to become writable.
// The zero value is empty and holds no memory. It is not safe for concurrent
// use; the connection's mutex guards it.
type outbox struct {
	chunks []*[]byte // chunks[0][off:] is the next byte to write
	off    int
	n      int
}

func (o *outbox) len() int {
	if o == nil {
		return 0
	}
	return o.n
}

// push copies p to the end of the queue: into the room left in the last
// chunk, then into new chunks.
func (o *outbox) push(p []byte) {
	o.n += len(p)
	if k := len(o.chunks); k > 0 {
		last := o.chunks[k-1]
		m := min(cap(*last)-len(*last), len(p))
		*last = append(*last, p[:m]...)
		p = p[m:]
	}
	for len(p) > 0 {
		b := bufpool.Get(min(max(len(p), chunkSize), maxChunkSize))
		m := copy(*b, p)
		*b = (*b)[:m]
		p = p[m:]
		o.chunks = append(o.chunks, b)
	}
}

// iovecs appends the queued bytes to dst, at most max entries.
func (o *outbox) iovecs(dst [][]byte, max int) [][]byte {
	for i, c := range o.chunks {
		if i == max {
			break
		}
		if i == 0 {
			dst = append(dst, (*c)[o.off:])
		} else {
			dst = append(dst, *c)
		}
	}
	return dst
}

// consume drops the first n bytes, which were written.
func (o *outbox) consume(n int) {
	o.n -= n
	for n > 0 {
		c := o.chunks[0]
		rest := len(*c) - o.off
		if n < rest {
			o.off += n
			return
		}
		n -= rest
		bufpool.Put(c)
		o.chunks[0] = nil
		o.chunks = o.chunks[1:]
		o.off = 0
	}
	if len(o.chunks) == 0 {
		o.chunks = nil // an idle connection keeps no queue memory
	}
}

// reset drops everything queued.
func (o *outbox) reset() {
	for _, c := range o.chunks {
		bufpool.Put(c)
	}
	o.chunks, o.off, o.n = nil, 0, 0
}
