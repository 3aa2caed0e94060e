package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// client is one load-generator connection speaking the server's protocol.
type client interface {
	send(msg []byte) error
	recv() error // one message back
	close()
}

// sources spreads client connections over several loopback addresses, so
// that large runs never run out of ephemeral ports.
var sources = func() []*net.TCPAddr {
	var s []*net.TCPAddr
	for i := 1; i <= 16; i++ {
		s = append(s, &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(i))})
	}
	return s
}()

var sourceNext atomic.Uint32

func dialTCP(addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: sources[sourceNext.Add(1)%uint32(len(sources))]}
	return d.Dial("tcp", addr)
}

func dialClient(proto, addr string, size int) (client, error) {
	switch proto {
	case "tcp":
		c, err := dialTCP(addr)
		if err != nil {
			return nil, err
		}
		return &tcpClient{c: c, buf: make([]byte, size)}, nil
	case "websocket", "wss":
		return dialWS(addr, size, proto == "wss")
	}
	return nil, fmt.Errorf("no client for %s", proto)
}

// tcpClient echoes raw bytes: a message is size bytes.
type tcpClient struct {
	c   net.Conn
	buf []byte
}

func (t *tcpClient) send(msg []byte) error { _, err := t.c.Write(msg); return err }
func (t *tcpClient) recv() error           { _, err := io.ReadFull(t.c, t.buf); return err }
func (t *tcpClient) close()                { t.c.Close() }

// dialMany opens n connections, each confirmed by one echo, parallel at a
// time.
func dialMany(proto, addr string, n, parallel int) ([]client, error) {
	conns := make([]client, n)
	var (
		wg       sync.WaitGroup
		firstErr atomic.Value
		sem      = make(chan struct{}, parallel)
	)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dialClient(proto, addr, 1)
			if err == nil {
				if err = c.send([]byte("x")); err == nil {
					err = c.recv()
				}
			}
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				if c != nil {
					c.close()
				}
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return conns, fmt.Errorf("dialing %d connections: %w", n, err)
	}
	return conns, nil
}

func closeAll(conns []client) {
	for _, c := range conns {
		if c != nil {
			c.close()
		}
	}
}

// echoLoad keeps inflight messages of size bytes outstanding on each of n
// connections and measures the messages echoed and the server's CPU time
// over d, after a warm-up.
func echoLoad(proto string, s *server, n, size, inflight int, d time.Duration) (int64, time.Duration, time.Duration, error) {
	conns := make([]client, n)
	for i := range conns {
		c, err := dialClient(proto, s.addr, size)
		if err != nil {
			closeAll(conns)
			return 0, 0, 0, err
		}
		conns[i] = c
	}
	var (
		count atomic.Int64
		stop  atomic.Bool
		wg    sync.WaitGroup
		errs  = make(chan error, n)
	)
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = 'a' + byte(i%26)
	}
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range inflight {
				if err := c.send(msg); err != nil {
					errs <- err
					return
				}
			}
			for !stop.Load() {
				if err := c.recv(); err != nil {
					errs <- err
					return
				}
				count.Add(1)
				if err := c.send(msg); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // warm-up
	m0, c0, t0 := count.Load(), s.cpu(), time.Now()
	time.Sleep(d)
	m1, c1, t1 := count.Load(), s.cpu(), time.Now()
	stop.Store(true)
	closeAll(conns)
	wg.Wait()
	select {
	case err := <-errs:
		if !stop.Load() {
			return 0, 0, 0, err
		}
	default:
	}
	if m1 == m0 {
		return 0, 0, 0, errors.New("no message was echoed")
	}
	return m1 - m0, c1 - c0, t1.Sub(t0), nil
}

// broadcastLoad connects n clients and times k broadcasts (after one
// warm-up): from the request to the server until the last client has the
// message.
func broadcastLoad(s *server, n, k int) ([]time.Duration, error) {
	conns, err := dialMany("websocket", s.addr, n, 200)
	defer closeAll(conns)
	if err != nil {
		return nil, err
	}
	var (
		got  atomic.Int64
		last = make(chan time.Time, 1)
		wg   sync.WaitGroup
	)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.recv() == nil {
				if got.Add(1) == int64(n) {
					last <- time.Now()
				}
			}
		}()
	}
	defer wg.Wait()
	defer closeAll(conns)
	var out []time.Duration
	for i := 0; i <= k; i++ {
		got.Store(0)
		start := time.Now()
		fmt.Fprintf(s.stdin, "BROADCAST 100\n")
		select {
		case t := <-last:
			if i > 0 {
				out = append(out, t.Sub(start))
			}
		case <-time.After(60 * time.Second):
			return out, fmt.Errorf("broadcast %d: %d of %d clients got it", i, got.Load(), n)
		}
		if _, err := s.expect("SENT ", 60*time.Second); err != nil {
			return out, err
		}
	}
	return out, nil
}
