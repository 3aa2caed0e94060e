package engine

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/leakcheck"
)

// collector keeps what a dialed connection reads and reports EOF and
// OnClose.
type collector struct {
	in     chan []byte
	eof    chan struct{}
	closed chan error
}

func (h *collector) OnRead(in []byte) (int, int) {
	h.in <- bytes.Clone(in)
	return len(in), 0
}
func (h *collector) OnEOF()            { h.eof <- struct{}{} }
func (h *collector) OnDrain()          {}
func (h *collector) OnClose(err error) { h.closed <- err }

// A server that writes the moment it accepts (a greeting) is heard by a
// dialed connection that sends nothing: the bytes may arrive together with
// the completion of the connect, and must not wait for more bytes that
// never come. Small and large greetings, with and without the server's FIN
// right after, on both engines, many times to catch the race.
func TestDialReadsTheGreeting(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 20<<10) // 320 KiB, several read buffers
	cases := []struct {
		name     string
		greeting []byte
		fin      bool
	}{
		{"small", []byte("hello\n"), false},
		{"small then FIN", []byte("hello\n"), true},
		{"large", big, false},
		{"large then FIN", big, true},
	}
	for _, e := range testEngines(2) {
		for _, tc := range cases {
			t.Run(e.name+"/"+tc.name, func(t *testing.T) {
				leakcheck.Check(t)
				eng, err := e.new()
				if err != nil {
					t.Fatal(err)
				}
				defer eng.Stop()
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				served := make(chan error, 1)
				go func() {
					for {
						c, err := ln.Accept()
						if err != nil {
							served <- nil
							return
						}
						c.SetDeadline(time.Now().Add(10 * time.Second))
						if _, err := c.Write(tc.greeting); err != nil {
							served <- err
							return
						}
						if tc.fin {
							c.(*net.TCPConn).CloseWrite()
						}
						// The client closes first; then so do we.
						c.Read(make([]byte, 1))
						c.Close()
					}
				}()
				n := 200
				if testing.Short() || len(tc.greeting) > 1<<10 {
					n = 50
				}
				for i := range n {
					h := &collector{in: make(chan []byte, 1024), eof: make(chan struct{}, 1), closed: make(chan error, 1)}
					dc := eng.Dial(DialRequest{Network: "tcp", Address: ln.Addr().String(), Timeout: 5 * time.Second})
					up := make(chan error, 1)
					dc.Start(h, func(err error) { up <- err })
					if err := waitFor(t, up, "dial"); err != nil {
						t.Fatal(err)
					}
					var got []byte
					for len(got) < len(tc.greeting) {
						select {
						case b := <-h.in:
							got = append(got, b...)
						case <-time.After(10 * time.Second):
							t.Fatalf("connection %d: got %d of the %d bytes of the greeting", i, len(got), len(tc.greeting))
						}
					}
					if !bytes.Equal(got, tc.greeting) {
						t.Fatalf("connection %d: greeting garbled (%d bytes)", i, len(got))
					}
					if tc.fin {
						waitFor(t, h.eof, "OnEOF after the greeting")
					}
					dc.Close()
					waitFor(t, h.closed, "OnClose")
				}
				ln.Close()
				if err := waitFor(t, served, "the server"); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}
