package servers

import (
	"fmt"
	"net"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

func init() { register("gobwas", startGobwas) }

// gobwasServer is gobwas/ws the simple way its README shows: one goroutine
// per connection, ws.Upgrade on the net.Conn, wsutil helpers.
type gobwasServer struct {
	ln    net.Listener
	conns connSet[net.Conn]
}

func startGobwas(proto, addr string) (Server, error) {
	if proto != "websocket" && proto != "wss" {
		return nil, fmt.Errorf("gobwas: only websocket")
	}
	ln, err := listen(proto, addr)
	if err != nil {
		return nil, err
	}
	s := &gobwasServer{ln: ln}
	goPerConn(ln, s.serve)
	return s, nil
}

func (s *gobwasServer) serve(conn net.Conn) {
	defer conn.Close()
	if _, err := ws.Upgrade(conn); err != nil {
		return
	}
	wmu := s.conns.add(conn)
	defer s.conns.remove(conn)
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
	return s.conns.each(func(c net.Conn) error {
		_, err := c.Write(frame)
		return err
	})
}

func (s *gobwasServer) Close() {
	s.ln.Close()
	s.conns.each(func(c net.Conn) error { return c.Close() })
}
