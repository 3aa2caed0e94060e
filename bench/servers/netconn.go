package servers

import (
	"fmt"
	"net"
	"sync"
)

func init() { register("netconn", startNetConn) }

// netConnServer is the plain Go way: one goroutine per connection reading
// into a 4 KiB buffer and writing back what it read.
type netConnServer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func startNetConn(proto, addr string) (Server, error) {
	if proto != "tcp" {
		return nil, fmt.Errorf("netconn: only tcp")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &netConnServer{ln: ln, conns: map[net.Conn]struct{}{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			go s.serve(c)
		}
	}()
	return s, nil
}

func (s *netConnServer) serve(c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (s *netConnServer) Addr() string { return s.ln.Addr().String() }

func (s *netConnServer) Broadcast(msg []byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if _, err := c.Write(msg); err == nil {
			n++
		}
	}
	return n
}

func (s *netConnServer) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
}
