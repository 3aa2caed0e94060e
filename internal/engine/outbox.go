package engine

import (
	"sync"

	"github.com/workerman-go/workerman/internal/bufpool"
)

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

// minShared is the least length a shared write is queued by reference
// rather than copied: below it, packing into a chunk costs less than a
// writev entry of its own.
const minShared = 1 << 10

// chunk is one entry of the queue: a pooled buffer the queue owns, or the
// bytes of a shared write (a frame built once for many connections),
// queued by reference and never written to.
type chunk struct {
	buf    *[]byte // from bufpool, owned; nil for shared bytes
	shared []byte
}

func (c chunk) bytes() []byte {
	if c.buf != nil {
		return *c.buf
	}
	return c.shared
}

// release gives an owned buffer back to the pool.
func (c chunk) release() {
	if c.buf != nil {
		bufpool.Put(c.buf)
	}
}

// outboxes keeps emptied queues: a connection takes one for each burst of
// output that the socket did not take at once, or that a loop corked (a
// handshake's answer, each message of a lockstep echo), and they are not
// left as garbage each time.
var outboxes = sync.Pool{New: func() any { return new(outbox) }}

func newOutbox() *outbox { return outboxes.Get().(*outbox) }

// freeOutbox takes back an empty queue that nothing refers to any more.
func freeOutbox(o *outbox) { outboxes.Put(o) }

// outbox is the queue of bytes waiting for the socket to become writable.
// The zero value is empty and holds no memory. It is not safe for concurrent
// use; the connection's mutex guards it.
type outbox struct {
	chunks []chunk // chunks[0].bytes()[off:] is the next byte to write
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
	if k := len(o.chunks); k > 0 && o.chunks[k-1].buf != nil {
		last := o.chunks[k-1].buf
		m := min(cap(*last)-len(*last), len(p))
		*last = append(*last, p[:m]...)
		p = p[m:]
	}
	for len(p) > 0 {
		b := bufpool.Get(min(max(len(p), chunkSize), maxChunkSize))
		m := copy(*b, p)
		*b = (*b)[:m]
		p = p[m:]
		o.chunks = append(o.chunks, chunk{buf: b})
	}
}

// pushShared queues p, which must not change until written: by reference
// when it is long enough, so that a frame sent to many slow connections
// is held once, not once per connection.
func (o *outbox) pushShared(p []byte) {
	if len(p) < minShared {
		o.push(p)
		return
	}
	o.n += len(p)
	o.chunks = append(o.chunks, chunk{shared: p})
}

// cork appends p to a queue kept as a single chunk, as big as what it holds
// (the caller keeps it small): what the io_uring loops send with one send
// request from one buffer. Shared bytes of minShared or more, alone in the
// queue, are kept by reference.
func (o *outbox) cork(p []byte, shared bool) {
	if len(o.chunks) == 0 {
		o.off, o.n = 0, len(p)
		if shared && len(p) >= minShared {
			o.chunks = append(o.chunks, chunk{shared: p})
			return
		}
		b := bufpool.Get(len(p))
		copy(*b, p)
		o.chunks = append(o.chunks, chunk{buf: b})
		return
	}
	c := &o.chunks[0]
	cur := c.bytes()[o.off:]
	if need := len(cur) + len(p); c.buf == nil || o.off > 0 || cap(*c.buf) < need {
		b := bufpool.Get(need)
		*b = append((*b)[:0], cur...)
		c.release()
		*c = chunk{buf: b}
		o.off = 0
	}
	*c.buf = append(*c.buf, p...)
	o.n += len(p)
}

// iovecs appends the queued bytes to dst, at most max entries.
func (o *outbox) iovecs(dst [][]byte, max int) [][]byte {
	for i, c := range o.chunks {
		if i == max {
			break
		}
		if i == 0 {
			dst = append(dst, c.bytes()[o.off:])
		} else {
			dst = append(dst, c.bytes())
		}
	}
	return dst
}

// consume drops the first n bytes, which were written.
func (o *outbox) consume(n int) {
	o.n -= n
	for n > 0 {
		c := o.chunks[0]
		rest := len(c.bytes()) - o.off
		if n < rest {
			o.off += n
			return
		}
		n -= rest
		c.release()
		o.chunks[0] = chunk{}
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
		c.release()
	}
	o.chunks, o.off, o.n = nil, 0, 0
}
