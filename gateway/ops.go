package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/workerman-go/workerman"
)

// do runs a request on the node that holds its client: here, or through
// the broker.
func (g *Gateway) do(ctx context.Context, r request) (reply, error) {
	if g.closed.Load() {
		return reply{}, ErrClosed
	}
	node := NodeOf(r.Client)
	if node == "" {
		return reply{}, ErrClientNotFound
	}
	if node == g.node {
		return g.answer(&r)
	}
	payload, _ := json.Marshal(r)
	out, err := g.broker.Request(ctx, node, payload)
	if errorsIsNodeNotFound(err) {
		return reply{}, ErrClientNotFound
	}
	if err != nil {
		return reply{}, err
	}
	var rep reply
	if err := json.Unmarshal(out, &rep); err != nil {
		return reply{}, fmt.Errorf("gateway: malformed answer from node %q: %w", node, err)
	}
	return rep, codeErr(rep.Err)
}

// gather runs a query on every node: this one's answer first.
func (g *Gateway) gather(ctx context.Context, r request) ([]reply, error) {
	if g.closed.Load() {
		return nil, ErrClosed
	}
	mine, err := g.answer(&r)
	if err != nil {
		return nil, err
	}
	payload, _ := json.Marshal(r)
	outs, err := g.broker.Gather(ctx, payload)
	if err != nil {
		return nil, err
	}
	reps := make([]reply, 1, 1+len(outs))
	reps[0] = mine
	for _, out := range outs {
		var rep reply
		if err := json.Unmarshal(out, &rep); err != nil {
			return nil, fmt.Errorf("gateway: malformed answer from a node: %w", err)
		}
		if err := codeErr(rep.Err); err != nil {
			return nil, err
		}
		reps = append(reps, rep)
	}
	return reps, nil
}

func checkMessage(m Message) error {
	if !m.Binary && !utf8.Valid(m.Data) {
		return ErrInvalidUTF8
	}
	return nil
}

func checkKey(what, key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalidArgument, what)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidArgument, what)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidArgument, what, MaxKeyLen)
	}
	return nil
}

// MaxKeyLen bounds a uid or a group name, in bytes: a key names a subject
// of the cluster's broker, and nobody's uid is a megabyte.
const MaxKeyLen = 1024

// ---- pushes ----

// SendToClient sends m to one client, on whichever node holds it
// (GatewayWorker's sendToClient). It may be called from OnConnect, before
// the client is reachable by other pushes. ErrClientNotFound when no live
// client has this ID.
func (g *Gateway) SendToClient(ctx context.Context, clientID string, m Message) error {
	if err := checkMessage(m); err != nil {
		return err
	}
	_, err := g.do(ctx, request{Op: "send", Client: clientID, Msg: &push{Data: m.Data, Binary: m.Binary}})
	return err
}

// SendToUID sends m to every connection of uid, on every node
// (sendToUid). A uid with no connection is not an error.
func (g *Gateway) SendToUID(ctx context.Context, uid string, m Message) error {
	if err := checkKey("uid", uid); err != nil {
		return err
	}
	return g.publish(ctx, "uid:"+uid, m, nil)
}

// SendToGroup sends m to every member of group except the clients in
// exclude, on every node (sendToGroup). The frame is encoded once for all
// the members of a node.
func (g *Gateway) SendToGroup(ctx context.Context, group string, m Message, exclude ...string) error {
	if err := checkKey("group", group); err != nil {
		return err
	}
	return g.publish(ctx, "group:"+group, m, exclude)
}

// SendToAll sends m to every client of every node except those in exclude
// (sendToAll).
func (g *Gateway) SendToAll(ctx context.Context, m Message, exclude ...string) error {
	return g.publish(ctx, "all", m, exclude)
}

// publish delivers to this node's members, then to the other nodes'.
func (g *Gateway) publish(ctx context.Context, topic string, m Message, exclude []string) error {
	if g.closed.Load() {
		return ErrClosed
	}
	if err := checkMessage(m); err != nil {
		return err
	}
	if g.hist != nil {
		return g.publishHistory(ctx, topic, m, exclude)
	}
	// The other nodes first, so that they fan out while this one does;
	// this node's members get it even when the broker is unreachable.
	payload, _ := json.Marshal(push{Exclude: exclude, Binary: m.Binary, Data: m.Data})
	err := g.broker.Publish(ctx, topic, payload)
	g.deliver(topic, m, exclude)
	return err
}

// publishHistory is publish in history mode: the push gets its offset in
// the stream's history and goes out as an envelope, all under the
// stream's lock, so that every member gets a stream's pushes in offset
// order and a client that resumes gets each push once (the replay or
// live). A push the history did not take is not sent.
func (g *Gateway) publishHistory(ctx context.Context, topic string, m Message, exclude []string) error {
	s := &g.streams[g.streamIndex(topic)]
	s.Lock()
	defer s.Unlock()
	pos, err := g.hist.Append(ctx, topic, m, exclude)
	if err != nil {
		return fmt.Errorf("gateway: history of %s: %w", topic, err)
	}
	payload, _ := json.Marshal(push{Exclude: exclude, Binary: m.Binary, Data: m.Data, Offset: pos.Offset, Epoch: pos.Epoch})
	err = g.broker.Publish(ctx, topic, payload)
	g.arriveLocked(s, topic, pos, m, exclude)
	return err
}

var connLists = sync.Pool{New: func() any { s := make([]*workerman.Connection, 0, 64); return &s }}

// deliver sends m to this node's reachable members of topic, except
// exclude, with one encoded frame for all, and returns how many took it.
func (g *Gateway) deliver(topic string, m Message, exclude []string) int {
	pm, err := workerman.NewPreparedMessage(m.typ(), m.Data)
	if err != nil {
		return 0
	}
	lp := connLists.Get().(*[]*workerman.Connection)
	conns := (*lp)[:0]
	g.mu.RLock()
	if topic == "all" {
		for cl := range g.ready {
			if !slices.Contains(exclude, cl.id) {
				conns = append(conns, cl.conn)
			}
		}
	} else {
		kind, key, _ := strings.Cut(topic, ":")
		for cl := range g.index(kind + ":")[key] {
			if _, ok := g.ready[cl]; ok && !slices.Contains(exclude, cl.id) {
				conns = append(conns, cl.conn)
			}
		}
	}
	g.mu.RUnlock()
	n := workerman.Multicast(conns, pm)
	g.deliveries.Add(uint64(n))
	g.dropped.Add(uint64(len(conns) - n))
	clear(conns)
	*lp = conns[:0]
	connLists.Put(lp)
	return n
}

func (g *Gateway) sendLocal(clientID string, m Message) error {
	g.mu.RLock()
	cl := g.clients[clientID]
	g.mu.RUnlock()
	if cl == nil {
		return ErrClientNotFound
	}
	if err := checkMessage(m); err != nil {
		return err
	}
	if g.hist != nil {
		m = envelope("", Position{}, m)
	}
	err := cl.conn.SendMessage(m.typ(), m.Data)
	if err != nil {
		g.dropped.Add(1)
	} else {
		g.deliveries.Add(1)
	}
	if errorsIsClosed(err) {
		return ErrClientNotFound
	}
	// A full send buffer drops the message, as every push to a slow
	// client does: that is the client's problem, not the caller's.
	return nil
}

// ---- uids and groups ----

// BindUID binds the client to uid (bindUid), replacing the uid it had: a
// client has at most one uid, a uid any number of clients (tabs,
// devices).
func (g *Gateway) BindUID(ctx context.Context, clientID, uid string) error {
	if err := checkKey("uid", uid); err != nil {
		return err
	}
	_, err := g.do(ctx, request{Op: "bind", Client: clientID, Key: uid})
	return err
}

// UnbindUID removes the client's uid when it is uid (unbindUid).
func (g *Gateway) UnbindUID(ctx context.Context, clientID, uid string) error {
	_, err := g.do(ctx, request{Op: "unbind", Client: clientID, Key: uid})
	return err
}

// JoinGroup adds the client to group (joinGroup); a client joins any
// number of groups.
func (g *Gateway) JoinGroup(ctx context.Context, clientID, group string) error {
	if err := checkKey("group", group); err != nil {
		return err
	}
	_, err := g.do(ctx, request{Op: "join", Client: clientID, Key: group})
	return err
}

// LeaveGroup removes the client from group (leaveGroup).
func (g *Gateway) LeaveGroup(ctx context.Context, clientID, group string) error {
	_, err := g.do(ctx, request{Op: "leave", Client: clientID, Key: group})
	return err
}

// Ungroup removes every member from group, on every node (ungroup). The
// clients stay connected.
func (g *Gateway) Ungroup(ctx context.Context, group string) error {
	if err := checkKey("group", group); err != nil {
		return err
	}
	_, err := g.gather(ctx, request{Op: "ungroup", Key: group})
	return err
}

// CloseClient closes the client's connection, after sending final when
// given (closeClient). A WebSocket client gets a close frame with code
// 1000.
func (g *Gateway) CloseClient(ctx context.Context, clientID string, final ...Message) error {
	r := request{Op: "close", Client: clientID}
	if len(final) > 0 {
		if err := checkMessage(final[0]); err != nil {
			return err
		}
		r.Msg = &push{Data: final[0].Data, Binary: final[0].Binary}
	}
	_, err := g.do(ctx, r)
	return err
}

func (g *Gateway) client(clientID string) (*client, error) {
	g.mu.RLock()
	cl := g.clients[clientID]
	g.mu.RUnlock()
	if cl == nil {
		return nil, ErrClientNotFound
	}
	return cl, nil
}

func (g *Gateway) bindLocal(clientID, uid string) error {
	if err := checkKey("uid", uid); err != nil {
		return err
	}
	cl, err := g.client(clientID)
	if err != nil {
		return err
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	g.mu.RLock()
	old, gone := cl.uid, cl.gone
	g.mu.RUnlock()
	if gone {
		return ErrClientNotFound
	}
	if old == uid {
		return nil
	}
	if old != "" {
		g.removeMember("uid:", old, cl, func() {
			if cl.uid == old {
				cl.uid = ""
			}
		})
	}
	if !g.addMember("uid:", uid, cl, func() { cl.uid = uid }) {
		return ErrClientNotFound
	}
	return nil
}

func (g *Gateway) unbindLocal(clientID, uid string) error {
	cl, err := g.client(clientID)
	if err != nil {
		return err
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	g.mu.RLock()
	cur := cl.uid
	g.mu.RUnlock()
	if cur == "" || cur != uid {
		return nil
	}
	g.removeMember("uid:", uid, cl, func() {
		if cl.uid == uid {
			cl.uid = ""
		}
	})
	return nil
}

func (g *Gateway) joinLocal(clientID, group string) error {
	if err := checkKey("group", group); err != nil {
		return err
	}
	cl, err := g.client(clientID)
	if err != nil {
		return err
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if !g.addMember("group:", group, cl, func() {
		if cl.groups == nil {
			cl.groups = make(map[string]struct{})
		}
		cl.groups[group] = struct{}{}
	}) {
		return ErrClientNotFound
	}
	return nil
}

func (g *Gateway) leaveLocal(clientID, group string) error {
	cl, err := g.client(clientID)
	if err != nil {
		return err
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	g.removeMember("group:", group, cl, func() { delete(cl.groups, group) })
	return nil
}

func (g *Gateway) ungroupLocal(group string) {
	g.mu.RLock()
	members := make([]*client, 0, len(g.groups[group]))
	for cl := range g.groups[group] {
		members = append(members, cl)
	}
	g.mu.RUnlock()
	for _, cl := range members {
		g.removeMember("group:", group, cl, func() { delete(cl.groups, group) })
	}
}

func (g *Gateway) closeLocal(clientID string, final []Message) error {
	cl, err := g.client(clientID)
	if err != nil {
		return err
	}
	if len(final) > 0 {
		m := final[0]
		if g.hist != nil {
			m = envelope("", Position{}, m)
		}
		cl.conn.SendMessage(m.typ(), m.Data)
	}
	// Gone from every answer before CloseClient returns; OnClose follows
	// when the connection has closed.
	g.detach(cl)
	cl.conn.Close()
	return nil
}
