package workerman

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/workerman-go/workerman/protocol"
)

// Stats are the traffic counters of a Worker (Worker.Stats) or of the whole
// process (ProcessStats), in the manner of database/sql's DBStats: a plain
// struct, read when asked for, that any program can log, export (package
// github.com/workerman-go/workerman/metrics makes a Prometheus collector of
// it) or compare with an earlier copy to get rates.
//
// Counters (the uint64 fields and PoolWaitDuration) count from the start of
// the worker, or of the process, and never decrease between two calls;
// Connections and PoolQueued are how things are now. The figures are not
// one atomic snapshot: each is read at a slightly different moment.
type Stats struct {
	// Connections is the number of connections open now: accepted and
	// whose OnClose has not run yet (Worker.ConnectionCount). On the
	// client side, the AsyncConnections connected or connecting.
	Connections int

	// ConnectionsTotal counts the connections accepted since the start.
	// On a udp:// worker every datagram is a connection of its own; on
	// the client side every connection attempt counts.
	ConnectionsTotal uint64

	// MessagesReceived counts the messages delivered to the program:
	// each OnMessage (a WebSocket text or binary message, reassembled;
	// a packet of a plain codec), each HTTP request to OnRequest, each
	// message a Pipe forwarded. Handshakes and WebSocket control frames
	// are not messages. Status's total_request column.
	MessagesReceived uint64

	// BytesReceived counts the bytes read from the sockets, protocol
	// framing included (Connection.BytesRead summed); over TLS, the
	// decrypted bytes.
	BytesReceived uint64

	// MessagesSent counts the writes handed to the sockets, written at
	// once or queued: each send that returned nil (Send, SendMessage,
	// SendRaw, SendPrepared, SendResponse, SendEvent, SendChunk; one per
	// connection for Broadcast and Multicast; one per message for
	// SendMessages), and what the protocol
	// sends by itself: a WebSocket handshake response (with what was sent
	// before it, in one write), pings, pongs and close frames, HTTP error
	// responses, each chunk of a file response. Dropped sends are not
	// counted.
	MessagesSent uint64

	// BytesSent counts the bytes written to the sockets, protocol framing
	// included (Connection.BytesWritten summed; over TLS, before
	// encryption); bytes still queued are not counted yet.
	BytesSent uint64

	// SendBufferFull counts the times a connection's send queue reached
	// MaxSendBufferSize: each OnBufferFull (reported or not), at most
	// once until the queue drained.
	SendBufferFull uint64

	// SendDropped counts the sends dropped because MaxSendBufferSize bytes
	// were already queued: each ErrSendBufferFull (Workerman's send_fail,
	// status's send_fail column).
	SendDropped uint64

	// CodecErrors counts the connections ended by bad input or a timeout,
	// by kind.
	CodecErrors CodecErrors

	// PoolQueued is the number of connections with callbacks to run that
	// wait now for a goroutine of the callback pool (Worker.PoolSize, or
	// the soft limit when it is 0, reached).
	PoolQueued int

	// PoolWaitCount counts the connections that had to wait for a pool
	// goroutine, and PoolWaitDuration the time they waited in all, as
	// DBStats' WaitCount and WaitDuration do: the mean wait over an
	// interval is the change of PoolWaitDuration divided by the change of
	// PoolWaitCount. A connection that found a free goroutine does not
	// count.
	PoolWaitCount    uint64
	PoolWaitDuration time.Duration
}

// CodecErrors counts connections ended by bad input or a timeout, by kind.
// Each one is also reported through OnError (when set) with the error
// named here, and the connection is closed.
type CodecErrors struct {
	// BadPacket: bytes the codec rejected (ErrBadPacket: a malformed
	// frame or request, a WebSocket protocol error, invalid UTF-8 in a
	// text message, an HTTP 400), or any other error of a custom codec's
	// Input or Decode.
	BadPacket uint64
	// PackageTooLarge: a packet or reassembled message over
	// MaxPackageSize (ErrPackageTooLarge, a WebSocket 1009, an HTTP 413 or
	// 431).
	PackageTooLarge uint64
	// HandshakeFailed: a WebSocket opening handshake refused (a
	// *HandshakeError: malformed, or rejected by OnWebSocketConnect), or,
	// on the client side, a server that did not answer it with a 101.
	HandshakeFailed uint64
	// IdleTimeout: nothing received for IdleTimeout (ErrIdleTimeout).
	IdleTimeout uint64
	// HandshakeTimeout: a WebSocket handshake not completed within
	// HandshakeTimeout (ErrHandshakeTimeout).
	HandshakeTimeout uint64
	// HeartbeatTimeout: a WebSocket peer silent for PingNotResponseLimit
	// ping intervals (ErrHeartbeatTimeout).
	HeartbeatTimeout uint64
	// RequestHeadTimeout: an HTTP request head not received within
	// ReadHeaderTimeout (an *HTTPError with status 408).
	RequestHeadTimeout uint64
}

// Total is the sum of every kind.
func (e CodecErrors) Total() uint64 {
	return e.BadPacket + e.PackageTooLarge + e.HandshakeFailed +
		e.IdleTimeout + e.HandshakeTimeout + e.HeartbeatTimeout + e.RequestHeadTimeout
}

// Stats returns the worker's counters since it started; zero before. It is
// safe from any goroutine, also after the worker stopped (the figures are
// then final).
//
// It walks the open connections, taking each event-loop instance's lock
// for as long as its walk takes (tens of nanoseconds per connection): call
// it at monitoring rate (a status page, a Prometheus scrape), not for
// every message.
func (w *Worker) Stats() Stats {
	var s Stats
	if r := w.reactor(); r != nil {
		r.stats(&s)
	}
	w.stats.addTo(&s)
	return s
}

// ProcessStats returns the counters of the whole process: those of every
// worker running now and of every worker that ran before (counted as they
// were when it stopped, so that no counter ever goes down), and those of
// the client side (every AsyncConnection). It is safe from any goroutine;
// its cost is that of Worker.Stats for every worker.
func ProcessStats() Stats {
	globalMu.Lock()
	s := stoppedStats
	ws := make([]*Worker, 0, len(running))
	for w := range running {
		ws = append(ws, w)
	}
	globalMu.Unlock()
	for _, w := range ws {
		s.add(w.Stats())
	}
	s.add(clientSideStats())
	return s
}

// # Where the counting happens, and why it is cheap
//
// The send path is the hot one (a push to 10,000 connections writes
// 10,000 times), so no counter that every message touches is shared
// between goroutines: a counter that all pool goroutines increment bounces
// its cache line between cores on every message.
//
//   - Messages are counted on the connection (Connection.received, sent,
//     dropped): each is written only by the goroutine that runs the
//     connection's callbacks or by the holder of its send lock, one at a
//     time, so the atomic add never contends, on a line that goroutine
//     has just touched anyway. (Counters per event-loop instance would
//     not do: every pool goroutine, and every goroutine of a Multicast,
//     sends to connections of every instance.) The three counters fit in
//     the connection's 160-byte size class (a test holds it): an idle
//     connection costs no more memory.
//   - Bytes are the engine's own per-connection counters (read and
//     written), which it keeps anyway: counting them costs nothing more.
//   - Connections are counted on their event-loop instance, under the
//     lock that adding to and removing from its list takes anyway.
//   - When a connection leaves its instance's list, its counters are added
//     to the instance's totals under that same lock, so Stats, walking the
//     list under the lock, sees every connection exactly once: live, or in
//     the totals.
//   - Rare events (a buffer that fills, a codec error, a timeout) go to
//     counters shared by the worker (stats below): they cost a connection
//     its life, or at least a fill and a drain, never one message.
//   - Pool waits are counted by the pool under the lock its queue takes
//     anyway, and only for connections that did queue.
//
// The price is paid by Stats instead: it walks the open connections.

// stats are a worker's (or the client side's) counters of rare events.
type stats struct {
	bufferFull atomic.Uint64

	badPacket, packageTooLarge, handshakeFailed     atomic.Uint64
	idleTimeout, handshakeTimeout, heartbeatTimeout atomic.Uint64
	requestHeadTimeout                              atomic.Uint64
}

func (st *stats) addTo(s *Stats) {
	s.SendBufferFull += st.bufferFull.Load()
	e := &s.CodecErrors
	e.BadPacket += st.badPacket.Load()
	e.PackageTooLarge += st.packageTooLarge.Load()
	e.HandshakeFailed += st.handshakeFailed.Load()
	e.IdleTimeout += st.idleTimeout.Load()
	e.HandshakeTimeout += st.handshakeTimeout.Load()
	e.HeartbeatTimeout += st.heartbeatTimeout.Load()
	e.RequestHeadTimeout += st.requestHeadTimeout.Load()
}

// countError counts an error reported on c by its kind. input is true for
// the error that ended the connection's input (a codec's Input or
// Decode), which counts as a bad packet when it is of no other kind.
func (c *Connection) countError(err error, input bool) {
	st := c.ep.stats
	var he *protocol.HTTPError
	var hse *protocol.HandshakeError
	switch {
	case errors.Is(err, ErrSendBufferFull):
		c.dropped.Add(1) // on the connection: a storm of drops is per message
	case errors.Is(err, ErrIdleTimeout):
		st.idleTimeout.Add(1)
	case errors.Is(err, protocol.ErrHandshakeTimeout):
		st.handshakeTimeout.Add(1)
	case errors.Is(err, protocol.ErrHeartbeatTimeout):
		st.heartbeatTimeout.Add(1)
	case errors.As(err, &he) && he.Status == 408:
		st.requestHeadTimeout.Add(1)
	case errors.As(err, &hse):
		st.handshakeFailed.Add(1)
	case errors.Is(err, ErrPackageTooLarge):
		st.packageTooLarge.Add(1)
	case errors.Is(err, ErrBadPacket) || input:
		st.badPacket.Add(1)
	}
}

// traffic is what connections moved: the per-connection counters, and an
// instance's totals of the connections it no longer lists.
type traffic struct {
	received, bytesIn, sent, bytesOut, dropped uint64
}

func (c *Connection) traffic() traffic {
	return traffic{
		received: c.received.Load(),
		bytesIn:  c.tc.BytesRead(),
		sent:     c.sent.Load(),
		bytesOut: c.tc.BytesWritten(),
		dropped:  c.dropped.Load(),
	}
}

func (t *traffic) add(o traffic) {
	t.received += o.received
	t.bytesIn += o.bytesIn
	t.sent += o.sent
	t.bytesOut += o.bytesOut
	t.dropped += o.dropped
}

// stats adds the reactor's figures to s: its instances' connections, live
// and closed, and its pool.
func (r *reactor) stats(s *Stats) {
	var t traffic
	for _, in := range r.insts {
		in.mu.Lock()
		s.Connections += in.n
		s.ConnectionsTotal += in.accepted
		t.add(in.closed)
		for c := in.head; c != nil; c = c.next {
			t.add(c.traffic())
		}
		in.mu.Unlock()
	}
	s.MessagesReceived += t.received
	s.BytesReceived += t.bytesIn
	s.MessagesSent += t.sent
	s.BytesSent += t.bytesOut
	s.SendDropped += t.dropped
	s.PoolQueued += int(r.pool.queued.Load())
	n, d := r.pool.waits()
	s.PoolWaitCount += n
	s.PoolWaitDuration += d
}

// add adds o's figures to s.
func (s *Stats) add(o Stats) {
	s.Connections += o.Connections
	s.ConnectionsTotal += o.ConnectionsTotal
	s.MessagesReceived += o.MessagesReceived
	s.BytesReceived += o.BytesReceived
	s.MessagesSent += o.MessagesSent
	s.BytesSent += o.BytesSent
	s.SendBufferFull += o.SendBufferFull
	s.SendDropped += o.SendDropped
	e, oe := &s.CodecErrors, o.CodecErrors
	e.BadPacket += oe.BadPacket
	e.PackageTooLarge += oe.PackageTooLarge
	e.HandshakeFailed += oe.HandshakeFailed
	e.IdleTimeout += oe.IdleTimeout
	e.HandshakeTimeout += oe.HandshakeTimeout
	e.HeartbeatTimeout += oe.HeartbeatTimeout
	e.RequestHeadTimeout += oe.RequestHeadTimeout
	s.PoolQueued += o.PoolQueued
	s.PoolWaitCount += o.PoolWaitCount
	s.PoolWaitDuration += o.PoolWaitDuration
}

// stoppedStats, under globalMu, are the final figures of the workers that
// stopped (see setRunning), so that ProcessStats never goes down.
var stoppedStats Stats

// clientSideStats are the figures of every AsyncConnection: the client
// reactor running now, those stopped before (it stops when no client
// connection is left, and starts again with the next), and the rare
// events the client endpoints share.
func clientSideStats() Stats {
	clientRT.mu.Lock()
	s := clientRT.stopped
	if r := clientRT.r; r != nil {
		r.stats(&s)
	}
	clientRT.mu.Unlock()
	clientStats.addTo(&s)
	return s
}
