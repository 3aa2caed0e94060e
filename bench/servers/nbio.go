package servers

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	ltls "github.com/lesismal/llib/std/crypto/tls"
	"github.com/lesismal/nbio/logging"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"
)

func init() { register("nbio", startNbio) }

// nbioServer is lesismal/nbio in non-blocking mode, as its websocket
// examples set it up.
type nbioServer struct {
	addr   string
	engine *nbhttp.Engine
	conns  connSet[*websocket.Conn] // nbio's Conn locks its own writes
}

func startNbio(proto, addr string) (Server, error) {
	if proto != "websocket" && proto != "wss" {
		return nil, fmt.Errorf("nbio: only websocket")
	}
	addr, err := pickPort(addr)
	if err != nil {
		return nil, err
	}
	logging.SetLevel(logging.LevelNone)
	s := &nbioServer{addr: addr}
	u := websocket.NewUpgrader()
	u.CheckOrigin = func(*http.Request) bool { return true }
	u.OnOpen(func(c *websocket.Conn) { s.conns.add(c) })
	u.OnClose(func(c *websocket.Conn, err error) { s.conns.remove(c) })
	u.OnMessage(func(c *websocket.Conn, mt websocket.MessageType, data []byte) {
		c.WriteMessage(mt, data)
	})
	mux := &http.ServeMux{}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		u.Upgrade(w, r, nil)
	})
	conf := nbhttp.Config{
		Network: "tcp",
		Addrs:   []string{addr},
		Handler: mux,
		IOMod:   nbhttp.IOModNonBlocking,
	}
	if proto == "wss" {
		// nbio's own non-blocking TLS (its fork of crypto/tls).
		cert := TLSConfig().Certificates[0]
		conf.Addrs, conf.AddrsTLS = nil, []string{addr}
		conf.TLSConfig = &ltls.Config{Certificates: []ltls.Certificate{{Certificate: cert.Certificate, PrivateKey: cert.PrivateKey}}}
	}
	s.engine = nbhttp.NewEngine(conf)
	if err := s.engine.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

// pickPort turns port 0 into a free port, for servers that do not report
// the port they bound.
func pickPort(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (s *nbioServer) Addr() string { return s.addr }

func (s *nbioServer) Broadcast(msg []byte) int {
	return s.conns.each(func(c *websocket.Conn) error { return c.WriteMessage(websocket.TextMessage, msg) })
}

func (s *nbioServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.engine.Shutdown(ctx)
}
