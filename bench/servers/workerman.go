package servers

import (
	"context"
	"fmt"
	"time"

	"github.com/workerman-go/workerman"
)

func init() { register("workerman", startWorkerman) }

type wmServer struct{ w *workerman.Worker }

func startWorkerman(proto, addr string) (Server, error) {
	scheme := map[string]string{"tcp": "tcp", "websocket": "websocket", "wss": "websocket", "text": "text"}[proto]
	if scheme == "" {
		return nil, fmt.Errorf("workerman: no %s server", proto)
	}
	w := &workerman.Worker{URI: scheme + "://" + addr, Count: 1}
	if proto == "wss" {
		w.Transport, w.TLSConfig = "ssl", TLSConfig()
	}
	w.OnMessage = func(c *workerman.Connection, data []byte) {
		c.SendMessage(c.MessageType(), data)
	}
	if err := w.Listen(); err != nil {
		return nil, err
	}
	return &wmServer{w}, nil
}

func (s *wmServer) Addr() string { return s.w.Addr().String() }

func (s *wmServer) Broadcast(msg []byte) int { return s.w.Broadcast(msg) }

func (s *wmServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.w.Shutdown(ctx)
}
