//go:build linux

package engine

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/leakcheck"
	"golang.org/x/sys/unix"
)

// Writes made during a pass on a loop with a ring (io_uring, or epoll with
// its ring for sends) are corked: queued, and sent with one send request
// per connection when the pass ends. These tests run a script per read on
// the loop, as the owner's callbacks do, on both engines.

// scriptOwner runs, after each pass, script on every connection that read
// in it, on the loop's goroutine.
type scriptOwner struct {
	script  func(c Conn, h *scriptConn, in string, t Turn)
	pending []*scriptConn // loop-owned
}

type scriptConn struct {
	o      *scriptOwner
	c      Conn
	in     []string // reads of this pass
	drains atomic.Int32
	closed chan error
}

func (h *scriptConn) OnRead(in []byte) (int, int) {
	if len(h.in) == 0 {
		h.o.pending = append(h.o.pending, h)
	}
	h.in = append(h.in, string(in))
	return len(in), 0
}
func (h *scriptConn) OnEOF()            { h.c.Close() }
func (h *scriptConn) OnDrain()          { h.drains.Add(1) }
func (h *scriptConn) OnClose(err error) { h.closed <- err }

type scriptWork struct {
	o     *scriptOwner
	items []scriptItem
	next  atomic.Int32
}

type scriptItem struct {
	h  *scriptConn
	in string
}

func (o *scriptOwner) afterPass(int) Work {
	if len(o.pending) == 0 {
		return nil
	}
	w := &scriptWork{o: o}
	for _, h := range o.pending {
		for _, in := range h.in {
			w.items = append(w.items, scriptItem{h, in})
		}
		h.in = nil
	}
	o.pending = nil
	return w
}

func (w *scriptWork) claim() *scriptItem {
	if i := int(w.next.Add(1)) - 1; i < len(w.items) {
		return &w.items[i]
	}
	return nil
}

func (w *scriptWork) Run(t Turn) {
	for it := w.claim(); it != nil; it = w.claim() {
		w.o.script(it.h.c, it.h, it.in, t)
	}
}

// Abandon: a pass slower than the watchdog's tick (the race detector, a
// busy machine) goes on off the loop, where writes are not corked.
func (w *scriptWork) Abandon() {
	go w.Run(Turn{new(atomic.Uint64), 1})
}
func (w *scriptWork) Done() {}

// corkEngines are the engines that cork: io_uring, and epoll with its ring
// for sends.
var corkEngines = []struct {
	name string
	new  func(Config) (Engine, error)
}{
	{"io_uring", NewUring},
	{"epoll", func(cfg Config) (Engine, error) {
		e, err := newLoopEngine(cfg.withDefaults(), false, false)
		if err == nil && e.loops[0].r == nil {
			e.Stop()
			return nil, ErrUringUnavailable
		}
		return e, err
	}},
}

// forCorkEngines runs f on each engine that corks, as a subtest.
func forCorkEngines(t *testing.T, f func(t *testing.T, newEngine func(Config) (Engine, error))) {
	for _, e := range corkEngines {
		t.Run(e.name, func(t *testing.T) { f(t, e.new) })
	}
}

// scriptServer serves script on an engine with one loop; it returns the
// listening address and a channel of the accepted connections' handlers.
func scriptServer(t *testing.T, newEngine func(Config) (Engine, error), script func(c Conn, h *scriptConn, in string, t Turn)) (string, chan *scriptConn) {
	t.Helper()
	o := &scriptOwner{script: script}
	eng, err := newEngine(Config{Loops: 1, AfterPass: o.afterPass})
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(eng.Stop)
	accepted := make(chan *scriptConn, 64)
	ln := &Listener{Network: "tcp", Address: "127.0.0.1:0"}
	if err := eng.Listen(ln, func(c Conn, _ int) Handler {
		h := &scriptConn{o: o, c: c, closed: make(chan error, 1)}
		accepted <- h
		return h
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), accepted
}

// dialScript connects to addr, closed when the test ends, with a deadline
// for its reads and writes.
func dialScript(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// A pass's writes reach the peer in order whatever their sizes: small ones
// corked together, one too big for the cork sent at once after what was
// corked, shared ones; corked bytes are reported as written (nothing
// queued, no OnDrain) though they are sent only when the pass ends.
func TestCorkedWritesInOrder(t *testing.T) {
	forCorkEngines(t, func(t *testing.T, newEngine func(Config) (Engine, error)) {
		leakcheck.Check(t)
		type seen struct {
			queued, reported, written int
			handedOff                 bool
		}
		during := make(chan seen, 1)
		var want bytes.Buffer
		big := bytes.Repeat([]byte("0123456789abcdef"), 8<<10) // 128 KiB: more than the cork
		shared := bytes.Repeat([]byte("s"), 2<<10)
		for i := range 50 {
			fmt.Fprintf(&want, "small %d\n", i)
		}
		want.Write(shared)
		want.Write(big)
		want.WriteString("after\n")
		addr, accepted := scriptServer(t, newEngine, func(c Conn, h *scriptConn, in string, t Turn) {
			q := 0
			for i := range 50 {
				n, err := c.Write(fmt.Appendf(nil, "small %d\n", i), 1<<20, false)
				if err != nil {
					panic(err)
				}
				q += n
			}
			n, _ := c.(SharedWriter).WriteShared(shared, 1<<20, false)
			q += n
			during <- seen{q, c.Queued(), int(c.BytesWritten()), t.HandedOff()}
			c.Write(big, 1<<20, false)
			c.Write([]byte("after\n"), 1<<20, false)
		})
		cl := dialScript(t, addr)
		h := <-accepted
		cl.Write([]byte("go"))
		got := make([]byte, want.Len())
		if _, err := io.ReadFull(cl, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			i := 0
			for i < len(got) && got[i] == want.Bytes()[i] {
				i++
			}
			t.Fatalf("the peer got the writes out of order: first difference at byte %d of %d", i, len(got))
		}
		// (Unless the pass was slow enough to be handed off the loop.)
		if s := <-during; s != (seen{}) && !s.handedOff {
			t.Errorf("during the pass, corked writes reported %d queued, Queued %d, %d written: want all 0 (sent when the pass ends)", s.queued, s.reported, s.written)
		}
		// (Counted once the kernel took them, which the peer may see first.)
		for deadline := time.Now().Add(5 * time.Second); int(h.c.BytesWritten()) != want.Len(); {
			if time.Now().After(deadline) {
				t.Fatalf("BytesWritten %d, sent %d", h.c.BytesWritten(), want.Len())
			}
			time.Sleep(time.Millisecond)
		}
		if n := h.drains.Load(); n != 0 {
			t.Errorf("OnDrain %d times: corked output sent whole was never reported queued", n)
		}
	})
}

// Many connections answered in one pass each get their own answers, over
// many passes (a send request per connection per pass, its completion
// matched to its connection).
func TestCorkedManyConnections(t *testing.T) {
	forCorkEngines(t, func(t *testing.T, newEngine func(Config) (Engine, error)) {
		leakcheck.Check(t)
		addr, _ := scriptServer(t, newEngine, func(c Conn, _ *scriptConn, in string, _ Turn) {
			c.Write([]byte(strings.ToUpper(in)), 1<<20, false)
		})
		const conns, rounds = 50, 40
		cls := make([]net.Conn, conns)
		rds := make([]*bufio.Reader, conns)
		for i := range cls {
			cls[i] = dialScript(t, addr)
			rds[i] = bufio.NewReader(cls[i])
		}
		for r := range rounds {
			for i, c := range cls {
				fmt.Fprintf(c, "conn %d round %d\n", i, r)
			}
			for i, rd := range rds {
				line, err := rd.ReadString('\n')
				if want := fmt.Sprintf("CONN %d ROUND %d\n", i, r); err != nil || line != want {
					t.Fatalf("conn %d round %d: %q, %v; want %q", i, r, line, err, want)
				}
			}
		}
	})
}

// Close after corked writes in the same pass sends them, then the FIN.
func TestCorkedThenClose(t *testing.T) {
	forCorkEngines(t, func(t *testing.T, newEngine func(Config) (Engine, error)) {
		leakcheck.Check(t)
		addr, accepted := scriptServer(t, newEngine, func(c Conn, _ *scriptConn, in string, _ Turn) {
			c.Write([]byte("last words"), 1<<20, false)
			c.Close()
			if _, err := c.Write([]byte("too late"), 1<<20, false); !errors.Is(err, net.ErrClosed) {
				panic(fmt.Sprintf("a write after Close: %v", err))
			}
		})
		cl := dialScript(t, addr)
		h := <-accepted
		cl.Write([]byte("bye"))
		got, err := io.ReadAll(cl)
		if err != nil || string(got) != "last words" {
			t.Fatalf("the peer read %q, %v; want the corked write, then EOF", got, err)
		}
		cl.Close()
		select {
		case err := <-h.closed:
			if err != nil {
				t.Errorf("OnClose(%v) after a clean close", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no OnClose")
		}
	})
}

// A connection destroyed while a send request waits for room (its peer
// reads nothing) is closed at once: the request is cancelled rather than
// holding the socket open, and its buffer is not reused before that.
func TestCorkedSendPendingDestroy(t *testing.T) {
	forCorkEngines(t, func(t *testing.T, newEngine func(Config) (Engine, error)) {
		leakcheck.Check(t)
		chunk := bytes.Repeat([]byte("p"), corkMax)
		addr, accepted := scriptServer(t, newEngine, func(c Conn, _ *scriptConn, in string, _ Turn) {
			if in == "destroy" {
				c.Destroy(nil)
				return
			}
			c.Write(chunk, 64<<20, false)
		})
		cl := dialScript(t, addr).(*net.TCPConn)
		cl.SetReadBuffer(4 << 10)
		h := <-accepted
		// Each "more" is a pass that corks a chunk: the socket fills, a send
		// request waits for room, the next chunks queue behind it.
		deadline := fillUntilQueued(t, cl, h.c, 4*corkMax, "more")
		local, remote := cl.RemoteAddr().String(), cl.LocalAddr().String()
		if !tcpState(t, local, remote, "01") {
			t.Fatal("the server's socket is not established before the destroy")
		}
		cl.Write([]byte("destroy"))
		select {
		case <-h.closed:
		case <-time.After(5 * time.Second):
			t.Fatal("no OnClose after Destroy")
		}
		// The server's socket leaves ESTABLISHED (it is closed, sending its
		// FIN or a reset) though its peer still reads nothing.
		for tcpState(t, local, remote, "01") {
			if time.Now().After(deadline) {
				t.Fatal("the destroyed connection's socket stays open: a send request holds it")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// fillUntilQueued has the peer cl, which reads nothing, send msg (a pass of
// the server's script each) until the server's connection c has at least n
// bytes queued; it returns the deadline it gave itself, for what follows.
func fillUntilQueued(t *testing.T, cl net.Conn, c Conn, n int, msg string) time.Time {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the peer reads nothing, but only %d bytes queued", c.Queued())
		}
		cl.Write([]byte(msg))
		time.Sleep(time.Millisecond) // pacing only: the loop is bounded by the deadline
	}
	return deadline
}

// tcpState reports whether /proc/net/tcp has the socket from local to
// remote (host:port, IPv4) in state st (hex, "01" = ESTABLISHED).
func tcpState(t *testing.T, local, remote, st string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Skip(err)
	}
	hex := func(a string) string {
		ap, err := net.ResolveTCPAddr("tcp4", a)
		if err != nil {
			t.Fatal(err)
		}
		ip := ap.IP.To4()
		return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], ap.Port)
	}
	l, r := hex(local), hex(remote)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == l && f[2] == r {
			return f[3] == st
		}
	}
	return false
}

// Corked bytes were reported written: a Destroy right after them (a reply
// then an abort, as an error response does) still writes them, as the
// write would have without corking, before the connection goes.
func TestCorkedThenDestroy(t *testing.T) {
	forCorkEngines(t, func(t *testing.T, newEngine func(Config) (Engine, error)) {
		leakcheck.Check(t)
		const reply = "HTTP/1.1 400 Bad Request\r\n\r\n"
		addr, accepted := scriptServer(t, newEngine, func(c Conn, _ *scriptConn, in string, _ Turn) {
			if q, err := c.Write([]byte(reply), 1<<20, false); q != 0 || err != nil {
				panic(fmt.Sprint(q, err))
			}
			c.Destroy(nil)
		})
		for range 5 {
			cl := dialScript(t, addr)
			h := <-accepted
			cl.Write([]byte("garbage"))
			got, _ := io.ReadAll(cl)
			if string(got) != reply {
				t.Fatalf("the peer read %q; want the reply written before the Destroy", got)
			}
			<-h.closed
		}
	})
}

// A send that waits for room (its peer reads nothing for a while) completes
// once the peer reads, though nothing else happens on the loop: the
// completion wakes it, and what was queued behind the send follows.
func TestCorkedSendCompletesLater(t *testing.T) {
	forCorkEngines(t, func(t *testing.T, newEngine func(Config) (Engine, error)) {
		leakcheck.Check(t)
		chunk := bytes.Repeat([]byte("0123456789abcdef"), corkMax/16)
		var sent atomic.Int64
		addr, accepted := scriptServer(t, newEngine, func(c Conn, _ *scriptConn, in string, _ Turn) {
			for range len(in) { // a chunk per byte read
				if _, err := c.Write(chunk, 64<<20, false); err == nil {
					sent.Add(int64(len(chunk)))
				}
			}
		})
		cl := dialScript(t, addr).(*net.TCPConn)
		h := <-accepted
		deadline := fillUntilQueued(t, cl, h.c, 2*corkMax, "m")
		// The loop goes idle; then the peer reads everything.
		time.Sleep(100 * time.Millisecond) // (idle, not synchronisation: nothing is awaited)
		want := sent.Load()
		got, err := io.CopyN(io.Discard, cl, want)
		if err != nil || got != want {
			fc := h.c.(*fdConn)
			fc.mu.Lock()
			ev, q := fc.events, fc.queued()
			fc.mu.Unlock()
			t.Fatalf("the peer read %d of %d bytes: %v (events %#x, queued %d)", got, want, err, ev, q)
		}
		for h.c.Queued() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d bytes still queued after the peer read everything", h.c.Queued())
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// The corking flags live in fdConn.events beside the epoll interest and
// never reach the kernel: a dialed connection told of queued bytes before
// the loop registered it (uSeen) is added with its interest only.
func TestCorkFlagsNotInEpollInterest(t *testing.T) {
	leakcheck.Check(t)
	// A listener whose accept queue is full: the connect stays pending.
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	unix.Listen(lfd, 0)
	sa, _ := unix.Getsockname(lfd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	for range 3 {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			defer c.Close()
		}
	}
	eng, err := newLoopEngine(Config{AfterPass: func(int) Work { return nil }}.withDefaults(), false, false)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Stop()
	if eng.loops[0].r == nil {
		t.Skip("no ring for sends here")
	}
	d := eng.Dial(DialRequest{Network: "tcp", Address: addr})
	c := d.(*fdConn)
	if q, err := d.Write([]byte("early"), 1<<20, false); err != nil || q == 0 {
		t.Fatalf("a write before the connect: %d queued, %v", q, err)
	}
	done := make(chan error, 1)
	d.Start(&collector{in: make(chan []byte, 8), eof: make(chan struct{}, 1), closed: make(chan error, 1)}, func(err error) { done <- err })
	defer func() { d.Destroy(nil); <-done }()
	var interest uint32
	for deadline := time.Now().Add(5 * time.Second); interest == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the dialing connection never appeared in the epoll set")
		}
		c.mu.Lock()
		fd := c.fd
		c.mu.Unlock()
		b, _ := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", c.loop.epfd))
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 4 && f[0] == "tfd:" && f[1] == fmt.Sprint(fd) {
				fmt.Sscanf(f[3], "%x", &interest)
			}
		}
	}
	if interest&corkFlags != 0 {
		t.Errorf("epoll interest %#x has corking bits %#x", interest, interest&corkFlags)
	}
}
