package gateway

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/workerman-go/workerman/protocol"
)

// History mode keeps, for every stream this node's members read, the
// position they have reached: the offset of the last push delivered to
// them. Every push of the stream passes through it, in offset order,
// whatever order the pushes arrive in. In a cluster, two nodes that push
// to one stream at once get consecutive offsets from the shared history,
// but their pushes may reach a third node in either order; the node then
// delivers the later one only after catching its members up from the
// history, and drops the earlier one when it comes. So every member gets
// each push of a stream once, in offset order, from the position its
// node had when it joined (or the position it resumed from) on.

// stripe is one of the locks that serialise a stream's appends,
// deliveries and resumes on this node, and the positions of the streams
// it guards.
type stripe struct {
	sync.Mutex
	pos map[string]Position // the position this node's members have reached
}

// historyTimeout bounds a read of the history made while a stream's
// pushes wait for it.
const historyTimeout = 10 * time.Second

// current is stream's position in the history: a from that the history
// cannot cover gets only its current position back.
func (g *Gateway) current(ctx context.Context, stream string) (Position, error) {
	_, cur, _, err := g.hist.Since(ctx, stream, Position{Epoch: "-", Offset: math.MaxUint64})
	return cur, err
}

// interested reports whether this node has members of topic.
func (g *Gateway) interested(topic string) bool {
	if topic == "all" {
		return true
	}
	kind, key, _ := strings.Cut(topic, ":")
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.index(kind + ":")[key] != nil
}

// leadsTo reports whether pos is in the history at is in: the same
// epoch, or at is the position of a stream that had no message (an empty
// epoch, offset 0), whose first history any epoch starts.
func leadsTo(at, pos Position) bool {
	return at.Epoch == pos.Epoch || (at.Epoch == "" && at.Offset == 0)
}

// arriveLocked delivers the push at pos of topic to this node's members,
// in its place in the stream's order; s is topic's stripe, locked.
func (g *Gateway) arriveLocked(s *stripe, topic string, pos Position, m Message, exclude []string) {
	if !g.interested(topic) {
		delete(s.pos, topic)
		return
	}
	at, ok := s.pos[topic]
	if ok && leadsTo(at, pos) {
		switch {
		case pos.Offset <= at.Offset:
			return // delivered already, by a catch-up
		case pos.Offset > at.Offset+1:
			if g.catchUpLocked(s, topic, at, pos.Offset) {
				return
			}
		}
	}
	// In order, or the first push since the node's position was lost, or
	// a new history (its epoch changed: what the old one had is gone).
	g.deliver(topic, envelope(topic, pos, m), exclude)
	s.pos[topic] = pos
}

// catchUpLocked delivers topic's messages after at, up to upTo at least,
// from the history, and moves the node's position past them. false: the
// history does not have them (any more); the caller delivers what it has.
func (g *Gateway) catchUpLocked(s *stripe, topic string, at Position, upTo uint64) bool {
	ctx, cancel := context.WithTimeout(context.Background(), historyTimeout)
	defer cancel()
	msgs, cur, ok, err := g.hist.Since(ctx, topic, at)
	if err != nil || !ok || !leadsTo(at, cur) || cur.Offset < upTo {
		g.log.Warn("gateway: pushes of a stream arrived out of order and the history cannot fill the gap; members miss the messages between",
			"stream", topic, "from", at.Offset, "to", upTo, "err", err)
		return false
	}
	for _, e := range msgs {
		g.deliver(topic, envelope(topic, Position{Epoch: cur.Epoch, Offset: e.Offset}, e.Message), e.Exclude)
	}
	s.pos[topic] = cur
	return true
}

// joined starts the node's position in topic, which just got its first
// member on this node: the member gets the pushes after it.
func (g *Gateway) joined(topic string) {
	s := &g.streams[g.streamIndex(topic)]
	s.Lock()
	defer s.Unlock()
	if _, ok := s.pos[topic]; ok || !g.interested(topic) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), historyTimeout)
	defer cancel()
	cur, err := g.current(ctx, topic)
	if err != nil {
		// The first push to arrive starts the position instead.
		g.log.Warn("gateway: reading a stream's position failed", "stream", topic, "err", err)
		return
	}
	s.pos[topic] = cur
}

// left forgets the node's position in topic, which has no member on this
// node any more: pushes no longer reach the node, so the position would
// go stale.
func (g *Gateway) left(topic string) {
	s := &g.streams[g.streamIndex(topic)]
	s.Lock()
	if !g.interested(topic) {
		delete(s.pos, topic)
	}
	s.Unlock()
}

// resumedLocked moves the node's position in topic to cur, the position a
// resuming client's replay ends at, before the client becomes reachable:
// the node's members get what they have not had up to cur from the
// history (pushes on their way to this node: they are dropped when they
// come), so that every member, the new one too, goes on from cur.
func (g *Gateway) resumedLocked(ctx context.Context, s *stripe, topic string, cur Position) {
	at, ok := s.pos[topic]
	if !ok || !leadsTo(at, cur) || at.Offset >= cur.Offset {
		// at.Offset > cur.Offset cannot happen with a history that sees
		// every Append that returned (the node delivers a push only after
		// its Append returned).
		if !ok || !leadsTo(at, cur) {
			s.pos[topic] = cur
		}
		return
	}
	msgs, now, found, err := g.hist.Since(ctx, topic, at)
	if err != nil || !found || !leadsTo(at, now) {
		g.log.Warn("gateway: catching the node's members up for a resuming client failed; they miss the messages between",
			"stream", topic, "from", at.Offset, "to", cur.Offset, "err", err)
		s.pos[topic] = cur
		return
	}
	for _, e := range msgs {
		if e.Offset > cur.Offset {
			break // on their way: they arrive after the client is reachable
		}
		g.deliver(topic, envelope(topic, Position{Epoch: cur.Epoch, Offset: e.Offset}, e.Message), e.Exclude)
	}
	s.pos[topic] = cur
}

// inbox takes the pushes other nodes send in history mode and hands them
// to arrive on a goroutine of its own, so that a Broker that delivers
// while the publishing node holds the stream's lock (the Hub does, in
// the publisher's goroutine) never waits for this node's lock: with two
// nodes publishing to one stream, each would wait for the other.
type inbox struct {
	mu     sync.Mutex
	queue  []inPush
	wake   chan struct{} // 1: the queue has something
	closed bool
	done   chan struct{}
}

type inPush struct {
	topic string
	p     push
}

func (g *Gateway) startInbox() {
	g.in.wake, g.in.done = make(chan struct{}, 1), make(chan struct{})
	go g.inboxLoop()
}

func (g *Gateway) toInbox(topic string, p push) {
	in := &g.in
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return
	}
	in.queue = append(in.queue, inPush{topic, p})
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

func (g *Gateway) inboxLoop() {
	in := &g.in
	defer close(in.done)
	var batch []inPush
	for range in.wake {
		in.mu.Lock()
		batch, in.queue = in.queue, batch[:0]
		in.mu.Unlock()
		for i, x := range batch {
			s := &g.streams[g.streamIndex(x.topic)]
			s.Lock()
			g.arriveLocked(s, x.topic, Position{Epoch: x.p.Epoch, Offset: x.p.Offset}, Message{Data: x.p.Data, Binary: x.p.Binary}, x.p.Exclude)
			s.Unlock()
			batch[i] = inPush{}
		}
	}
}

// stopInbox drops what has not been delivered and waits for the
// goroutine.
func (g *Gateway) stopInbox() {
	in := &g.in
	in.mu.Lock()
	if in.done == nil || in.closed {
		in.mu.Unlock()
		return
	}
	in.closed = true
	close(in.wake)
	in.mu.Unlock()
	<-in.done
}

// addMemberResuming is addMember for a client that resumed topic at
// connect, before it could read it (the backend binds or joins it later,
// as GatewayWorker apps do on the connect event): it gets the messages
// after from, then a resumed frame for topic, then the live pushes, with
// no gap and no duplicate at the seam, as at connect. cl.mu is held.
func (g *Gateway) addMemberResuming(kind, key string, cl *client, change func(), from Position) bool {
	topic := kind + key
	l := g.topicLock(topic)
	l.Lock()
	defer l.Unlock()
	g.mu.RLock()
	gone, first := cl.gone, g.index(kind)[key] == nil
	g.mu.RUnlock()
	if gone {
		return false
	}
	if first {
		if err := g.broker.Subscribe(topic); err != nil {
			g.log.Warn("gateway: subscribe failed; the broker restores it when it reconnects", "topic", topic, "err", err)
		}
	}
	s := &g.streams[g.streamIndex(topic)]
	s.Lock()
	defer s.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), historyTimeout)
	defer cancel()
	msgs, cur, ok, err := g.hist.Since(ctx, topic, from)
	if err != nil {
		g.log.Warn("gateway: reading a stream's history failed; the client resumes it as lost", "stream", topic, "err", err)
		msgs, ok = nil, false
	} else {
		// The node's other members first, up to cur: the client is not a
		// member yet, so it gets none of it twice.
		g.resumedLocked(ctx, s, topic, cur)
	}
	g.mu.Lock()
	if cl.gone {
		empty := g.index(kind)[key] == nil
		g.mu.Unlock()
		if first && empty {
			g.broker.Unsubscribe(topic)
			delete(s.pos, topic)
		}
		return false
	}
	idx := g.index(kind)
	m := idx[key]
	if m == nil {
		m = make(map[*client]struct{})
		idx[key] = m
	}
	m[cl] = struct{}{}
	change()
	g.mu.Unlock()
	// Live pushes of topic wait for s: the replay and resumed go first.
	replay := make([]Message, 0, len(msgs))
	for _, e := range msgs {
		replay = append(replay, envelope(topic, Position{Epoch: cur.Epoch, Offset: e.Offset}, e.Message))
	}
	res, _ := json.Marshal(resumedFrame{Type: "resumed", Streams: map[string]resumedStream{
		topic: {Recovered: ok, Epoch: cur.Epoch, Offset: cur.Offset}}})
	if g.sendReplay(cl, replay, res) {
		// As at connect: the client resumes again from what it got.
		cl.conn.Close()
	}
	return true
}

// sendReplay sends a resuming client its replay (text envelopes) and the
// resumed frame, in one write where the connection allows
// (Connection.SendMessages): a replay of 100 messages is one system call,
// not 100. true: it failed (the send buffer could not take it, or the
// connection is closing); nothing of it was sent then.
func (g *Gateway) sendReplay(cl *client, replay []Message, resumed []byte) (failed bool) {
	batch := make([][]byte, 0, len(replay)+1)
	for _, m := range replay {
		batch = append(batch, m.Data)
	}
	batch = append(batch, resumed)
	if cl.conn.SendMessages(protocol.TextMessage, batch) != nil {
		g.dropped.Add(uint64(len(replay)))
		return true
	}
	g.deliveries.Add(uint64(len(replay)))
	return false
}
