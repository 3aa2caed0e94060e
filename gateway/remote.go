package gateway

import (
	"encoding/json"
	"errors"
)

// The payloads nodes exchange through a Broker: JSON, so that they are
// easy to read in a NATS tap and to fuzz.

// push is a published push: the topic names its members.
type push struct {
	Exclude []string `json:"x,omitempty"`
	Binary  bool     `json:"b,omitempty"`
	Data    []byte   `json:"d"`
	// History mode: the push's position in its stream (Epoch "" without).
	Offset uint64 `json:"o,omitempty"`
	Epoch  string `json:"e,omitempty"`
}

// request is an operation on another node's client, or a query every
// node answers for its own clients.
type request struct {
	Op      string                     `json:"op"`
	Client  string                     `json:"c,omitempty"`
	Key     string                     `json:"k,omitempty"` // uid or group
	Msg     *push                      `json:"m,omitempty"`
	Session map[string]json.RawMessage `json:"s,omitempty"`
}

// reply answers a request. Err is "" or one of the codes below.
type reply struct {
	Err     string                     `json:"e,omitempty"`
	Bool    bool                       `json:"b,omitempty"`
	N       int                        `json:"n,omitempty"`
	List    []string                   `json:"l,omitempty"`
	Str     string                     `json:"v,omitempty"`
	Session map[string]json.RawMessage `json:"s,omitempty"`
}

const (
	errCodeNotFound = "not_found"
	errCodeInvalid  = "invalid"
)

func errCode(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrClientNotFound):
		return errCodeNotFound
	case errors.Is(err, ErrInvalidArgument), errors.Is(err, ErrInvalidUTF8):
		return errCodeInvalid
	}
	return err.Error()
}

func codeErr(code string) error {
	switch code {
	case "":
		return nil
	case errCodeNotFound:
		return ErrClientNotFound
	case errCodeInvalid:
		return ErrInvalidArgument
	}
	return errors.New("gateway: remote node: " + code)
}

// handler is the Gateway's side of its Broker.
type handler Gateway

func (h *handler) HandlePush(topic string, payload []byte) {
	g := (*Gateway)(h)
	var p push
	if json.Unmarshal(payload, &p) != nil {
		g.log.Warn("gateway: malformed push from the broker", "topic", topic)
		return
	}
	m := Message{Data: p.Data, Binary: p.Binary}
	if p.Epoch != "" && g.hist != nil {
		g.toInbox(topic, p)
		return
	}
	if p.Epoch != "" {
		m = envelope(topic, Position{Epoch: p.Epoch, Offset: p.Offset}, m)
	}
	g.deliver(topic, m, p.Exclude)
}

func (h *handler) HandleRequest(payload []byte) []byte {
	g := (*Gateway)(h)
	var r request
	var rep reply
	if err := json.Unmarshal(payload, &r); err != nil {
		rep.Err = "malformed request"
	} else {
		var err error
		rep, err = g.answer(&r)
		rep.Err = errCode(err)
	}
	out, _ := json.Marshal(rep)
	return out
}

// answer runs a request on this node's own clients.
func (g *Gateway) answer(r *request) (reply, error) {
	var rep reply
	var err error
	switch r.Op {
	// Operations on one client this node holds.
	case "send":
		if r.Msg == nil {
			err = ErrInvalidArgument
			break
		}
		err = g.sendLocal(r.Client, Message{Data: r.Msg.Data, Binary: r.Msg.Binary})
	case "bind":
		err = g.bindLocal(r.Client, r.Key)
	case "unbind":
		err = g.unbindLocal(r.Client, r.Key)
	case "join":
		err = g.joinLocal(r.Client, r.Key)
	case "leave":
		err = g.leaveLocal(r.Client, r.Key)
	case "close":
		var final []Message
		if r.Msg != nil {
			final = []Message{{Data: r.Msg.Data, Binary: r.Msg.Binary}}
		}
		err = g.closeLocal(r.Client, final)
	case "online":
		rep.Bool = g.onlineLocal(r.Client)
	case "uid_of":
		rep.Str, err = g.uidLocal(r.Client)
	case "set_session":
		err = g.sessionLocal(r.Client, r.Session, false)
	case "update_session":
		err = g.sessionLocal(r.Client, r.Session, true)
	case "session":
		rep.Session, err = g.getSessionLocal(r.Client)
	// Queries every node answers for its own clients.
	case "clients":
		rep.N = g.localClientCount()
	case "uids":
		rep.List = g.localUIDs()
	case "uid_clients":
		rep.List = g.localMembers("uid:", r.Key)
	case "group_clients":
		rep.List = g.localMembers("group:", r.Key)
	case "group_uids":
		rep.List = g.localGroupUIDs(r.Key)
	case "groups":
		rep.List = g.localGroups()
	case "ungroup":
		g.ungroupLocal(r.Key)
	default:
		err = errors.New("unknown operation " + r.Op)
	}
	return rep, err
}
