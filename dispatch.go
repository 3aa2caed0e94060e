package workerman

import (
	"errors"
	"runtime/debug"
	"sync"

	"github.com/workerman-go/workerman/internal/bufpool"
	"github.com/workerman-go/workerman/protocol"
)

// # How callbacks are ordered
//
// Every connection has a job list. The event loop appends to it (a packet
// received, the peer's EOF, the socket closed), and so do Send (buffer full,
// drop) and the engine (buffer drained). Appending to an empty list that no
// goroutine is draining starts one drainer for the connection, which runs
// the jobs in order until the list is empty, then returns:
//
//   - the event loop itself, after its pass over the ready sockets, for
//     the lists its reads started (enqueueOnLoop, reactor.afterPass): a
//     message costs no hand-over to another goroutine. If a callback runs
//     longer than the engine's watchdog tick (about a millisecond), the
//     loop goes on in a new goroutine, the blocked one finishes only its
//     connection's list, and the lists after it go to the pool;
//   - otherwise a goroutine of the worker's ants pool.
//
// So, per connection:
//
//   - callbacks run one at a time, in the order of the events: OnConnect
//     first, OnMessage in arrival order, OnClose last and exactly once;
//   - a callback may block (a database call): only its own connection waits,
//     and the loop's other connections for a millisecond or two (a callback
//     that computes without blocking holds them until the runtime preempts
//     it, about 10 ms, when GOMAXPROCS is 1);
//   - no goroutine exists for a connection with nothing to do.
//
// Decoding happens in the drainer: the loop's pass only frames packets
// (protocol.Codec.Input) and copies them out of its read buffer.

type jobKind uint8

const (
	jobConnect jobKind = iota
	jobMessage
	jobBufferFull
	jobBufferDrain
	jobError    // report err through OnError
	jobFail     // bad input: report, answer (close code, 400) and close
	jobEOF      // the peer closed its side: close ours once jobs before ran
	jobClose    // the socket is closed: OnClose, then forget the connection
	jobCallback // run fn (protocol hooks that must keep the order)
)

type job struct {
	next *job
	kind jobKind
	buf  *[]byte
	err  error
	fn   func(*Connection)
}

var jobPool = sync.Pool{New: func() any { return new(job) }}

func newJob(kind jobKind) *job {
	j := jobPool.Get().(*job)
	j.kind = kind
	return j
}

func freeJob(j *job) {
	if j.buf != nil {
		bufpool.Put(j.buf)
	}
	*j = job{}
	jobPool.Put(j)
}

// maxPendingInput bounds the bytes received but not yet handled by the
// callbacks of one connection. Beyond it the loop stops reading that
// connection (TCP back-pressure to the peer) until the callbacks catch up.
const maxPendingInput = 1 << 20

// pendingSize is what a packet of n bytes adds to Connection.pendingIn. A
// packet is counted up to maxPendingInput+1 bytes: enough to stop reading
// as its whole size would, and it keeps the sum within an int32 (at most
// maxPendingInput plus one packet are queued: see loopSide.OnRead).
func pendingSize(n int) int32 { return int32(min(n, maxPendingInput+1)) }

// enqueue appends j and makes sure a pool goroutine drains the list.
func (c *Connection) enqueue(j *job) {
	c.mu.Lock()
	start := c.appendLocked(j)
	c.mu.Unlock()
	if start {
		c.ep.r.submit(c)
	}
}

// enqueueOnLoop is enqueue on the connection's event loop (in OnRead): a
// list that needs a goroutine is run by the loop after its pass instead of
// being handed to the pool.
func (c *Connection) enqueueOnLoop(j *job) {
	c.mu.Lock()
	start := c.appendLocked(j)
	c.mu.Unlock()
	if !start {
		return
	}
	if !c.ep.r.inline || c.ep.datagram {
		c.ep.r.submit(c) // a datagram's OnRead runs on a reader goroutine
		return
	}
	in := c.inst
	if in.inline == nil {
		if in.inline = in.spare.Swap(nil); in.inline == nil {
			in.inline = &inlineList{in: in}
		}
	}
	in.inline.conns = append(in.inline.conns, c)
}

// appendLocked appends j to the job list, which c.mu guards; true when no
// goroutine drains the list yet and the caller must submit c to the pool.
func (c *Connection) appendLocked(j *job) bool {
	if c.closeQueued {
		freeJob(j) // nothing runs after OnClose
		return false
	}
	if j.kind == jobClose {
		c.closeQueued = true
	}
	if j.kind == jobMessage {
		c.pendingIn += pendingSize(len(*j.buf))
	}
	// The list is a ring held by its last job, one pointer on the
	// connection instead of two.
	if c.jobs == nil {
		j.next = j
	} else {
		j.next = c.jobs.next
		c.jobs.next = j
	}
	c.jobs = j
	start := !c.running
	c.running = true
	return start
}

// run drains the job list, on a pool goroutine (see pool.go).
func (c *Connection) run() {
	for {
		c.mu.Lock()
		last := c.jobs
		c.jobs = nil
		if last == nil {
			c.running = false
			c.mu.Unlock()
			return
		}
		j := last.next
		last.next = nil // the ring, opened after the last job
		c.mu.Unlock()
		for j != nil {
			next := j.next
			c.exec(j)
			freeJob(j)
			j = next
		}
	}
}

func (c *Connection) exec(j *job) {
	ep := c.ep
	switch j.kind {
	case jobConnect:
		if ep.onConnect != nil {
			c.call("OnConnect", func() { ep.onConnect(c) })
		}
	case jobMessage:
		n := len(*j.buf)
		if !c.closing.Load() {
			c.handlePacket(*j.buf)
		}
		c.inputDone(n)
	case jobBufferFull:
		if x := c.ext.Load(); x != nil && x.pipeFrom != nil {
			x.pipeFrom.PauseRecv()
		}
		if ep.onBufferFull != nil {
			c.call("OnBufferFull", func() { ep.onBufferFull(c) })
		}
	case jobBufferDrain:
		if x := c.ext.Load(); x != nil && x.pipeFrom != nil {
			x.pipeFrom.ResumeRecv()
		}
		if ep.onBufferDrain != nil {
			c.call("OnBufferDrain", func() { ep.onBufferDrain(c) })
		}
	case jobError:
		c.reportError(j.err)
	case jobFail:
		if !c.closing.Load() {
			c.reportError(j.err)
			c.failWith(j.err)
		}
	case jobEOF:
		if s := c.session(); s != nil {
			s.EOF(c.side())
		} else {
			c.Close()
		}
	case jobCallback:
		j.fn(c)
	case jobClose:
		c.finish(j.err)
	}
}

// handlePacket decodes one packet and delivers what it carried: data to
// OnMessage (or the Pipe), through the protocol's session when there is
// one (an HTTP request goes to OnRequest); anything else to the session
// (a WebSocket handshake or control frame).
func (c *Connection) handlePacket(packet []byte) {
	s := c.session()
	var cc protocol.Conn = c
	if s != nil {
		cc = c.side()
	}
	msg, err := c.codec.Decode(cc, packet)
	if err != nil {
		c.countError(err, true)
		c.reportError(err)
		c.failWith(err)
		return
	}
	switch msg.Type {
	case protocol.NoMessage:
		return
	case protocol.DataMessage, protocol.TextMessage, protocol.BinaryMessage:
		c.msgType = msg.Type
		c.received.Add(1) // uncontended: one goroutine runs c's callbacks
		if x := c.ext.Load(); x != nil && x.pipeTo != nil {
			x.pipeTo.forward(msg.Data)
			return
		}
	}
	switch {
	case s != nil:
		s.Handle(c.side(), msg)
	case msg.Type == protocol.DataMessage || msg.Type == protocol.TextMessage || msg.Type == protocol.BinaryMessage:
		c.deliver(msg) // a plain codec's other message types have nowhere to go
	}
}

// deliver runs OnMessage with an application message.
func (c *Connection) deliver(m protocol.Message) {
	if f := c.ep.onMessage; f != nil {
		c.call("OnMessage", func() { f(c, m.Data) })
	}
}

// inputDone accounts for a handled packet and resumes reading once the
// callbacks caught up.
func (c *Connection) inputDone(n int) {
	c.mu.Lock()
	c.pendingIn -= pendingSize(n)
	resume := c.bpPaused && c.pendingIn == 0
	if resume {
		c.bpPaused = false
	}
	c.mu.Unlock()
	if resume {
		c.tc.ResumeRead(engineBackpressure)
	}
}

// failWith answers bad input the way the codec wants (a close frame with the
// right code, an HTTP error) and closes the connection.
func (c *Connection) failWith(err error) {
	if s := c.session(); s != nil {
		s.Fail(c.side(), err)
		return
	}
	if r, ok := c.codec.(protocol.ErrorResponder); ok {
		if resp := r.ErrorResponse(err); len(resp) > 0 {
			c.SendRaw(resp)
		}
	}
	c.Close()
}

// finish runs OnClose once and forgets the connection.
func (c *Connection) finish(err error) {
	c.closing.Store(true)
	c.inst.remove(c)
	ep := c.ep
	if s := c.session(); s != nil {
		s.Closed(c.side())
	} else if cl, ok := c.codec.(interface{ OnClose(protocol.Conn) }); ok {
		cl.OnClose(c)
	}
	if x := c.ext.Load(); x != nil && x.pipeTo != nil {
		x.pipeTo.Close()
	}
	if ep.onClose != nil && !ep.datagram {
		c.call("OnClose", func() { ep.onClose(c) })
	}
	ep.r.release()
	if ep.afterClose != nil {
		ep.afterClose(c)
	}
}

func (c *Connection) reportError(err error) {
	if c.ep.onError != nil {
		c.call("OnError", func() { c.ep.onError(c, err) })
	} else if c.ep.log != nil && !errors.Is(err, ErrClosed) {
		c.ep.log.Debug("workerman: connection error", "id", c.id, "err", err)
	}
}

// call runs a user callback. A panic is recovered, logged and reported
// through OnError, and the connection is destroyed: its state is unknown,
// every other connection keeps being served.
func (c *Connection) call(name string, fn func()) {
	defer func() {
		if v := recover(); v != nil {
			perr := &PanicError{Callback: name, Value: v, Stack: debug.Stack()}
			c.ep.log.Error("workerman: callback panicked", "callback", name, "connection", c.id, "panic", v, "stack", string(perr.Stack))
			if name != "OnError" && c.ep.onError != nil {
				func() {
					defer func() { recover() }()
					c.ep.onError(c, perr)
				}()
			}
			c.Destroy()
		}
	}()
	fn()
}
