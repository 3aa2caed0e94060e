package engine

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/leakcheck"
)

// addrHandler reports a connection's addresses when it closes, as an owner
// logging its OnClose does.
type addrHandler struct {
	c      Conn
	closed chan [2]net.Addr // remote, local
}

func (h *addrHandler) OnRead(in []byte) (int, int) { return len(in), 0 }
func (h *addrHandler) OnEOF()                      { h.c.Close() }
func (h *addrHandler) OnDrain()                    {}
func (h *addrHandler) OnClose(error)               { h.closed <- [2]net.Addr{h.c.RemoteAddr(), h.c.LocalAddr()} }

func sameTCPAddr(a net.Addr, b *net.TCPAddr) bool {
	t, ok := a.(*net.TCPAddr)
	return ok && t.IP.Equal(b.IP) && t.Port == b.Port
}

// A connection knows its peer's address, IPv4 or IPv6, while it is open and
// after it closed; its local port too. An IPv4 peer of a dual-stack socket
// is the same address as on an IPv4 socket.
func TestAddresses(t *testing.T) {
	cases := []struct {
		name, network, listen, dial string
	}{
		{"ipv4", "tcp", "127.0.0.1:0", "127.0.0.1"},
		{"ipv6", "tcp6", "[::1]:0", "::1"},
		{"ipv4 on a dual-stack socket", "tcp", "[::]:0", "127.0.0.1"},
	}
	for _, e := range testEngines(1) {
		for _, tc := range cases {
			t.Run(e.name+"/"+tc.name, func(t *testing.T) {
				leakcheck.Check(t)
				if probe, err := net.Listen(tc.network, tc.listen); err != nil {
					t.Skipf("no %s here: %v", tc.listen, err)
				} else {
					probe.Close()
				}
				eng, err := e.new()
				if err != nil {
					t.Fatal(err)
				}
				defer eng.Stop()
				accepted := make(chan [2]net.Addr, 1)
				closed := make(chan [2]net.Addr, 1)
				ln := &Listener{Network: tc.network, Address: tc.listen}
				err = eng.Listen(ln, func(c Conn, _ int) Handler {
					accepted <- [2]net.Addr{c.RemoteAddr(), c.LocalAddr()}
					return &addrHandler{c: c, closed: closed}
				})
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				port := ln.Addr().(*net.TCPAddr).Port
				to := net.JoinHostPort(tc.dial, strconv.Itoa(port))
				c, err := net.DialTimeout("tcp", to, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				client, server := c.LocalAddr().(*net.TCPAddr), c.RemoteAddr().(*net.TCPAddr)
				open := waitFor(t, accepted, "accept")
				if !sameTCPAddr(open[0], client) || !sameTCPAddr(open[1], server) {
					t.Errorf("open: remote %v local %v; the client is %v, the server %v", open[0], open[1], client, server)
				}
				c.Close()
				after := waitFor(t, closed, "OnClose")
				if !sameTCPAddr(after[0], client) {
					t.Errorf("closed: remote %v; the client is %v", after[0], client)
				}
				if a, ok := after[1].(*net.TCPAddr); !ok || a.Port != port {
					t.Errorf("closed: local %v; the server's port is %d", after[1], port)
				}

				// A dialed connection knows its peer's address too.
				h := &addrHandler{closed: make(chan [2]net.Addr, 1)}
				dc := eng.Dial(DialRequest{Network: "tcp", Address: to, Timeout: 5 * time.Second})
				h.c = dc
				up := make(chan error, 1)
				dc.Start(h, func(err error) { up <- err })
				if err := waitFor(t, up, "dial"); err != nil {
					t.Fatal(err)
				}
				waitFor(t, accepted, "accept of the dialed connection")
				if !sameTCPAddr(dc.RemoteAddr(), server) {
					t.Errorf("dialed: remote %v; the server is %v", dc.RemoteAddr(), server)
				}
				dc.Close()
				if after := waitFor(t, h.closed, "the dialed connection's OnClose"); !sameTCPAddr(after[0], server) {
					t.Errorf("dialed, closed: remote %v; the server is %v", after[0], server)
				}
				waitFor(t, closed, "the server side's OnClose")
			})
		}
	}
}
