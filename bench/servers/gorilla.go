package servers

import (
	"fmt"
	"net"
	"net/http"

	"github.com/gorilla/websocket"
)

func init() { register("gorilla", startGorilla) }

// gorillaServer is gorilla/websocket as its examples use it: net/http,
// Upgrader, one goroutine per connection, ReadMessage/WriteMessage.
type gorillaServer struct {
	ln    net.Listener
	srv   *http.Server
	conns connSet[*websocket.Conn]
}

func startGorilla(proto, addr string) (Server, error) {
	if proto != "websocket" && proto != "wss" {
		return nil, fmt.Errorf("gorilla: only websocket")
	}
	ln, err := listen(proto, addr)
	if err != nil {
		return nil, err
	}
	s := &gorillaServer{ln: ln}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		wmu := s.conns.add(c)
		defer func() {
			s.conns.remove(c)
			c.Close()
		}()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			wmu.Lock()
			err = c.WriteMessage(mt, msg)
			wmu.Unlock()
			if err != nil {
				return
			}
		}
	})}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *gorillaServer) Addr() string { return s.ln.Addr().String() }

func (s *gorillaServer) Broadcast(msg []byte) int {
	pm, _ := websocket.NewPreparedMessage(websocket.TextMessage, msg)
	return s.conns.each(func(c *websocket.Conn) error { return c.WritePreparedMessage(pm) })
}

func (s *gorillaServer) Close() { s.srv.Close() }
