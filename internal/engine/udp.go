package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
)

// isPacket tells whether a listener's network is UDP.
func isPacket(network string) bool { return strings.HasPrefix(network, "udp") }

// udpListener serves a UDP socket for either engine: one goroutine per
// instance reads datagrams. UDP has no connections: each datagram becomes a
// Conn of its own that gets the datagram through OnRead and then OnClose,
// and whose writes go back to the sender (Workerman's UdpConnection).
type udpListener struct {
	pc     net.PacketConn
	accept AcceptFunc
	wg     sync.WaitGroup
	closed atomic.Bool
	pauseGate
}

// maxDatagram is the largest UDP payload.
const maxDatagram = 64 << 10

func listenUDP(spec *Listener, accept AcceptFunc, instances int) error {
	lc := net.ListenConfig{}
	if spec.ReusePort {
		lc.Control = reusePortControl
	}
	pc, err := lc.ListenPacket(context.Background(), spec.Network, spec.Address)
	if err != nil {
		return fmt.Errorf("workerman: listen %s %s: %w", spec.Network, spec.Address, err)
	}
	l := &udpListener{pc: pc, accept: accept, pauseGate: newPauseGate(spec.Paused)}
	spec.impl = l
	for i := range instances {
		l.wg.Add(1)
		go l.read(i)
	}
	return nil
}

func (l *udpListener) read(inst int) {
	defer l.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := l.pc.ReadFrom(buf)
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue // an ICMP error for an earlier reply, say
		}
		// Paused: hold the datagram until the pause ends. (A read
		// deadline cannot stop the read: with several readers on one
		// socket, Go lets one through after the deadline has passed.)
		l.wait(l.closed.Load)
		if l.closed.Load() {
			return
		}
		c := &udpConn{pc: l.pc, remote: from, nread: uint64(n)}
		h := l.accept(c, inst)
		if h == nil {
			continue
		}
		h.OnRead(buf[:n]) // the handler copies what it keeps
		h.OnClose(nil)
	}
}

func (l *udpListener) addr() net.Addr { return l.pc.LocalAddr() }

func (l *udpListener) close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return nil
	}
	l.setPaused(false) // wake paused readers so that they see closed
	err := l.pc.Close()
	l.wg.Wait()
	return err
}

// udpConn is one datagram's sender: writes are datagrams sent back to it.
type udpConn struct {
	pc      net.PacketConn
	remote  net.Addr
	nread   uint64
	written atomic.Uint64
}

func (c *udpConn) Write(p []byte, limit int, drop bool) (int, error) {
	n, err := c.pc.WriteTo(p, c.remote)
	c.written.Add(uint64(n))
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return 0, closedErr(nil)
		}
		return 0, fmt.Errorf("workerman: udp send to %s: %w", c.remote, err)
	}
	return 0, nil // nothing is ever queued
}

func (c *udpConn) Queued() int          { return 0 }
func (c *udpConn) Close()               {}
func (c *udpConn) Destroy(error)        {}
func (c *udpConn) PauseRead(Reason)     {}
func (c *udpConn) ResumeRead(Reason)    {}
func (c *udpConn) BytesRead() uint64    { return c.nread }
func (c *udpConn) BytesWritten() uint64 { return c.written.Load() }
func (c *udpConn) LocalAddr() net.Addr  { return c.pc.LocalAddr() }
func (c *udpConn) RemoteAddr() net.Addr { return c.remote }
