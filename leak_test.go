package workerman

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/leakcheck"
)

// Hundreds of connections of every kind come and go: server connections
// closed by the client, by the server, reset, and WebSocket connections of
// our own client, over both engines. Once they are closed the descriptors
// are back to where they were with the servers listening (a connection
// keeps nothing open after its OnClose), and once the servers are shut
// down, fds and goroutines are back to where they were before the test
// (engines checks that).
func TestNoLeaksAfterManyConnections(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		fdsBefore, countable := leakcheck.FDs()

		const perEnding, wsClients = 50, 100
		closed := make(chan struct{}, 4*perEnding+wsClients)
		text := echoWorker("text", goroutines)
		text.Count = 2
		text.OnMessage = func(c *Connection, data []byte) {
			switch string(data) {
			case "close":
				c.Close([]byte("bye"))
			case "destroy":
				c.Destroy()
			default:
				c.Send(data)
			}
		}
		text.OnClose = func(*Connection) { closed <- struct{}{} }
		ws := echoWorker("websocket", goroutines)
		ws.OnClose = func(*Connection) { closed <- struct{}{} }
		textAddr, wsAddr := serve(t, text), serve(t, ws)
		listening, _ := leakcheck.FDs()
		if countable && listening <= fdsBefore {
			t.Fatalf("%d descriptors with two servers listening, %d before: not counting", listening, fdsBefore)
		}

		for round := range 2 {
			var wg sync.WaitGroup
			for i := range 4 * perEnding {
				wg.Go(func() {
					if err := textConversation(textAddr, i%4); err != nil {
						t.Errorf("round %d, connection %d: %v", round, i, err)
					}
				})
			}
			for i := range wsClients {
				wg.Go(func() {
					if err := wsConversation(wsAddr, fmt.Sprintf("ws %d", i)); err != nil {
						t.Errorf("round %d, ws client %d: %v", round, i, err)
					}
				})
			}
			wg.Wait()
			for i := range cap(closed) {
				wait(t, closed, fmt.Sprintf("round %d: OnClose %d", round, i))
			}
			if !countable {
				continue
			}
			// The servers still listen; the client side's reactor stops
			// shortly after its last connection.
			if n, open := leakcheck.WaitFDs(listening, leakcheck.Timeout); n > listening {
				t.Fatalf("round %d: %d descriptors open after every connection closed, %d before:\n%v", round, n, listening, open)
			}
		}
	})
}

// textConversation talks to a text:// echo server and ends the connection
// one of four ways: the client closes, the client resets, the server closes,
// the server destroys.
func textConversation(addr string, ending int) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	if _, err := c.Write([]byte("hello\n")); err != nil {
		return err
	}
	if line, err := r.ReadString('\n'); err != nil || line != "hello\n" {
		return fmt.Errorf("echo: %q, %v", line, err)
	}
	switch ending {
	case 0:
		return nil
	case 1:
		return c.(*net.TCPConn).SetLinger(0)
	case 2:
		c.Write([]byte("close\n"))
	case 3:
		c.Write([]byte("destroy\n"))
	}
	rest, _ := r.ReadString(0) // until the server's close
	if ending == 2 && rest != "bye\n" {
		return fmt.Errorf("server close sent %q, want bye", rest)
	}
	return nil
}

// wsConversation sends one message over a ws:// AsyncConnection, reads the
// echo and closes.
func wsConversation(addr, msg string) error {
	a := NewAsyncConnection("ws://" + addr + "/")
	got := make(chan string, 1)
	closed := make(chan struct{})
	errs := make(chan error, 10)
	a.OnMessage = func(_ *AsyncConnection, d []byte) { got <- string(d) }
	a.OnClose = func(*AsyncConnection) { close(closed) }
	a.OnError = func(_ *AsyncConnection, err error) { errs <- err }
	a.SendString(msg)
	if err := a.Connect(); err != nil {
		return err
	}
	select {
	case m := <-got:
		if m != msg {
			return fmt.Errorf("echo %q, want %q", m, msg)
		}
	case err := <-errs:
		a.Destroy()
		return err
	case <-time.After(20 * time.Second):
		a.Destroy()
		return fmt.Errorf("no echo")
	}
	a.Close()
	select {
	case <-closed:
		return nil
	case <-time.After(20 * time.Second):
		return fmt.Errorf("no OnClose")
	}
}
