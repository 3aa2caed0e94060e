package servers

import (
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/gorilla/websocket"
)

func init() { register("gorilla", startGorilla) }

// gorillaServer is gorilla/websocket as its examples use it: net/http,
// Upgrader, one goroutine per connection, ReadMessage/WriteMessage.
type gorillaServer struct {
	ln    net.Listener
	srv   *http.Server
	mu    sync.Mutex
	conns map[*websocket.Conn]*sync.Mutex
}

func startGorilla(proto, addr string) (Server, error) {
	if proto != "websocket" {
		return nil, fmt.Errorf("gorilla: only websocket")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &gorillaServer{ln: ln, conns: map[*websocket.Conn]*sync.Mutex{}}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		wmu := new(sync.Mutex)
		s.mu.Lock()
		s.conns[c] = wmu
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
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
	s.mu.Lock()
	defer s.mu.Unlock()
	pm, _ := websocket.NewPreparedMessage(websocket.TextMessage, msg)
	n := 0
	for c, wmu := range s.conns {
		wmu.Lock()
		if c.WritePreparedMessage(pm) == nil {
			n++
		}
		wmu.Unlock()
	}
	return n
}

func (s *gorillaServer) Close() { s.srv.Close() }
