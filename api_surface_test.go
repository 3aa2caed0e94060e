package workerman

import (
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/workerman-go/workerman/protocol"
)

// userCalls is every exported method of *Connection, called the way a user
// may call it from any goroutine at any time. A method added to Connection
// must be added here, so that the test below covers it.
var preparedX, _ = NewPreparedMessage(protocol.DataMessage, []byte("x"))

var userCalls = map[string]func(c *Connection){
	"BytesRead":            func(c *Connection) { c.BytesRead() },
	"BytesWritten":         func(c *Connection) { c.BytesWritten() },
	"CloseWhenBufferFull":  func(c *Connection) { c.CloseWhenBufferFull() },
	"Close":                func(c *Connection) { c.Close([]byte("bye")) },
	"CloseWebSocket":       func(c *Connection) { c.CloseWebSocket(4000, "user") },
	"Destroy":              func(c *Connection) { c.Destroy() },
	"ID":                   func(c *Connection) { c.ID() },
	"IsIPv4":               func(c *Connection) { c.IsIPv4() },
	"IsIPv6":               func(c *Connection) { c.IsIPv6() },
	"LocalAddr":            func(c *Connection) { c.LocalAddr() },
	"LocalAddress":         func(c *Connection) { c.LocalAddress() },
	"LocalIP":              func(c *Connection) { c.LocalIP() },
	"LocalPort":            func(c *Connection) { c.LocalPort() },
	"MaxPackageSize":       func(c *Connection) { c.MaxPackageSize() },
	"MaxSendBufferSize":    func(c *Connection) { c.MaxSendBufferSize() },
	"MessageType":          func(c *Connection) {}, // only meaningful inside OnMessage (documented)
	"PauseRecv":            func(c *Connection) { c.PauseRecv() },
	"Pipe":                 func(c *Connection) {}, // wires two connections: TestPipe*
	"Protocol":             func(c *Connection) { c.Protocol() },
	"RemoteAddr":           func(c *Connection) { c.RemoteAddr() },
	"RemoteAddress":        func(c *Connection) { c.RemoteAddress() },
	"RemoteIP":             func(c *Connection) { c.RemoteIP() },
	"RemotePort":           func(c *Connection) { c.RemotePort() },
	"ResumeRecv":           func(c *Connection) { c.ResumeRecv() },
	"Send":                 func(c *Connection) { c.Send([]byte("x")) },
	"SendChunk":            func(c *Connection) { c.SendChunk([]byte("x")) },
	"SendEvent":            func(c *Connection) { c.SendEvent(ServerSentEvent{Data: "x"}) },
	"SendMessage":          func(c *Connection) { c.SendMessage(protocol.BinaryMessage, []byte{0xff}) },
	"SendMessages":         func(c *Connection) { c.SendMessages(protocol.TextMessage, [][]byte{[]byte("x"), {0xff}}) },
	"SendPrepared":         func(c *Connection) { c.SendPrepared(preparedX) },
	"SendQueueSize":        func(c *Connection) { c.SendQueueSize() },
	"SendRaw":              func(c *Connection) { c.SendRaw(nil) },
	"SendResponse":         func(c *Connection) { c.SendResponse(NewResponse(200, nil)) },
	"SendString":           func(c *Connection) { c.SendString("x") },
	"SetMaxPackageSize":    func(c *Connection) { c.SetMaxPackageSize(1 << 20) },
	"SetMaxSendBufferSize": func(c *Connection) { c.SetMaxSendBufferSize(1 << 20) },
	"SetValue":             func(c *Connection) { c.SetValue(1) },
	"SetWebSocketType":     func(c *Connection) { c.SetWebSocketType(protocol.BinaryMessage) },
	"Transport":            func(c *Connection) { c.Transport() },
	"Value":                func(c *Connection) { c.Value() },
	"WebSocketRequest":     func(c *Connection) { c.WebSocketRequest() },
	"Worker":               func(c *Connection) { c.Worker() },
	"WorkerID":             func(c *Connection) { c.WorkerID() },
}

// The engine's handler methods are not part of Connection's API: a user
// calling c.OnClose(nil) ran OnClose without closing the socket, and
// c.OnRead raced the loop's framing state.
func TestConnectionAPIHasNoEnginePlumbing(t *testing.T) {
	typ := reflect.TypeFor[*Connection]()
	var methods []string
	for i := range typ.NumMethod() {
		m := typ.Method(i).Name
		methods = append(methods, m)
		if strings.HasPrefix(m, "On") {
			t.Errorf("Connection.%s is exported: callbacks are Worker fields, engine events are internal", m)
		}
		if _, ok := userCalls[m]; !ok {
			t.Errorf("Connection.%s is not in userCalls: add it, so that TestUserCallsCannotBreakAConnection covers it", m)
		}
	}
	for m := range userCalls {
		if !slices.Contains(methods, m) {
			t.Errorf("userCalls lists %s, which Connection no longer has", m)
		}
	}
}

// Whatever a user calls, from any goroutine, while messages flow, each
// connection still ends exactly once: OnClose once, the worker's count back
// to zero, and (checked by the package's TestMain) no goroutine left.
func TestUserCallsCannotBreakAConnection(t *testing.T) {
	for _, scheme := range []string{"websocket", "text", "http"} {
		t.Run(scheme, func(t *testing.T) {
			engines(t, func(t *testing.T, goroutines bool) {
				w := &Worker{URI: scheme + "://127.0.0.1:0", goroutines: goroutines}
				var mu sync.Mutex
				closes := map[uint64]int{}
				conns := make(chan *Connection, 64)
				w.OnConnect = func(c *Connection) { conns <- c }
				w.OnMessage = func(c *Connection, data []byte) { c.Send(data) }
				w.OnRequest = func(c *Connection, r *Request) { c.Send([]byte("ok")) }
				w.OnClose = func(c *Connection) {
					mu.Lock()
					closes[c.ID()]++
					mu.Unlock()
				}
				addr := serve(t, w)
				const n = 16
				var wg sync.WaitGroup
				for range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						conn := dial(t, addr)
						defer conn.Close()
						switch scheme {
						case "websocket":
							conn.Write([]byte(handshakeRequest("/")))
							for range 20 {
								conn.Write(text("hello"))
							}
						case "text":
							for range 20 {
								conn.Write([]byte("hello\n"))
							}
						case "http":
							for range 20 {
								conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
							}
						}
						buf := make([]byte, 4096)
						conn.SetReadDeadline(time.Now().Add(10 * time.Second))
						for {
							if _, err := conn.Read(buf); err != nil {
								return // closed by a user call, as expected
							}
						}
					}()
				}
				var calls atomic.Int64
				var users sync.WaitGroup
				for range n {
					c := wait(t, conns, "OnConnect")
					users.Add(1)
					go func() {
						defer users.Done()
						names := make([]string, 0, len(userCalls))
						for name := range userCalls {
							names = append(names, name)
						}
						// Ending calls last, so that the others run on a live
						// connection; two goroutines race each other.
						slices.SortFunc(names, func(a, b string) int {
							return strings.Compare(ending(a), ending(b))
						})
						var inner sync.WaitGroup
						for range 2 {
							inner.Add(1)
							go func() {
								defer inner.Done()
								for _, name := range names {
									userCalls[name](c)
									calls.Add(1)
								}
							}()
						}
						inner.Wait()
					}()
				}
				users.Wait()
				wg.Wait()
				deadline := time.Now().Add(10 * time.Second)
				for w.ConnectionCount() > 0 && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond) // polling with a bound
				}
				if got := w.ConnectionCount(); got != 0 {
					t.Fatalf("%d connections left", got)
				}
				for time.Now().Before(deadline) {
					mu.Lock()
					done := len(closes) == n
					mu.Unlock()
					if done {
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
				mu.Lock()
				defer mu.Unlock()
				if len(closes) != n {
					t.Fatalf("OnClose ran for %d of %d connections", len(closes), n)
				}
				for id, k := range closes {
					if k != 1 {
						t.Fatalf("OnClose ran %d times for connection %d", k, id)
					}
				}
				if calls.Load() != int64(2*n*len(userCalls)) {
					t.Fatalf("%d calls", calls.Load())
				}
			})
		})
	}
}

// ending sorts the calls that end a connection after the others.
func ending(name string) string {
	switch name {
	case "Close", "CloseWebSocket", "Destroy":
		return "1" + name
	}
	return "0" + name
}
