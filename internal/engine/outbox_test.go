package engine

import (
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/bufpool"
	"github.com/workerman-go/workerman/internal/leakcheck"
)

// held is the memory the queue's own chunks take (shared bytes are not
// the queue's).
func (o *outbox) held() int {
	n := 0
	for _, c := range o.chunks {
		if c.buf != nil {
			n += cap(*c.buf)
		}
	}
	return n
}

// contents is what the queue would write, in order.
func (o *outbox) contents() []byte {
	var b []byte
	for _, v := range o.iovecs(nil, len(o.chunks)) {
		b = append(b, v...)
	}
	return b
}

// The queue keeps what was pushed, in order, and takes no more memory than
// its bytes and one chunk's room, whatever the sizes of the writes (a
// large write does not take the next power of two), in few chunks.
func TestOutboxHoldsItsBytesAndAChunk(t *testing.T) {
	cases := []struct {
		name   string
		writes []int
	}{
		{"small writes", []int{40, 40, 100, 7, 16 << 10}},
		{"one large write", []int{64<<10 + 40}},
		{"large writes", []int{64<<10 + 40, 64<<10 + 40, 64<<10 + 40, 64<<10 + 40, 64<<10 + 40}},
		{"mixed", []int{2, 64<<10 + 40, 40, 1 << 20, 3, 100 << 10, 16<<10 - 1, 1}},
		{"larger than the largest pooled buffer", []int{3<<20 + 5}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var o outbox
			var want []byte
			check := func(when string) {
				t.Helper()
				if o.len() != len(want) {
					t.Fatalf("%s: len %d, want %d", when, o.len(), len(want))
				}
				if !bytes.Equal(o.contents(), want) {
					t.Fatalf("%s: the queue's bytes differ from what was pushed", when)
				}
				if h := o.held(); h > o.off+o.len()+maxChunkSize || h > 2*(o.off+o.len())+chunkSize {
					t.Fatalf("%s: %d bytes queued in chunks of %d bytes", when, o.len(), h)
				}
				if n, most := len(o.chunks), (o.off+o.len())/(maxChunkSize/2)+2; n > most {
					t.Fatalf("%s: %d bytes queued in %d chunks, more than %d", when, o.len(), n, most)
				}
			}
			for i, n := range tc.writes {
				p := bytes.Repeat([]byte{byte('a' + i)}, n)
				o.push(p)
				want = append(want, p...)
				check("after a push")
				// Write part of it, as a socket that takes some would.
				k := len(want) / 3
				o.consume(k)
				want = want[k:]
				check("after a partial write")
			}
			o.consume(len(want))
			if o.len() != 0 || o.chunks != nil {
				t.Fatalf("written out: %d bytes and %d chunks left", o.len(), len(o.chunks))
			}
		})
	}
}

// queueMemory is what a connection's queue holds: bytes and the memory of
// its chunks (those not handed to the goroutine engine's writer).
func queueMemory(c Conn) (queued, held int) {
	if q, ok := c.(interface{ queueMemory() (int, int) }); ok {
		return q.queueMemory()
	}
	return 0, 0
}

func (c *goConn) queueMemory() (queued, held int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.off + c.out.len(), c.out.held()
}

// A peer that does not read makes large messages queue until the send
// buffer is full. The queue then holds about the limit, not twice it
// (64 KiB messages each in a 128 KiB buffer), and when the peer reads at
// last it gets every accepted message, whole and in order.
func TestSlowReaderQueueOfLargeMessages(t *testing.T) {
	const (
		limit = 256 << 10
		size  = 64<<10 + 40 // a padded message and its frame header
	)
	for _, e := range testEngines(1) {
		t.Run(e.name, func(t *testing.T) {
			leakcheck.Check(t)
			eng, err := e.new()
			if err != nil {
				t.Fatal(err)
			}
			defer eng.Stop()
			conns := make(chan Conn, 1)
			closed := make(chan error, 1)
			ln := &Listener{Network: "tcp", Address: "127.0.0.1:0"}
			if err := eng.Listen(ln, func(c Conn, _ int) Handler {
				conns <- c
				return &echoHandler{c: c, got: make(chan []byte, 16), closed: closed}
			}); err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			peer, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			c := waitFor(t, conns, "the accept")

			var sent []byte
			full := false
			for i := 0; i < 1000 && !full; i++ {
				msg := bytes.Repeat([]byte{byte(i)}, size)
				switch _, err := c.Write(msg, limit, true); {
				case errors.Is(err, ErrFull):
					full = true
				case err != nil:
					t.Fatalf("write %d: %v", i, err)
				default:
					sent = append(sent, msg...)
				}
			}
			if !full {
				t.Fatalf("the send buffer never filled: %d bytes accepted", len(sent))
			}
			queued, held := queueMemory(c)
			if queued < limit && e.name == "platform" {
				t.Fatalf("full with %d bytes queued, limit %d", queued, limit)
			}
			if held > queued+maxChunkSize {
				t.Fatalf("%d bytes queued take %d bytes of chunks", queued, held)
			}

			peer.SetReadDeadline(time.Now().Add(20 * time.Second))
			got := make([]byte, len(sent))
			if _, err := io.ReadFull(peer, got); err != nil {
				t.Fatalf("reading the %d bytes sent: %v", len(sent), err)
			}
			if !bytes.Equal(got, sent) {
				t.Fatal("the peer got other bytes than the accepted messages, or in another order")
			}
			peer.Close()
			waitFor(t, closed, "OnClose")
		})
	}
}

// Shared bytes are queued by reference, in order with copied ones, and
// never go to the buffer pool once written, even when their capacity is a
// pool class's; short ones are copied.
func TestOutboxSharedBytes(t *testing.T) {
	shared := bytes.Repeat([]byte{'s'}, 64<<10) // the capacity of a pool class
	short := []byte("short shared")
	var o outbox
	o.push([]byte("head"))
	o.pushShared(shared)
	o.pushShared(short)
	o.push([]byte("tail"))
	want := slices.Concat([]byte("head"), shared, short, []byte("tail"))
	if !bytes.Equal(o.contents(), want) {
		t.Fatal("the queue's bytes differ from what was pushed")
	}
	if h := o.held(); h > 2*chunkSize {
		t.Fatalf("%d bytes of chunks: the shared bytes were copied", h)
	}
	if n := len(o.chunks); n != 3 {
		t.Fatalf("%d chunks, want 3: head, the shared bytes, short and tail copied together", n)
	}
	o.consume(10)
	o.consume(o.len() - 10)
	o.reset()
	var got []*[]byte
	for range 100 {
		b := bufpool.Get(64 << 10)
		if &(*b)[0] == &shared[0] {
			t.Fatal("the shared bytes went to the buffer pool")
		}
		got = append(got, b)
	}
	for _, b := range got {
		bufpool.Put(b)
	}
}

// A corked queue is one chunk no bigger than the next size class of what it
// holds (a 64 B frame corked for each of many connections takes 64 B each,
// not a 16 KiB chunk), grows in place or to a bigger class as writes are
// added, keeps a big shared write alone by reference, and copies it once
// another write joins it.
func TestOutboxCorkIsOneSmallChunk(t *testing.T) {
	var o outbox
	o.cork(bytes.Repeat([]byte("a"), 64), true)
	if len(o.chunks) != 1 || o.held() != 64 {
		t.Fatalf("a corked 64 B shared frame: %d chunks holding %d B, want 1 of 64 B", len(o.chunks), o.held())
	}
	var want []byte
	want = append(want, o.contents()...)
	for i := range 40 {
		p := bytes.Repeat([]byte{byte('b' + i%20)}, 100+i)
		o.cork(p, i%2 == 0)
		want = append(want, p...)
		if len(o.chunks) != 1 {
			t.Fatalf("after %d writes: %d chunks", i+2, len(o.chunks))
		}
		if h := o.held(); h >= 2*o.len() && h > 64 {
			t.Fatalf("%d B corked in %d B", o.len(), h)
		}
	}
	if !bytes.Equal(o.contents(), want) || o.len() != len(want) {
		t.Fatal("the cork lost or reordered bytes")
	}
	o.reset()

	big := bytes.Repeat([]byte("s"), 2*minShared)
	o.cork(big, true)
	if o.held() != 0 || &o.chunks[0].bytes()[0] != &big[0] {
		t.Fatal("a shared write alone in the cork was copied")
	}
	o.cork([]byte("tail"), false)
	if len(o.chunks) != 1 || o.held() == 0 || !bytes.Equal(o.contents(), append(slices.Clone(big), "tail"...)) {
		t.Fatal("a write joining a shared one: want one owned chunk with both")
	}
	o.reset()
}
