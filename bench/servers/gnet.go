package servers

import (
	"context"
	"fmt"
	"time"

	"github.com/panjf2000/gnet/v2"
)

func init() { register("gnet", startGnet) }

// gnetServer is gnet v2's echo example: the event loop answers in OnTraffic.
type gnetServer struct {
	gnet.BuiltinEventEngine
	addr  string
	eng   gnet.Engine
	ready chan struct{}
}

func startGnet(proto, addr string) (Server, error) {
	if proto != "tcp" {
		return nil, fmt.Errorf("gnet: only tcp")
	}
	addr, err := pickPort(addr)
	if err != nil {
		return nil, err
	}
	s := &gnetServer{addr: addr, ready: make(chan struct{})}
	errc := make(chan error, 1)
	go func() { errc <- gnet.Run(s, "tcp://"+addr, gnet.WithMulticore(true), gnet.WithLogLevel(0)) }()
	select {
	case <-s.ready:
		return s, nil
	case err := <-errc:
		return nil, err
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("gnet: did not start")
	}
}

func (s *gnetServer) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	close(s.ready)
	return gnet.None
}

func (s *gnetServer) OnTraffic(c gnet.Conn) gnet.Action {
	buf, _ := c.Next(-1)
	c.Write(buf)
	return gnet.None
}

func (s *gnetServer) Addr() string { return s.addr }

func (s *gnetServer) Broadcast([]byte) int { return 0 }

func (s *gnetServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.eng.Stop(ctx)
}
