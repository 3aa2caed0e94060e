package engine

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/leakcheck"
)

// The owner may write and close a connection before accept has returned
// its handler (its first callback races the accept): the bytes still go
// out, then the connection closes, and OnClose runs exactly once, on both
// engines.
func TestCloseBeforeTheHandlerIsSet(t *testing.T) {
	for _, e := range testEngines(1) {
		t.Run(e.name, func(t *testing.T) {
			leakcheck.Check(t)
			eng, err := e.new()
			if err != nil {
				t.Fatal(err)
			}
			defer eng.Stop()
			closed := make(chan error, 16)
			accept := func(c Conn, _ int) Handler {
				c.Write([]byte("bye"), 1<<20, false)
				c.Close()
				return &echoHandler{c: c, closed: closed}
			}
			ln := &Listener{Network: "tcp", Address: "127.0.0.1:0"}
			if err := eng.Listen(ln, accept); err != nil {
				t.Fatal(err)
			}
			for range 5 {
				c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				got, err := io.ReadAll(c)
				c.Close()
				if string(got) != "bye" || err != nil {
					t.Fatalf("read %q, %v; want bye then EOF", got, err)
				}
				select {
				case <-closed:
				case <-time.After(10 * time.Second):
					t.Fatal("no OnClose")
				}
			}
			select {
			case err := <-closed:
				t.Fatalf("a second OnClose (%v)", err)
			default:
			}
		})
	}
}
