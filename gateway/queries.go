package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"

	"github.com/workerman-go/workerman"
)

func errorsIsNodeNotFound(err error) bool { return errors.Is(err, ErrNodeNotFound) }

func errorsIsClosed(err error) bool {
	return errors.Is(err, workerman.ErrClosed) || errors.Is(err, net.ErrClosed)
}

// ---- questions about one client ----

// IsOnline tells whether a client with this ID is connected, on any node
// (isOnline).
func (g *Gateway) IsOnline(ctx context.Context, clientID string) (bool, error) {
	rep, err := g.do(ctx, request{Op: "online", Client: clientID})
	if errors.Is(err, ErrClientNotFound) {
		return false, nil
	}
	return rep.Bool, err
}

// UIDByClientID is the uid bound to the client, "" when none
// (getUidByClientId). ErrClientNotFound when no live client has this ID.
func (g *Gateway) UIDByClientID(ctx context.Context, clientID string) (string, error) {
	rep, err := g.do(ctx, request{Op: "uid_of", Client: clientID})
	return rep.Str, err
}

func (g *Gateway) onlineLocal(clientID string) bool {
	_, err := g.client(clientID)
	return err == nil
}

func (g *Gateway) uidLocal(clientID string) (string, error) {
	cl, err := g.client(clientID)
	if err != nil {
		return "", err
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	return cl.uid, nil
}

// ---- cluster-wide questions ----

// IsUIDOnline tells whether uid has a connection on any node
// (isUidOnline).
func (g *Gateway) IsUIDOnline(ctx context.Context, uid string) (bool, error) {
	if len(g.localMembers("uid:", uid)) > 0 {
		return true, nil
	}
	ids, err := g.ClientIDsByUID(ctx, uid)
	return len(ids) > 0, err
}

// ClientIDsByUID lists uid's clients on every node, sorted
// (getClientIdByUid).
func (g *Gateway) ClientIDsByUID(ctx context.Context, uid string) ([]string, error) {
	return g.gatherList(ctx, request{Op: "uid_clients", Key: uid})
}

// ClientCount is the number of clients on every node (getAllClientCount).
func (g *Gateway) ClientCount(ctx context.Context) (int, error) {
	reps, err := g.gather(ctx, request{Op: "clients"})
	n := 0
	for _, r := range reps {
		n += r.N
	}
	return n, err
}

// UIDCount is the number of distinct bound uids on every node
// (getAllUidCount). In a cluster it gathers every node's uid list.
func (g *Gateway) UIDCount(ctx context.Context) (int, error) {
	l, err := g.gatherList(ctx, request{Op: "uids"})
	return len(l), err
}

// GroupClientIDs lists the group's clients on every node, sorted
// (getClientIdListByGroup).
func (g *Gateway) GroupClientIDs(ctx context.Context, group string) ([]string, error) {
	return g.gatherList(ctx, request{Op: "group_clients", Key: group})
}

// GroupUIDs lists the distinct uids of the group's members on every node,
// sorted (getUidListByGroup).
func (g *Gateway) GroupUIDs(ctx context.Context, group string) ([]string, error) {
	return g.gatherList(ctx, request{Op: "group_uids", Key: group})
}

// GroupClientCount is the number of the group's clients on every node
// (getClientCountByGroup).
func (g *Gateway) GroupClientCount(ctx context.Context, group string) (int, error) {
	l, err := g.GroupClientIDs(ctx, group)
	return len(l), err
}

// Groups lists the groups that have a member on any node, sorted
// (getAllGroupIdList).
func (g *Gateway) Groups(ctx context.Context) ([]string, error) {
	return g.gatherList(ctx, request{Op: "groups"})
}

// gatherList merges every node's list: sorted, without duplicates.
func (g *Gateway) gatherList(ctx context.Context, r request) ([]string, error) {
	reps, err := g.gather(ctx, r)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rep := range reps {
		out = append(out, rep.List...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// LocalUIDs lists the distinct uids bound to this node's clients, in no
// order: what Stats().UIDs counts, not the cluster's (UIDCount asks every
// node). It is a copy, made under the read lock that binds wait for; a
// status page can turn each node's list into a small digest and merge the
// digests into a cluster-wide distinct count, which costs less than
// UIDCount's gather of every node's list when uids are many.
func (g *Gateway) LocalUIDs() []string { return g.localUIDs() }

// LocalGroups lists the groups with a member on this node, in no order:
// what Stats().Groups counts, not the cluster's (Groups asks every node).
// It is a copy, like LocalUIDs.
func (g *Gateway) LocalGroups() []string { return g.localGroups() }

func (g *Gateway) localClientCount() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.clients)
}

func (g *Gateway) localUIDs() []string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return slices.Collect(maps.Keys(g.uids))
}

func (g *Gateway) localGroups() []string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return slices.Collect(maps.Keys(g.groups))
}

func (g *Gateway) localMembers(kind, key string) []string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	m := g.index(kind)[key]
	out := make([]string, 0, len(m))
	for cl := range m {
		out = append(out, cl.id)
	}
	return out
}

func (g *Gateway) localGroupUIDs(group string) []string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []string
	for cl := range g.groups[group] {
		if cl.uid != "" {
			out = append(out, cl.uid)
		}
	}
	return out
}

// ---- sessions ----

// SetSession replaces the client's session (setSession). Values must
// marshal to JSON; they are stored as JSON, so Session returns them as
// encoding/json decodes them (numbers as float64), on every node alike.
func (g *Gateway) SetSession(ctx context.Context, clientID string, session map[string]any) error {
	return g.putSession(ctx, "set_session", clientID, session)
}

// UpdateSession merges the top-level keys of update into the client's
// session (updateSession).
func (g *Gateway) UpdateSession(ctx context.Context, clientID string, update map[string]any) error {
	return g.putSession(ctx, "update_session", clientID, update)
}

// Session is the client's session, a copy (getSession); an empty map when
// none was set.
func (g *Gateway) Session(ctx context.Context, clientID string) (map[string]any, error) {
	rep, err := g.do(ctx, request{Op: "session", Client: clientID})
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(rep.Session))
	for k, v := range rep.Session {
		var x any
		if err := json.Unmarshal(v, &x); err != nil {
			return nil, fmt.Errorf("gateway: session key %q: %w", k, err)
		}
		out[k] = x
	}
	return out, nil
}

func (g *Gateway) putSession(ctx context.Context, op, clientID string, s map[string]any) error {
	enc := make(map[string]json.RawMessage, len(s))
	for k, v := range s {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("%w: session key %q: %v", ErrInvalidArgument, k, err)
		}
		enc[k] = b
	}
	_, err := g.do(ctx, request{Op: op, Client: clientID, Session: enc})
	return err
}

func (g *Gateway) sessionLocal(clientID string, s map[string]json.RawMessage, merge bool) error {
	for k, v := range s {
		if !json.Valid(v) {
			return fmt.Errorf("%w: session key %q is not JSON", ErrInvalidArgument, k)
		}
	}
	cl, err := g.client(clientID)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !merge || cl.session == nil {
		cl.session = make(map[string]json.RawMessage, len(s))
	}
	for k, v := range s {
		cl.session[k] = slices.Clone(v)
	}
	return nil
}

func (g *Gateway) getSessionLocal(clientID string) (map[string]json.RawMessage, error) {
	cl, err := g.client(clientID)
	if err != nil {
		return nil, err
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	return maps.Clone(cl.session), nil
}
