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
	conns connSet[net.Conn]
}

func startNetConn(proto, addr string) (Server, error) {
	if proto != "tcp" {
		return nil, fmt.Errorf("netconn: only tcp")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &netConnServer{ln: ln}
	goPerConn(ln, func(c net.Conn) { s.serve(c, s.conns.add(c)) })
	return s, nil
}

func (s *netConnServer) serve(c net.Conn, wmu *sync.Mutex) {
	defer func() {
		s.conns.remove(c)
		c.Close()
	}()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			wmu.Lock()
			_, werr := c.Write(buf[:n])
			wmu.Unlock()
			if werr != nil {
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
	return s.conns.each(func(c net.Conn) error {
		_, err := c.Write(msg)
		return err
	})
}

func (s *netConnServer) Close() {
	s.ln.Close()
	s.conns.each(func(c net.Conn) error { return c.Close() })
}
