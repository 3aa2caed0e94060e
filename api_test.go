package workerman

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/leakcheck"
)

// Per-connection limits override the worker's, and SendRaw skips the codec.
func TestPerConnectionLimitsAndSendRaw(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := echoWorker("text", goroutines)
		limited := make(chan *Connection, 2)
		errs := make(chan error, 4)
		w.OnConnect = func(c *Connection) {
			c.SendRaw([]byte("raw:")) // no newline: the codec is skipped
			limited <- c
		}
		w.OnError = func(c *Connection, err error) { errs <- err }
		addr := serve(t, w)

		small := dial(t, addr)
		s := wait(t, limited, "OnConnect")
		s.SetMaxPackageSize(8)
		s.SetMaxSendBufferSize(1 << 10)
		if s.MaxPackageSize() != 8 || s.MaxSendBufferSize() != 1<<10 {
			t.Fatalf("limits %d, %d", s.MaxPackageSize(), s.MaxSendBufferSize())
		}
		normal := dial(t, addr)
		n := wait(t, limited, "OnConnect")
		if n.MaxPackageSize() != DefaultMaxPackageSize || n.MaxSendBufferSize() != DefaultMaxSendBufferSize {
			t.Fatalf("the other connection's limits changed: %d, %d", n.MaxPackageSize(), n.MaxSendBufferSize())
		}
		if got := string(readN(t, small, 4)); got != "raw:" {
			t.Fatalf("SendRaw: %q", got)
		}
		readN(t, normal, 4)

		small.Write([]byte("0123456789\n")) // 11 bytes > 8
		if err := wait(t, errs, "OnError"); !errors.Is(err, ErrPackageTooLarge) {
			t.Fatalf("OnError: %v", err)
		}
		expectEOF(t, small)
		normal.Write([]byte("0123456789\n"))
		if got := string(readN(t, normal, 11)); got != "0123456789\n" {
			t.Fatalf("echo on the other connection: %q", got)
		}

		// A 1 KiB send buffer drops as soon as 1 KiB is queued.
		normalConn := n
		normalConn.SetMaxSendBufferSize(1 << 10)
		chunk := make([]byte, 64<<10)
		var sendErr error
		for i := 0; i < 10_000 && sendErr == nil; i++ {
			sendErr = normalConn.SendRaw(chunk)
		}
		if !errors.Is(sendErr, ErrSendBufferFull) {
			t.Fatalf("Send with a 1 KiB buffer and a peer that does not read: %v", sendErr)
		}
		if q := normalConn.tc.Queued(); q >= (1<<10)+len(chunk) {
			t.Fatalf("%d bytes queued with a 1 KiB send buffer", q)
		}
	})
}

func TestLocalIPAndPort(t *testing.T) {
	leakcheck.Check(t)
	w := echoWorker("text", false)
	got := make(chan string, 1)
	w.OnConnect = func(c *Connection) { got <- c.LocalIP() + " " + strconv.Itoa(c.LocalPort()) }
	addr := serve(t, w)
	dial(t, addr)
	_, port, _ := net.SplitHostPort(addr)
	if g := wait(t, got, "OnConnect"); g != "127.0.0.1 "+port {
		t.Fatalf("LocalIP LocalPort %q, listening on %s", g, addr)
	}
}

func TestCancelReconnect(t *testing.T) {
	leakcheck.Check(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // a closed port: every attempt fails
	a := NewAsyncConnection("text://" + addr)
	attempts := make(chan struct{}, 8)
	a.OnError = func(*AsyncConnection, error) { attempts <- struct{}{} }
	a.OnClose = func(a *AsyncConnection) {
		a.Reconnect(50 * time.Millisecond)
		a.CancelReconnect()
	}
	if err := a.Connect(); err != nil {
		t.Fatal(err)
	}
	wait(t, attempts, "the failed connect")
	never(t, attempts, 300*time.Millisecond, "an attempt after CancelReconnect")
}

func TestRunAllContext(t *testing.T) {
	leakcheck.Check(t)
	w := NewWorker("text://127.0.0.1:0")
	w.OnMessage = func(c *Connection, data []byte) { c.Send(data) }
	started := make(chan struct{})
	w.OnWorkerStart = func(*Worker, int) { close(started) }
	ctx, cancel := context.WithCancel(context.Background())
	ret := make(chan error, 1)
	go func() { ret <- RunAllContext(ctx) }()
	wait(t, started, "the worker to start")
	c := dial(t, w.Addr().String())
	c.Write([]byte("x\n"))
	if got := readLine(t, bufio.NewReader(c), c); got != "x\n" {
		t.Fatalf("echo %q", got)
	}
	cancel()
	if err := wait(t, ret, "RunAllContext to return"); err != nil {
		t.Fatal(err)
	}
	expectEOF(t, c)
	<-w.Done()
}
