package workerman

import (
	"net"
	"sync"
	"testing"

	"github.com/workerman-go/workerman/internal/engine"
	"github.com/workerman-go/workerman/protocol"
)

// nullConn is an engine connection that takes every write at once.
type nullConn struct {
	mu      sync.Mutex
	written int
	done    chan struct{}
	want    int
}

func (n *nullConn) Write(p []byte, limit int, drop bool) (int, error) {
	n.mu.Lock()
	n.written++
	if n.written == n.want {
		close(n.done)
	}
	n.mu.Unlock()
	return 0, nil
}
func (n *nullConn) Queued() int              { return 0 }
func (n *nullConn) Close()                   {}
func (n *nullConn) Destroy(error)            {}
func (n *nullConn) PauseRead(engine.Reason)  {}
func (n *nullConn) ResumeRead(engine.Reason) {}
func (n *nullConn) BytesRead() uint64        { return 0 }
func (n *nullConn) BytesWritten() uint64     { return 0 }
func (n *nullConn) LocalAddr() net.Addr      { return nil }
func (n *nullConn) RemoteAddr() net.Addr     { return nil }

// BenchmarkDispatchEcho measures the library's own work for one echoed
// message, from the loop's OnRead to the engine write, without syscalls:
// framing, the copy out of the loop buffer, the hand-off to the pool,
// decoding, the callback and encoding.
func BenchmarkDispatchEcho(b *testing.B) {
	for _, scheme := range []string{"tcp", "text"} {
		b.Run(scheme, func(b *testing.B) {
			r, err := newReactor(1, 0, 0, quietLog(), false)
			if err != nil {
				b.Fatal(err)
			}
			defer r.stop(b.Context())
			proto, _ := protocol.Lookup(scheme)
			ep := &endpoint{r: r, proto: proto, maxSend: 1 << 20, maxPackage: 1 << 20, log: quietLog(), stats: new(stats)}
			ep.onMessage = func(c *Connection, data []byte) { c.Send(data) }
			nc := &nullConn{done: make(chan struct{}), want: b.N}
			c := newConnection(ep, nc, r.insts[0])
			msg := make([]byte, 64)
			msg[63] = '\n'
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				c.handler().OnRead(msg)
			}
			<-nc.done
		})
	}
}
