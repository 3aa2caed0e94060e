// Package workerman brings PHP Workerman's programming model to Go: a Worker
// listening on a URI such as text://0.0.0.0:5678 or websocket://0.0.0.0:8000,
// callbacks named as in Workerman (OnConnect, OnMessage, OnClose, ...), a
// Connection with Workerman's Send/Close/buffer semantics, timers, and
// pluggable protocol codecs (package protocol).
//
//	w := workerman.NewWorker("text://0.0.0.0:5678")
//	w.Count = 4
//	w.OnMessage = func(c *workerman.Connection, data []byte) {
//		c.Send(data)
//	}
//	workerman.RunAll()
//
// # Count, instances and goroutines
//
// In Workerman, Count is a number of processes, each with its own event loop.
// Here Count is the number of event-loop instances inside one process (IDs
// 0..Count-1); OnWorkerStart runs once per instance, and
// Connection.WorkerID tells which instance holds a connection. All instances
// share memory, so a connection held by one instance can be sent to from
// anywhere: what Workerman needs Channel or GatewayWorker for is a map and a
// mutex here.
//
// On Linux each instance is an epoll set parked in the Go runtime's
// netpoller. An idle connection owns no goroutine and no read buffer (about
// half a kilobyte in all), so one process holds hundreds of thousands of
// them, TLS connections too (crypto/tls decrypts the loop's bytes; only a
// handshake in progress has a goroutine). Elsewhere each connection has a
// reading goroutine; the behaviour is the same.
//
// # Callbacks
//
// A message's callbacks run on the event loop's goroutine right after the
// loop read it, the others on a goroutine pool
// (github.com/panjf2000/ants/v2). A callback may block (a database query,
// an HTTP call) without stalling other connections: one that runs longer
// than about a millisecond keeps its goroutine while the loop goes on in a
// new one, so the loop's other connections wait a millisecond or two at
// most — in Workerman a blocking callback freezes its whole process. For
// each connection:
//
//   - callbacks run one at a time, never concurrently with each other;
//   - OnConnect runs first, OnMessage in the order messages arrived, and
//     OnClose last, exactly once, however the connection ended;
//   - the data passed to OnMessage is only valid until OnMessage returns.
//
// Different connections' callbacks do run concurrently: state shared between
// connections needs a lock, as in any Go program.
//
// The pool runs at most Worker.PoolSize callbacks at once (by default 256,
// or 32 per CPU, while they keep finishing: busy callbacks share goroutines
// instead of taking one per busy connection); connections beyond it wait
// their turn in order. With the default, connections still waiting after
// 5 ms in which no running callback returned (all of them blocked) get
// goroutines of their own. Neither an event loop nor a Send ever waits for
// the pool.
//
// # Sending and back-pressure
//
// Connection.Send may be called from any goroutine and never blocks. When the
// socket takes the bytes they are written at once; otherwise they are queued
// and written when it becomes writable. As in Workerman, OnBufferFull fires
// when MaxSendBufferSize bytes are queued, further sends are dropped with
// ErrSendBufferFull (and reported through OnError), and OnBufferDrain fires
// once the queue is empty. Connection.Pipe and PauseRecv/ResumeRecv give
// back-pressure instead of drops. On the receiving side, a connection whose
// callbacks fall behind stops being read until they catch up, so a slow
// callback never makes memory grow without bound.
//
// # Bad input
//
// A packet larger than MaxPackageSize, or bytes a codec rejects, close that
// connection and are reported through OnError (Workerman closes silently);
// every other connection keeps being served. A panicking callback is
// recovered, reported as a *PanicError and destroys only its connection.
//
// # Counters
//
// Worker.Stats returns a worker's traffic counters (connections, messages
// and bytes each way, full send buffers and dropped sends, codec errors
// and timeouts by kind, the callback pool's queue and waits) and
// ProcessStats those of the whole process, clients included; the status
// command shows them. They are counted per connection and folded into the
// worker's totals when it closes, so counting costs the send path no
// cache line shared between goroutines. The nested module
// github.com/workerman-go/workerman/metrics exports them to Prometheus.
//
// # Layout
//
// This package is the public API. Package protocol holds the codec
// contract (Codec: Input, Decode, Encode; Register) and the types users
// touch. The engine (epoll loops, or a goroutine per connection) lives in
// internal/engine; the WebSocket and HTTP protocols, codec and
// connection-side life together, in internal/websocket and internal/http1,
// behind the small interfaces of internal/proto. The send path goes one
// way: the user's call, the codec (for WebSocket and HTTP, their session),
// the engine's write.
//
// # Stopping
//
// RunAll starts every worker made with NewWorker, waits for SIGINT or
// SIGTERM and stops them gracefully. Programs that manage their own
// lifecycle use Worker.Listen with Worker.Shutdown(ctx) or Worker.Close, or
// Worker.Run(ctx), like http.Server. Main gives a program Workerman's
// command line instead: start (-d for a daemon), stop (-g graceful),
// restart, reload (a hand-over to a new binary), status and connections.
package workerman
