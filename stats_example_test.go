package workerman_test

import (
	"bufio"
	"fmt"
	"net"

	"github.com/workerman-go/workerman"
)

// A worker's counters after one client said hello and left. Compare two
// readings to get rates; package metrics exports them to Prometheus.
func ExampleWorker_Stats() {
	w := &workerman.Worker{URI: "text://127.0.0.1:0"}
	w.OnMessage = func(c *workerman.Connection, data []byte) { c.Send(data) }
	closed := make(chan struct{})
	w.OnClose = func(*workerman.Connection) { close(closed) }
	if err := w.Listen(); err != nil {
		panic(err)
	}
	defer w.Close()

	conn, _ := net.Dial("tcp", w.Addr().String())
	fmt.Fprintf(conn, "hello\n")
	bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	<-closed // its counters are the worker's totals now

	s := w.Stats()
	fmt.Printf("connections: %d open, %d in all\n", s.Connections, s.ConnectionsTotal)
	fmt.Printf("received: %d message, %d bytes\n", s.MessagesReceived, s.BytesReceived)
	fmt.Printf("sent: %d message, %d bytes\n", s.MessagesSent, s.BytesSent)
	fmt.Printf("dropped: %d, codec errors: %d\n", s.SendDropped, s.CodecErrors.Total())
	// Output:
	// connections: 0 open, 1 in all
	// received: 1 message, 6 bytes
	// sent: 1 message, 6 bytes
	// dropped: 0, codec errors: 0
}
