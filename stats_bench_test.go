package workerman

import (
	"testing"

	"github.com/workerman-go/workerman/protocol"
)

// BenchmarkMulticastText measures the library's work for one message sent
// to 10,000 text:// connections (the send path a push takes: Multicast,
// the codec, the connection's write, its counters), without syscalls.
// One op is one delivered message.
func BenchmarkMulticastText(b *testing.B) {
	const n = 10000
	r, err := newReactor(1, 0, 0, quietLog(), false)
	if err != nil {
		b.Fatal(err)
	}
	defer r.stop(b.Context())
	proto, _ := protocol.Lookup("text")
	ep := &endpoint{r: r, proto: proto, maxSend: 1 << 20, maxPackage: 1 << 20, log: quietLog(), stats: new(stats)}
	conns := make([]*Connection, n)
	for i := range conns {
		conns[i] = newConnection(ep, &nullConn{}, r.insts[0])
	}
	m, err := NewPreparedMessage(protocol.DataMessage, make([]byte, 100))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += n {
		Multicast(conns, m)
	}
}
