package workerman

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/leakcheck"
	"github.com/workerman-go/workerman/protocol"
)

// A client that does not read fills the send buffer: OnBufferFull fires,
// later Sends are dropped with ErrSendBufferFull and reported through
// OnError, and OnBufferDrain fires when the client caught up. The client
// receives exactly what Send accepted.
func TestSendBufferFullDropDrain(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := &Worker{URI: "text://127.0.0.1:0", MaxSendBufferSize: 256 << 10, goroutines: goroutines}
		buffer := make(chan string, 100) // "full" and "drain", in order
		errs := make(chan error, 10)
		accepted := make(chan int, 1)
		w.OnBufferFull = func(c *Connection) { buffer <- "full" }
		w.OnBufferDrain = func(c *Connection) { buffer <- "drain" }
		w.OnError = func(c *Connection, err error) { errs <- err }
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		w.OnMessage = func(c *Connection, data []byte) {
			n := 0
			for ; n < 4000; n++ {
				if err := c.Send(chunk); err != nil {
					if !errors.Is(err, ErrSendBufferFull) {
						t.Errorf("Send: %v, want ErrSendBufferFull", err)
					}
					break
				}
			}
			accepted <- n
		}
		c := dial(t, serve(t, w))
		c.(*net.TCPConn).SetReadBuffer(16 << 10)
		c.Write([]byte("flood\n"))
		n := wait(t, accepted, "flood to stop")
		if n == 4000 {
			t.Fatal("Send never reported a full buffer")
		}
		if err := wait(t, errs, "OnError"); !errors.Is(err, ErrSendBufferFull) {
			t.Fatalf("OnError(%v)", err)
		}
		got := readN(t, c, n*(len(chunk)+1))
		if bytes.Count(got, []byte("\n")) != n {
			t.Fatalf("got %d messages, want the %d accepted", bytes.Count(got, []byte("\n")), n)
		}
		// Workerman reports a drain each time queued output was flushed and
		// a fill each time the queue reached the limit; a fill is never
		// reported twice without a drain in between, and after the client
		// caught up the last event is a drain.
		var seq []string
		for {
			ev := wait(t, buffer, "OnBufferFull/OnBufferDrain")
			if ev == "full" && slices.Contains(seq, "full") && seq[len(seq)-1] == "full" {
				t.Fatalf("two fills without a drain: %v", seq)
			}
			seq = append(seq, ev)
			if ev == "drain" && slices.Contains(seq, "full") && len(buffer) == 0 {
				break
			}
		}
		// Nothing beyond what was accepted arrives.
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if m, _ := c.Read(make([]byte, 1)); m != 0 {
			t.Fatal("dropped data was sent anyway")
		}
	})
}

func TestPauseResumeRecv(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := echoWorker("text", goroutines)
		conns := make(chan *Connection, 1)
		msgs := make(chan string, 10)
		w.OnConnect = func(c *Connection) {
			c.PauseRecv()
			conns <- c
		}
		w.OnMessage = func(c *Connection, data []byte) { msgs <- string(data) }
		c := dial(t, serve(t, w))
		sc := wait(t, conns, "OnConnect")
		c.Write([]byte("one\ntwo\n"))
		never(t, msgs, 150*time.Millisecond, "message while paused")
		sc.ResumeRecv()
		if m := wait(t, msgs, "first message"); m != "one" {
			t.Fatalf("got %q", m)
		}
		if m := wait(t, msgs, "second message"); m != "two" {
			t.Fatalf("got %q", m)
		}
		// Pause and resume again, with input arriving in between.
		sc.PauseRecv()
		c.Write([]byte("three\n"))
		never(t, msgs, 100*time.Millisecond, "message while paused")
		sc.ResumeRecv()
		if m := wait(t, msgs, "third message"); m != "three" {
			t.Fatalf("got %q", m)
		}
	})
}

func TestThousandConcurrentConnections(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := echoWorker("text", goroutines)
		w.Count = 2
		addr := serve(t, w)
		const conns, msgs = 1000, 5
		var wg sync.WaitGroup
		errs := make(chan error, conns)
		for i := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				r := bufio.NewReader(c)
				for j := range msgs {
					want := fmt.Sprintf("conn %d msg %d\n", i, j)
					if _, err := c.Write([]byte(want)); err != nil {
						errs <- err
						return
					}
					got, err := r.ReadString('\n')
					if err != nil || got != want {
						errs <- fmt.Errorf("conn %d: got %q, %v; want %q", i, got, err, want)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	})
}

// Close flushes what is queued before closing; Destroy drops it.
func TestCloseFlushesDestroyDrops(t *testing.T) {
	leakcheck.Check(t)
	const total = 24 << 20
	for _, destroy := range []bool{false, true} {
		name := "Close"
		if destroy {
			name = "Destroy"
		}
		t.Run(name, func(t *testing.T) {
			engines(t, func(t *testing.T, goroutines bool) {
				w := &Worker{URI: "tcp://127.0.0.1:0", MaxSendBufferSize: 64 << 20, goroutines: goroutines}
				done := make(chan int, 1)
				closed := make(chan struct{}, 1)
				w.OnClose = func(c *Connection) { closed <- struct{}{} }
				w.OnMessage = func(c *Connection, data []byte) {
					c.Send(bytes.Repeat([]byte("z"), total))
					queued := c.SendQueueSize()
					if destroy {
						c.Destroy()
					} else {
						c.Close()
					}
					if err := c.Send([]byte("late")); !errors.Is(err, ErrClosed) || !errors.Is(err, net.ErrClosed) {
						t.Errorf("Send after close: %v, want ErrClosed wrapping net.ErrClosed", err)
					}
					done <- queued
				}
				c := dial(t, serve(t, w))
				c.Write([]byte("go"))
				if q := wait(t, done, "close"); q == 0 {
					t.Fatal("nothing was queued; the test proves nothing")
				}
				got := expectEOF(t, c)
				if destroy && len(got) >= total {
					t.Fatalf("Destroy delivered all %d bytes", len(got))
				}
				if !destroy && len(got) != total {
					t.Fatalf("Close delivered %d of %d bytes", len(got), total)
				}
				c.Close()
				wait(t, closed, "OnClose")
			})
		})
	}
}

// However a connection ends, OnClose fires exactly once, after its last
// message.
func TestOnCloseExactlyOnce(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := &Worker{URI: "text://127.0.0.1:0", goroutines: goroutines}
		ev := newEvents()
		ev.attach(w)
		w.OnError = nil
		var afterClose atomic.Int32
		closedIDs := sync.Map{}
		w.OnClose = func(c *Connection) {
			closedIDs.Store(c.ID(), true)
			ev.mu.Lock()
			ev.closes[c.ID()]++
			ev.mu.Unlock()
			ev.closed <- c.ID()
		}
		w.OnMessage = func(c *Connection, data []byte) {
			if _, ok := closedIDs.Load(c.ID()); ok {
				afterClose.Add(1)
			}
			switch string(data) {
			case "close":
				c.Close([]byte("bye"))
			case "destroy":
				c.Destroy()
			case "both":
				var wg sync.WaitGroup
				for range 8 {
					wg.Add(3)
					go func() { defer wg.Done(); c.Close() }()
					go func() { defer wg.Done(); c.Destroy() }()
					go func() { defer wg.Done(); c.Send([]byte("x")) }()
				}
				wg.Wait()
			default:
				c.Send(data)
			}
		}
		addr := serve(t, w)
		endings := map[string]func(c net.Conn){
			"peer closes": func(c net.Conn) { c.Write([]byte("hi\n")); c.Close() },
			"peer resets": func(c net.Conn) {
				c.Write([]byte("hi\n"))
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			},
			"server closes":    func(c net.Conn) { c.Write([]byte("close\n")); expectEOF(t, c); c.Close() },
			"server destroys":  func(c net.Conn) { c.Write([]byte("destroy\n")); expectEOF(t, c); c.Close() },
			"close races kill": func(c net.Conn) { c.Write([]byte("both\n")); expectEOF(t, c); c.Close() },
			"messages then eof": func(c net.Conn) {
				c.Write([]byte(strings.Repeat("m\n", 100)))
				c.(*net.TCPConn).CloseWrite()
				if got := expectEOF(t, c); len(got) != 200 {
					t.Errorf("half-closed peer got %d bytes of replies, want 200", len(got))
				}
				c.Close()
			},
		}
		for name, end := range endings {
			c := dial(t, addr)
			end(c)
			id := wait(t, ev.closed, "OnClose after "+name)
			_ = id
		}
		// Shutdown closes the rest; then count.
		open := dial(t, addr)
		open.Write([]byte("hi\n"))
		readN(t, open, 3)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			w.Shutdown(ctx)
		}()
		expectEOF(t, open)
		open.Close()
		wait(t, ev.closed, "OnClose at shutdown")
		<-w.Done()
		never(t, ev.closed, 50*time.Millisecond, "extra OnClose")
		for id, n := range ev.closeCounts() {
			if n != 1 {
				t.Errorf("connection %d: OnClose ran %d times", id, n)
			}
		}
		if len(ev.closeCounts()) != len(endings)+1 {
			t.Errorf("%d connections closed, want %d", len(ev.closeCounts()), len(endings)+1)
		}
		if afterClose.Load() != 0 {
			t.Error("OnMessage ran after OnClose")
		}
	})
}

// A callback that blocks holds up its own connection only.
func TestBlockingCallbackStallsNobodyElse(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := echoWorker("text", goroutines)
		release := make(chan struct{})
		blocked := make(chan struct{}, 1)
		w.OnMessage = func(c *Connection, data []byte) {
			if string(data) == "block" {
				blocked <- struct{}{}
				<-release
			}
			c.Send(data)
		}
		addr := serve(t, w)
		slow := dial(t, addr)
		slow.Write([]byte("block\nafter\n"))
		wait(t, blocked, "callback to block")
		for i := range 20 {
			c := dial(t, addr)
			r := bufio.NewReader(c)
			msg := fmt.Sprintf("quick %d\n", i)
			c.Write([]byte(msg))
			if got := readLine(t, r, c); got != msg {
				t.Fatalf("got %q", got)
			}
		}
		close(release)
		r := bufio.NewReader(slow)
		if got := readLine(t, r, slow); got != "block\n" {
			t.Fatalf("got %q", got)
		}
		if got := readLine(t, r, slow); got != "after\n" {
			t.Fatalf("got %q, order lost", got)
		}
	})
}

// Callbacks run on the event loop, and a callback that blocks does not
// hold up the loop: a message that arrives with the blocking one, for
// another connection of the same loop (Count 1), is answered long before
// the blocked callback returns (the engine's watchdog moves the loop on
// within a millisecond or two; the bound here leaves room for a loaded
// machine), and so are messages that come while it blocks.
func TestBlockingCallbackDelaysOthersBriefly(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := echoWorker("text", goroutines)
		release := make(chan struct{})
		w.OnMessage = func(c *Connection, data []byte) {
			if string(data) == "block" {
				select {
				case <-release:
				case <-time.After(5 * time.Second):
				}
			}
			c.Send(data)
		}
		addr := serve(t, w)
		slow, quick := dial(t, addr), dial(t, addr)
		qr := bufio.NewReader(quick)
		start := time.Now()
		slow.Write([]byte("block\n"))
		quick.Write([]byte("first\n"))
		if got := readLine(t, qr, quick); got != "first\n" {
			t.Fatalf("got %q", got)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Fatalf("a message that came with a blocking one waited %v", d)
		}
		for i := range 10 {
			start := time.Now()
			msg := fmt.Sprintf("during %d\n", i)
			quick.Write([]byte(msg))
			if got := readLine(t, qr, quick); got != msg {
				t.Fatalf("got %q", got)
			}
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Fatalf("a message while another connection's callback blocks waited %v", d)
			}
		}
		close(release)
		if got := readLine(t, bufio.NewReader(slow), slow); got != "block\n" {
			t.Fatalf("got %q", got)
		}
	})
}

// A stop of the engine in the pass that also read a message leaves neither
// unhandled: whatever the last pass read is handled and every connection
// hears OnClose (the loop gives the pass's callbacks to the pool instead
// of running them; once, they were dropped and OnClose never came).
func TestEngineStopRunsTheLastPassCallbacks(t *testing.T) {
	for i := range 20 {
		w := &Worker{URI: "text://127.0.0.1:0"}
		got := make(chan string, 4)
		closed := make(chan struct{})
		w.OnMessage = func(c *Connection, data []byte) { got <- string(data) }
		w.OnClose = func(c *Connection) { close(closed) }
		if err := w.Listen(); err != nil {
			t.Fatal(err)
		}
		c := dial(t, w.Addr().String())
		c.Write([]byte("first\n"))
		wait(t, got, "the first message")
		c.Write([]byte("second\n"))
		w.r.eng.Stop()
		wait(t, closed, fmt.Sprintf("OnClose after the engine stopped (round %d)", i))
		c.Close()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// While callbacks lag, the server stops reading that connection (TCP
// back-pressure) instead of buffering without bound; once they catch up every
// message arrives, in order.
func TestInputBackpressureLosesNothing(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := &Worker{URI: "text://127.0.0.1:0", goroutines: goroutines}
		release := make(chan struct{})
		var next atomic.Int64
		var bad atomic.Int64
		done := make(chan struct{})
		const lines = 60000
		w.OnMessage = func(c *Connection, data []byte) {
			if string(data) == "block" {
				<-release
				return
			}
			n, _ := strconv.Atoi(string(bytes.TrimLeft(data, "x")))
			if int64(n) != next.Load() {
				bad.Add(1)
			}
			if next.Add(1) == lines {
				close(done)
			}
		}
		c := dial(t, serve(t, w))
		c.Write([]byte("block\n"))
		var buf bytes.Buffer
		pad := strings.Repeat("x", 1000)
		for i := range lines {
			fmt.Fprintf(&buf, "%s%d\n", pad, i)
		}
		all := buf.Bytes() // about 60 MB
		c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Write(all)
		if err == nil {
			t.Fatalf("the server buffered all %d bytes while its callback was blocked", n)
		}
		c.SetWriteDeadline(time.Time{})
		close(release)
		if _, err := c.Write(all[n:]); err != nil {
			t.Fatal(err)
		}
		wait(t, done, "every message")
		if bad.Load() != 0 {
			t.Fatalf("%d messages out of order", bad.Load())
		}
	})
}

func TestPanicInCallbackClosesOnlyThatConnection(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := echoWorker("text", goroutines)
		w.Logger = quietLog()
		errs := make(chan error, 4)
		w.OnError = func(c *Connection, err error) { errs <- err }
		w.OnMessage = func(c *Connection, data []byte) {
			if string(data) == "panic" {
				panic("boom")
			}
			c.Send(data)
		}
		addr := serve(t, w)
		bad := dial(t, addr)
		good := dial(t, addr)
		bad.Write([]byte("panic\n"))
		var pe *PanicError
		if err := wait(t, errs, "OnError"); !errors.As(err, &pe) || pe.Value != "boom" || pe.Callback != "OnMessage" {
			t.Fatalf("OnError(%v), want a *PanicError from OnMessage", err)
		}
		expectEOF(t, bad)
		good.Write([]byte("fine\n"))
		if got := readLine(t, bufio.NewReader(good), good); got != "fine\n" {
			t.Fatalf("got %q", got)
		}
	})
}

// Send is safe from many goroutines at once; every message arrives whole.
func TestConcurrentSendsFromOtherGoroutines(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := &Worker{URI: "frame://127.0.0.1:0", MaxSendBufferSize: 64 << 20, goroutines: goroutines}
		conns := make(chan *Connection, 1)
		w.OnConnect = func(c *Connection) { conns <- c }
		c := dial(t, serve(t, w))
		sc := wait(t, conns, "connection")
		const senders, each = 8, 500
		var wg sync.WaitGroup
		for s := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					if err := sc.Send([]byte(fmt.Sprintf("%d:%d:%s", s, i, strings.Repeat("p", i%300)))); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		seen := make([]int, senders)
		for range senders * each {
			hdr := readN(t, c, 4)
			n := int(hdr[0])<<24 | int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
			body := string(readN(t, c, n-4))
			var s, i int
			fmt.Sscanf(body, "%d:%d:", &s, &i)
			if i != seen[s] || len(body) != len(fmt.Sprintf("%d:%d:", s, i))+i%300 {
				t.Fatalf("sender %d: got message %d (%d bytes), want %d", s, i, len(body), seen[s])
			}
			seen[s]++
		}
		wg.Wait()
	})
}

func TestCountInstances(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := echoWorker("text", goroutines)
		w.Count = 4
		var mu sync.Mutex
		started := map[int]int{}
		w.OnWorkerStart = func(w *Worker, id int) {
			mu.Lock()
			started[id]++
			mu.Unlock()
		}
		stopped := make(chan int, 4)
		w.OnWorkerStop = func(w *Worker, id int) { stopped <- id }
		perInstance := make(chan int, 40)
		w.OnConnect = func(c *Connection) { perInstance <- c.WorkerID() }
		addr := serve(t, w)
		for id := range 4 {
			if started[id] != 1 {
				t.Fatalf("OnWorkerStart ran %d times for instance %d", started[id], id)
			}
		}
		counts := map[int]int{}
		for range 40 {
			dial(t, addr)
			counts[wait(t, perInstance, "OnConnect")]++
		}
		for id := range 4 {
			if counts[id] != 10 {
				t.Fatalf("connections per instance: %v, want 10 each", counts)
			}
		}
		if n := w.ConnectionCount(); n != 40 {
			t.Fatalf("ConnectionCount %d", n)
		}
		if n := len(w.Connections()); n != 40 {
			t.Fatalf("len(Connections) %d", n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := w.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		got := map[int]bool{}
		for range 4 {
			got[wait(t, stopped, "OnWorkerStop")] = true
		}
		if len(got) != 4 {
			t.Fatalf("OnWorkerStop ids %v", got)
		}
	})
}

// The classic push pattern: a text:// worker started from OnWorkerStart lets
// a backend push to users of the outer worker.
func TestListenFromOnWorkerStartPush(t *testing.T) {
	leakcheck.Check(t)
	users := sync.Map{} // uid -> *Connection
	outer := &Worker{URI: "text://127.0.0.1:0"}
	inner := &Worker{URI: "text://127.0.0.1:0"}
	outer.OnWorkerStart = func(w *Worker, id int) {
		if id != 0 {
			return
		}
		inner.OnMessage = func(c *Connection, data []byte) {
			uid, msg, _ := strings.Cut(string(data), " ")
			if v, ok := users.Load(uid); ok {
				v.(*Connection).SendString(msg)
				c.SendString("ok")
			} else {
				c.SendString("offline")
			}
		}
		if err := inner.Listen(); err != nil {
			t.Error(err)
		}
	}
	logged := make(chan struct{}, 1)
	outer.OnMessage = func(c *Connection, data []byte) {
		if uid, ok := strings.CutPrefix(string(data), "login "); ok {
			c.SetValue(uid)
			users.Store(uid, c)
			logged <- struct{}{}
		}
	}
	outer.OnClose = func(c *Connection) {
		if uid, ok := c.Value().(string); ok {
			users.Delete(uid)
		}
	}
	user := dial(t, serve(t, outer))
	t.Cleanup(func() { inner.Close() })
	user.Write([]byte("login 42\n"))
	wait(t, logged, "login")
	backend := dial(t, inner.Addr().String())
	br := bufio.NewReader(backend)
	backend.Write([]byte("42 hello from the backend\n7 nobody\n"))
	if got := readLine(t, bufio.NewReader(user), user); got != "hello from the backend\n" {
		t.Fatalf("user got %q", got)
	}
	if a, b := readLine(t, br, backend), readLine(t, br, backend); a != "ok\n" || b != "offline\n" {
		t.Fatalf("backend got %q %q", a, b)
	}
}

type upperCodec struct{ protocol.Text }

func (upperCodec) Decode(c protocol.Conn, p []byte) (protocol.Message, error) {
	return protocol.Message{Data: bytes.ToUpper(bytes.TrimRight(p, "\r\n"))}, nil
}

func (upperCodec) Encode(c protocol.Conn, dst []byte, m protocol.Message) ([]byte, error) {
	dst = append(dst, m.Data...)
	return append(dst, "!\n"...), nil
}

func TestUserRegisteredProtocol(t *testing.T) {
	leakcheck.Check(t)
	protocol.Register("shout", protocol.Shared(upperCodec{}))
	w := echoWorker("shout", false)
	c := dial(t, serve(t, w))
	c.Write([]byte("hello\n"))
	if got := readLine(t, bufio.NewReader(c), c); got != "HELLO!\n" {
		t.Fatalf("got %q", got)
	}
	if err := (&Worker{URI: "nosuch://127.0.0.1:0"}).Listen(); err == nil || !strings.Contains(err.Error(), "unknown protocol") {
		t.Fatalf("unknown scheme: %v", err)
	}
}

// Pipe forwards one connection to another with back-pressure: while the
// destination's reader is slow the source stops reading, and nothing is lost.
func TestPipeBackpressure(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := &Worker{URI: "tcp://127.0.0.1:0", MaxSendBufferSize: 128 << 10, goroutines: goroutines}
		conns := make(chan *Connection, 2)
		w.OnConnect = func(c *Connection) { conns <- c }
		dropped := make(chan error, 1)
		w.OnError = func(c *Connection, err error) {
			select {
			case dropped <- err:
			default:
			}
		}
		addr := serve(t, w)
		src := dial(t, addr)
		a := wait(t, conns, "source")
		dst := dial(t, addr)
		b := wait(t, conns, "destination")
		a.Pipe(b)
		dst.(*net.TCPConn).SetReadBuffer(16 << 10)

		payload := bytes.Repeat([]byte("0123456789abcdef"), 2<<20) // 32 MB
		wrote := make(chan error, 1)
		go func() {
			_, err := src.Write(payload)
			wrote <- err
		}()
		never(t, wrote, 300*time.Millisecond, "source write finishing while the destination does not read")
		got := readSteadily(t, dst, len(payload))
		if !bytes.Equal(got, payload) {
			t.Fatal("piped bytes differ")
		}
		if err := wait(t, wrote, "source write"); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-dropped:
			t.Fatalf("pipe dropped data: %v", err)
		default:
		}
		src.Close()
		expectEOF(t, dst) // closing the source closes the destination
	})
}

func TestRemoteAndLocalAddress(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := echoWorker("text", goroutines)
		got := make(chan [4]string, 1)
		w.OnConnect = func(c *Connection) {
			got <- [4]string{c.RemoteIP(), strconv.Itoa(c.RemotePort()), c.LocalAddress(), fmt.Sprintf("%v %v %s %s", c.IsIPv4(), c.IsIPv6(), c.Protocol(), c.Transport())}
		}
		addr := serve(t, w)
		c := dial(t, addr)
		a := wait(t, got, "OnConnect")
		local := c.LocalAddr().(*net.TCPAddr)
		if a[0] != "127.0.0.1" || a[1] != strconv.Itoa(local.Port) || a[2] != addr || a[3] != "true false text tcp" {
			t.Fatalf("addresses %q (client %v, server %s)", a, local, addr)
		}
	})
}

func TestRunAllAndStopAll(t *testing.T) {
	leakcheck.Check(t)
	w := NewWorker("text://127.0.0.1:0")
	started := make(chan struct{})
	w.OnWorkerStart = func(*Worker, int) { close(started) }
	w.OnMessage = func(c *Connection, data []byte) {
		c.Send(data)
		if string(data) == "stop" {
			StopAll() // from inside a callback
		}
	}
	id := Timer.Add(time.Hour, func() {}, true)
	ret := make(chan error, 1)
	go func() { ret <- RunAll() }()
	wait(t, started, "RunAll to start the worker")
	c := dial(t, w.Addr().String())
	c.Write([]byte("stop\n"))
	if err := wait(t, ret, "RunAll to return"); err != nil {
		t.Fatal(err)
	}
	<-w.Done()
	if Timer.Del(id) {
		t.Fatal("RunAll left the timers running")
	}
	if err := w.Listen(); !errors.Is(err, ErrWorkerClosed) {
		t.Fatalf("Listen after stop: %v", err)
	}
}

func TestRunWithContext(t *testing.T) {
	leakcheck.Check(t)
	w := echoWorker("text", false)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	w.OnWorkerStart = func(*Worker, int) { close(ready) }
	ret := make(chan error, 1)
	go func() { ret <- w.Run(ctx) }()
	wait(t, ready, "start")
	c := dial(t, w.Addr().String())
	c.Write([]byte("x\n"))
	readN(t, c, 2)
	cancel()
	expectEOF(t, c)
	c.Close()
	if err := wait(t, ret, "Run to return"); err != nil {
		t.Fatal(err)
	}
	if err := w.Listen(); !errors.Is(err, ErrWorkerClosed) {
		t.Fatalf("Listen after Run: %v", err)
	}
	if err := (&Worker{URI: "text://127.0.0.1:0"}).Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown of a worker never started: %v", err)
	}
}

func TestBadListenURIs(t *testing.T) {
	leakcheck.Check(t)
	for _, uri := range []string{"", "127.0.0.1:80", "text://", "text://nohostport", "udp://nohostport", "ws://127.0.0.1:0"} {
		if err := (&Worker{URI: uri}).Listen(); err == nil {
			t.Errorf("Listen(%q) succeeded", uri)
		}
	}
	w := &Worker{URI: "text://127.0.0.1:0", Transport: "ssl"}
	if err := w.Listen(); err == nil {
		t.Error("ssl without TLSConfig succeeded")
	}
	a := echoWorker("text", false)
	addr := serve(t, a)
	b := &Worker{URI: "text://" + addr}
	if err := b.Listen(); err == nil {
		b.Close()
		t.Error("a second listener on a busy port succeeded")
	}
}

func TestUnlistenAndListenAgain(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		for _, network := range []string{"tcp", "unix"} {
			t.Run(network, func(t *testing.T) {
				w := echoWorker("text", goroutines)
				if network == "unix" {
					w.URI, w.Protocol = "unix://"+filepath.Join(t.TempDir(), "s"), "text"
				}
				addr := serve(t, w)
				c1 := dial(t, addr)
				r1 := bufio.NewReader(c1)
				c1.Write([]byte("before\n"))
				readLine(t, r1, c1)

				w.Unlisten()
				if w.Addr() != nil {
					t.Fatalf("Addr after Unlisten: %v", w.Addr())
				}
				if c, err := net.Dial(network, addr); err == nil {
					c.Close()
					t.Fatal("a connection was accepted after Unlisten")
				}
				c1.Write([]byte("still served\n"))
				if got := readLine(t, r1, c1); got != "still served\n" {
					t.Fatalf("after Unlisten: %q", got)
				}

				if err := w.Listen(); err != nil {
					t.Fatalf("Listen after Unlisten: %v", err)
				}
				if got := w.Addr().String(); got != addr {
					t.Fatalf("listening again on %s, not %s", got, addr)
				}
				if err := w.Listen(); !errors.Is(err, ErrWorkerStarted) {
					t.Fatalf("second Listen: %v", err)
				}
				c2 := dial(t, addr)
				c2.Write([]byte("after\n"))
				if got := readLine(t, bufio.NewReader(c2), c2); got != "after\n" {
					t.Fatalf("after Listen again: %q", got)
				}
				if n := w.ConnectionCount(); n != 2 {
					t.Fatalf("%d connections, want 2", n)
				}
			})
		}
	})
}

func TestAllWorkers(t *testing.T) {
	leakcheck.Check(t)
	declaredW := NewWorker("text://127.0.0.1:0")
	t.Cleanup(func() {
		globalMu.Lock()
		declared = slices.DeleteFunc(declared, func(w *Worker) bool { return w == declaredW })
		globalMu.Unlock()
	})
	listened := echoWorker("text", false)
	serve(t, listened)
	all := AllWorkers()
	if !slices.Contains(all, declaredW) || !slices.Contains(all, listened) {
		t.Fatalf("AllWorkers misses the declared or the listening worker: %v", all)
	}
}

func TestPauseAccept(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := echoWorker("text", goroutines)
		connected := make(chan struct{}, 4)
		w.OnConnect = func(*Connection) { connected <- struct{}{} }
		addr := serve(t, w)
		w.PauseAccept()
		c := dial(t, addr) // the kernel completes the handshake; nobody accepts
		never(t, connected, 200*time.Millisecond, "OnConnect while accepting is paused")
		w.ResumeAccept()
		wait(t, connected, "OnConnect after ResumeAccept")
		c.Write([]byte("hi\n"))
		readN(t, c, 3)
	})
}
