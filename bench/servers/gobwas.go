package servers

import (
	"fmt"
	"net"
	"sync"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

func init() { register("gobwas", startGobwas) }

// gobwasServer is gobwas/ws the simple way its README shows: one goroutine
// per connection, ws.Upgrade on the net.Conn, wsutil helpers.
type gobwasServer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]*sync.Mutex
}

func startGobwas(proto, addr string) (Server, error) {
	if proto != "websocket" {
		return nil, fmt.Errorf("gobwas: only websocket")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &gobwasServer{ln: ln, conns: map[net.Conn]*sync.Mutex{}}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(conn)
		}
	}()
	return s, nil
}

func (s *gobwasServer) serve(conn net.Conn) {
	defer conn.Close()
	if _, err := ws.Upgrade(conn); err != nil {
		return
	}
	wmu := new(sync.Mutex)
	s.mu.Lock()
	s.conns[conn] = wmu
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
	}()
	for {
		msg, op, err := wsutil.ReadClientData(conn)
		if err != nil {
			return
		}
		wmu.Lock()
		err = wsutil.WriteServerMessage(conn, op, msg)
		wmu.Unlock()
		if err != nil {
			return
		}
	}
}

func (s *gobwasServer) Addr() string { return s.ln.Addr().String() }

func (s *gobwasServer) Broadcast(msg []byte) int {
	frame := ws.MustCompileFrame(ws.NewTextFrame(msg))
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c, wmu := range s.conns {
		wmu.Lock()
		if _, err := c.Write(frame); err == nil {
			n++
		}
		wmu.Unlock()
	}
	return n
}

func (s *gobwasServer) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
}
