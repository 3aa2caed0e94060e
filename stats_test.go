package workerman

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/leakcheck"
)

// eventually polls get until ok holds, for at most 10 seconds: a counter
// may be bumped a moment after the peer saw what it counts (the engine
// adds a write's bytes after the syscall returned).
func eventually(t *testing.T, what string, get func() Stats, ok func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := get()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: stats are %+v", what, s)
		}
		time.Sleep(2 * time.Millisecond) // polling with a bound, not synchronisation
	}
}

// statsEqual waits until w's figures are exactly want.
func statsEqual(t *testing.T, w *Worker, want Stats) {
	t.Helper()
	eventually(t, fmt.Sprintf("want %+v", want), w.Stats, func(s Stats) bool { return s == want })
}

// countingConn counts the bytes a client read and wrote.
type countingConn struct {
	net.Conn
	read, written atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// Messages and bytes are counted both ways, exactly, while connections are
// open and after they closed (when their counters move to the totals).
func TestStatsTraffic(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := echoWorker("text", goroutines)
		closed := make(chan struct{}, 4)
		w.OnClose = func(*Connection) { closed <- struct{}{} }
		if s := w.Stats(); s != (Stats{}) {
			t.Fatalf("before Listen: %+v", s)
		}
		addr := serve(t, w)

		c := dial(t, addr)
		r := bufio.NewReader(c)
		for _, m := range []string{"hello\n", "ab\n", "x\n"} {
			c.Write([]byte(m))
			if got := readLine(t, r, c); got != m {
				t.Fatalf("echo %q, want %q", got, m)
			}
		}
		want := Stats{Connections: 1, ConnectionsTotal: 1, MessagesReceived: 3, BytesReceived: 11, MessagesSent: 3, BytesSent: 11}
		statsEqual(t, w, want)

		c.Close()
		wait(t, closed, "OnClose")
		want.Connections = 0
		statsEqual(t, w, want)

		c2 := dial(t, addr)
		c2.Write([]byte("four\n"))
		readLine(t, bufio.NewReader(c2), c2)
		want = Stats{Connections: 1, ConnectionsTotal: 2, MessagesReceived: 4, BytesReceived: 16, MessagesSent: 4, BytesSent: 16}
		statsEqual(t, w, want)
	})
}

// On WebSocket, messages are the application's (a text and a binary
// message each way, plus the 101 the server wrote); bytes are those on the
// wire, framing and handshakes included.
func TestStatsWebSocketTraffic(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := wsEchoWorker(goroutines)
		addr := serve(t, w)
		cc := &countingConn{Conn: dial(t, addr)}
		ws := &rawWS{t: t, conn: cc}
		ws.r = bufio.NewReader(cc)
		ws.send([]byte(handshakeRequest("/")))
		if resp := ws.readResponse(); resp.StatusCode != 101 {
			t.Fatalf("handshake: %d", resp.StatusCode)
		}
		ws.send(text("hello"), frame(true, 0, 2, true, []byte{1, 2, 3}))
		ws.expectText("hello")
		expectBinary(t, ws.next(), []byte{1, 2, 3})
		eventually(t, "2 messages each way, the client's bytes in, the server's out", w.Stats, func(s Stats) bool {
			return s.MessagesReceived == 2 && s.MessagesSent == 3 && s.Connections == 1 &&
				s.BytesReceived == uint64(cc.written.Load()) && s.BytesSent == uint64(cc.read.Load())
		})
	})
}

// A peer that does not read: every OnBufferFull is counted once, every
// dropped send once; what was accepted and then written is counted when
// the peer read it.
func TestStatsFullBuffer(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := &Worker{URI: "text://127.0.0.1:0", MaxSendBufferSize: 256 << 10, goroutines: goroutines}
		var fulls, drops atomic.Uint64
		w.OnBufferFull = func(*Connection) { fulls.Add(1) }
		w.OnError = func(c *Connection, err error) {
			if errors.Is(err, ErrSendBufferFull) {
				drops.Add(1)
			}
		}
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		accepted := make(chan int, 1)
		var refused atomic.Uint64 // sends that returned ErrSendBufferFull
		w.OnMessage = func(c *Connection, data []byte) {
			n := 0
			for ; n < 4000 && c.Send(chunk) == nil; n++ {
			}
			refused.Add(1)
			if c.Send(chunk) == nil { // dropped again, unless the queue moved
				n++
			} else {
				refused.Add(1)
			}
			accepted <- n
		}
		c := dial(t, serve(t, w))
		c.(*net.TCPConn).SetReadBuffer(16 << 10)
		c.Write([]byte("flood\n"))
		n := wait(t, accepted, "the flood to stop")
		if n == 4000 {
			t.Fatal("Send never reported a full buffer")
		}
		s := eventually(t, "fills and drops as reported", w.Stats, func(s Stats) bool {
			return s.SendDropped == refused.Load() && drops.Load() == refused.Load() &&
				s.SendBufferFull >= 1 && s.SendBufferFull == fulls.Load()
		})
		if s.MessagesSent != uint64(n) || s.MessagesReceived != 1 {
			t.Fatalf("%d sent, %d received; want the %d accepted, 1", s.MessagesSent, s.MessagesReceived, n)
		}
		readSteadily(t, c, n*(len(chunk)+1))
		eventually(t, "every accepted byte written", w.Stats, func(s Stats) bool {
			return s.BytesSent == uint64(n*(len(chunk)+1)) && s.SendDropped == refused.Load()
		})
	})
}

// Every kind of bad input and every timeout ends its connection and is
// counted once, under its own kind and no other.
func TestStatsCodecErrors(t *testing.T) {
	const short = 100 * time.Millisecond
	cases := []struct {
		name   string
		worker func(goroutines bool) *Worker
		client func(t *testing.T, addr string) net.Conn
		want   CodecErrors
	}{
		{
			name:   "frame shorter than its header",
			worker: func(g bool) *Worker { return echoWorker("frame", g) },
			client: sends("\x00\x00\x00\x01"),
			want:   CodecErrors{BadPacket: 1},
		},
		{
			name: "text packet over MaxPackageSize",
			worker: func(g bool) *Worker {
				w := echoWorker("text", g)
				w.MaxPackageSize = 16
				return w
			},
			client: sends(strings.Repeat("a", 32)),
			want:   CodecErrors{PackageTooLarge: 1},
		},
		{
			name:   "unmasked WebSocket frame",
			worker: wsEchoWorker,
			client: func(t *testing.T, addr string) net.Conn {
				ws := dialWS(t, addr)
				ws.send(frame(true, 0, 1, false, []byte("hi")))
				return ws.conn
			},
			want: CodecErrors{BadPacket: 1},
		},
		{
			name: "WebSocket handshake refused",
			worker: func(g bool) *Worker {
				w := wsEchoWorker(g)
				w.OnWebSocketConnect = func(*Connection, *WebSocketRequest) error { return RejectWebSocket(401, "no") }
				return w
			},
			client: sends(handshakeRequest("/")),
			want:   CodecErrors{HandshakeFailed: 1},
		},
		{
			name:   "malformed HTTP request",
			worker: httpWorker,
			client: sends("BLAH\r\n\r\n"),
			want:   CodecErrors{BadPacket: 1},
		},
		{
			name: "idle timeout",
			worker: func(g bool) *Worker {
				w := echoWorker("text", g)
				w.IdleTimeout = short
				return w
			},
			client: sends(""),
			want:   CodecErrors{IdleTimeout: 1},
		},
		{
			name: "WebSocket handshake timeout",
			worker: func(g bool) *Worker {
				w := wsEchoWorker(g)
				w.WebSocket.HandshakeTimeout = short
				return w
			},
			client: sends(""),
			want:   CodecErrors{HandshakeTimeout: 1},
		},
		{
			name: "WebSocket heartbeat timeout",
			worker: func(g bool) *Worker {
				w := wsEchoWorker(g)
				w.WebSocket.PingInterval = short / 2
				w.WebSocket.PingNotResponseLimit = 1
				return w
			},
			client: func(t *testing.T, addr string) net.Conn { return dialWS(t, addr).conn },
			want:   CodecErrors{HeartbeatTimeout: 1},
		},
		{
			name: "HTTP request head timeout",
			worker: func(g bool) *Worker {
				w := httpWorker(g)
				w.ReadHeaderTimeout, w.IdleTimeout = short, time.Minute
				return w
			},
			client: sends("GET / HTTP/1.1\r\n"),
			want:   CodecErrors{RequestHeadTimeout: 1},
		},
	}
	engines(t, func(t *testing.T, goroutines bool) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				w := tc.worker(goroutines)
				closed := make(chan struct{}, 1)
				w.OnClose = func(*Connection) { closed <- struct{}{} }
				c := tc.client(t, serve(t, w))
				expectEOF(t, c)
				wait(t, closed, "OnClose")
				eventually(t, "one error of its kind", w.Stats, func(s Stats) bool {
					return s.CodecErrors == tc.want && s.Connections == 0
				})
				if got := w.Stats().CodecErrors.Total(); got != 1 {
					t.Fatalf("Total() = %d, want 1", got)
				}
			})
		}
	})
}

// sends returns a client that connects and sends s.
func sends(s string) func(t *testing.T, addr string) net.Conn {
	return func(t *testing.T, addr string) net.Conn {
		c := dial(t, addr)
		if s != "" {
			c.Write([]byte(s))
		}
		return c
	}
}

// With PoolSize 1 and a callback blocked, another connection's message
// waits for the pool: it is counted as queued while it waits, then as one
// wait with its duration.
func TestStatsPoolWait(t *testing.T) {
	leakcheck.Check(t)
	w := &Worker{URI: "text://127.0.0.1:0", PoolSize: 1}
	blocked, release := make(chan struct{}), make(chan struct{})
	w.OnMessage = func(c *Connection, data []byte) {
		if string(data) == "block" {
			close(blocked)
			<-release
		}
		c.Send(data)
	}
	addr := serve(t, w)
	a, b := dial(t, addr), dial(t, addr)
	a.Write([]byte("block\n"))
	wait(t, blocked, "the blocking callback")
	start := time.Now()
	b.Write([]byte("hi\n"))
	eventually(t, "one connection queued", w.Stats, func(s Stats) bool { return s.PoolQueued == 1 && s.PoolWaitCount == 0 })
	close(release)
	if got := readLine(t, bufio.NewReader(b), b); got != "hi\n" {
		t.Fatalf("echo %q", got)
	}
	most := time.Since(start)
	s := eventually(t, "one wait counted", w.Stats, func(s Stats) bool { return s.PoolQueued == 0 && s.PoolWaitCount == 1 })
	if s.PoolWaitDuration <= 0 || s.PoolWaitDuration > most {
		t.Fatalf("PoolWaitDuration %v, want more than 0 and at most %v", s.PoolWaitDuration, most)
	}
}

// ProcessStats sums the workers and the client side (AsyncConnection),
// and keeps a stopped worker's figures: it never goes down.
func TestProcessStats(t *testing.T) {
	leakcheck.Check(t)
	before := ProcessStats()
	w := echoWorker("text", false)
	if err := w.Listen(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			w.Close()
		}
	})

	a := NewAsyncConnection("text://" + w.Addr().String())
	replies, closed := make(chan string, 2), make(chan struct{})
	a.OnConnect = func(a *AsyncConnection) {
		a.SendString("a") // the codec adds the newline
		a.SendString("bc")
	}
	a.OnMessage = func(_ *AsyncConnection, data []byte) { replies <- string(data) }
	a.OnClose = func(*AsyncConnection) { close(closed) }
	if err := a.Connect(); err != nil {
		t.Fatal(err)
	}
	wait(t, replies, "the first reply")
	wait(t, replies, "the second reply")
	a.Close()
	wait(t, closed, "the client's OnClose")

	// Server and client each received and sent 2 messages of 5 bytes.
	want := Stats{ConnectionsTotal: 2, MessagesReceived: 4, BytesReceived: 10, MessagesSent: 4, BytesSent: 10}
	delta := func() Stats { return diffStats(ProcessStats(), before) }
	eventually(t, "the worker's and the client's traffic", delta, func(s Stats) bool { return s == want })

	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if got := delta(); got != want {
		t.Fatalf("after the worker stopped: %+v, want %+v", got, want)
	}
}

// diffStats is a - b, figure by figure.
func diffStats(a, b Stats) Stats {
	neg := b
	neg.ConnectionsTotal = -b.ConnectionsTotal
	neg.MessagesReceived, neg.BytesReceived = -b.MessagesReceived, -b.BytesReceived
	neg.MessagesSent, neg.BytesSent = -b.MessagesSent, -b.BytesSent
	neg.SendBufferFull, neg.SendDropped = -b.SendBufferFull, -b.SendDropped
	e := &neg.CodecErrors
	e.BadPacket, e.PackageTooLarge, e.HandshakeFailed = -e.BadPacket, -e.PackageTooLarge, -e.HandshakeFailed
	e.IdleTimeout, e.HandshakeTimeout, e.HeartbeatTimeout, e.RequestHeadTimeout = -e.IdleTimeout, -e.HandshakeTimeout, -e.HeartbeatTimeout, -e.RequestHeadTimeout
	neg.Connections, neg.PoolQueued = -b.Connections, -b.PoolQueued
	neg.PoolWaitCount, neg.PoolWaitDuration = -b.PoolWaitCount, -b.PoolWaitDuration
	a.add(neg)
	return a
}

// While connections come, talk and go on every instance, readings of
// Stats and ProcessStats never go down (a closing connection's counters
// move to its instance's totals under the lock Stats walks with), and the
// final figures are exact.
func TestStatsNeverGoDownUnderChurn(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := echoWorker("text", goroutines)
		w.Count = 2
		addr := serve(t, w)
		const clients, rounds, lines = 8, 5, 10

		done := make(chan struct{})
		readerDone := make(chan error, 1)
		go func() {
			var lastW, lastP Stats
			for {
				s, p := w.Stats(), ProcessStats()
				if err := notBelow(s, lastW); err != nil {
					readerDone <- fmt.Errorf("Worker.Stats: %w", err)
					return
				}
				if err := notBelow(p, lastP); err != nil {
					readerDone <- fmt.Errorf("ProcessStats: %w", err)
					return
				}
				lastW, lastP = s, p
				select {
				case <-done:
					readerDone <- nil
					return
				default:
				}
			}
		}()

		errs := make(chan error, clients)
		for range clients {
			go func() {
				errs <- func() error {
					for range rounds {
						c, err := net.DialTimeout("tcp", addr, 5*time.Second)
						if err != nil {
							return err
						}
						c.SetDeadline(time.Now().Add(10 * time.Second))
						r := bufio.NewReader(c)
						for range lines {
							c.Write([]byte("ping\n"))
							if got, err := r.ReadString('\n'); got != "ping\n" {
								c.Close()
								return fmt.Errorf("echo %q: %v", got, err)
							}
						}
						c.Close()
					}
					return nil
				}()
			}()
		}
		for range clients {
			if err := wait(t, errs, "a client"); err != nil {
				t.Fatal(err)
			}
		}
		const n = clients * rounds
		statsEqual(t, w, Stats{ConnectionsTotal: n, MessagesReceived: n * lines, BytesReceived: n * lines * 5,
			MessagesSent: n * lines, BytesSent: n * lines * 5})
		close(done)
		if err := wait(t, readerDone, "the reader"); err != nil {
			t.Fatal(err)
		}
	})
}

// notBelow reports the first counter of s below its value in last.
func notBelow(s, last Stats) error {
	type pair struct {
		name     string
		now, was uint64
	}
	for _, p := range []pair{
		{"ConnectionsTotal", s.ConnectionsTotal, last.ConnectionsTotal},
		{"MessagesReceived", s.MessagesReceived, last.MessagesReceived},
		{"BytesReceived", s.BytesReceived, last.BytesReceived},
		{"MessagesSent", s.MessagesSent, last.MessagesSent},
		{"BytesSent", s.BytesSent, last.BytesSent},
		{"SendBufferFull", s.SendBufferFull, last.SendBufferFull},
		{"SendDropped", s.SendDropped, last.SendDropped},
		{"CodecErrors", s.CodecErrors.Total(), last.CodecErrors.Total()},
		{"PoolWaitCount", s.PoolWaitCount, last.PoolWaitCount},
		{"PoolWaitDuration", uint64(s.PoolWaitDuration), uint64(last.PoolWaitDuration)},
	} {
		if p.now < p.was {
			return fmt.Errorf("%s went down from %d to %d", p.name, p.was, p.now)
		}
	}
	return nil
}
