package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Broker carries what the nodes of a cluster say to each other. Every
// cross-node operation of a Gateway goes through it; the Gateway encodes
// and decodes the payloads, so a Broker only moves bytes. The default is
// an in-process broker of a single node (NewHub().Broker()); package
// natsbroker (a nested module) implements one over NATS.
//
// Topics are "uid:<uid>", "group:<group>" and "all". A Gateway subscribes
// to a uid's or group's topic while it holds a member, so a push travels
// only to the nodes that need it; every node receives "all" without
// subscribing. A Broker must keep its subscriptions across reconnects.
//
// All methods are called from many goroutines at once.
type Broker interface {
	// Start joins the cluster as node and delivers what other nodes send
	// to h until Close. It fails with ErrNodeExists when a live node
	// already has that name.
	Start(node string, h Handler) error
	// Subscribe makes this node receive the pushes published to topic.
	// When it returns, a Publish on any node reaches this one.
	Subscribe(topic string) error
	// Unsubscribe undoes Subscribe.
	Unsubscribe(topic string) error
	// Publish hands payload to Handler.HandlePush of every other node
	// subscribed to topic (every other node for "all"). It does not wait
	// for them to handle it.
	Publish(ctx context.Context, topic string, payload []byte) error
	// Request sends payload to one node's Handler.HandleRequest and returns
	// its answer; ErrNodeNotFound when no live node has that name.
	Request(ctx context.Context, node string, payload []byte) ([]byte, error)
	// Gather sends payload to Handler.HandleRequest of every other live
	// node and returns all their answers (cluster-wide queries). A node
	// that does not answer before ctx ends fails the call, so that an
	// answer is never silently partial.
	Gather(ctx context.Context, payload []byte) ([][]byte, error)
	// Close leaves the cluster.
	Close() error
}

// Handler is the node's side of a Broker: what other nodes send it.
type Handler interface {
	// HandlePush delivers a push published to topic to this node's members.
	HandlePush(topic string, payload []byte)
	// HandleRequest answers a request from another node.
	HandleRequest(payload []byte) []byte
}

var (
	// ErrNodeExists: Broker.Start found a live node with the same name.
	ErrNodeExists = errors.New("gateway: a node with this name is already running in the cluster")
	// ErrNodeNotFound: no live node has the name a client ID carries.
	ErrNodeNotFound = errors.New("gateway: no such node")
	// ErrBrokerUnavailable: the cluster cannot be reached; operations on
	// this node's own clients keep working.
	ErrBrokerUnavailable = errors.New("gateway: cluster broker unavailable")
)

// Hub connects the gateways of one process as the nodes of one cluster,
// with no network: each Broker it makes is one node. It is the default
// broker (a hub of one), and it lets tests and programs run several
// gateways in one process as a cluster, with the semantics of the NATS
// broker: interest-based pushes, requests to a node, gathers.
type Hub struct {
	mu    sync.RWMutex
	nodes map[string]*hubBroker
}

// NewHub makes an empty hub.
func NewHub() *Hub { return &Hub{nodes: make(map[string]*hubBroker)} }

// Broker makes a broker for one more node of the hub.
func (h *Hub) Broker() Broker { return &hubBroker{hub: h, topics: make(map[string]bool)} }

type hubBroker struct {
	hub *Hub

	mu      sync.RWMutex
	node    string
	handler Handler
	topics  map[string]bool
	started bool
	closed  bool
}

func (b *hubBroker) Start(node string, h Handler) error {
	b.hub.mu.Lock()
	defer b.hub.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return errors.New("gateway: broker already started")
	}
	if _, ok := b.hub.nodes[node]; ok {
		return fmt.Errorf("%w: %q", ErrNodeExists, node)
	}
	b.node, b.handler, b.started = node, h, true
	b.hub.nodes[node] = b
	return nil
}

func (b *hubBroker) Subscribe(topic string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.topics[topic] = true
	return nil
}

func (b *hubBroker) Unsubscribe(topic string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.topics, topic)
	return nil
}

// others lists the other live nodes.
func (b *hubBroker) others() ([]*hubBroker, error) {
	b.hub.mu.RLock()
	defer b.hub.mu.RUnlock()
	if b.hub.nodes[b.node] != b {
		return nil, ErrBrokerUnavailable
	}
	out := make([]*hubBroker, 0, len(b.hub.nodes)-1)
	for _, n := range b.hub.nodes {
		if n != b {
			out = append(out, n)
		}
	}
	return out, nil
}

func (b *hubBroker) Publish(ctx context.Context, topic string, payload []byte) error {
	nodes, err := b.others()
	if err != nil {
		return err
	}
	for _, n := range nodes {
		n.mu.RLock()
		ok := topic == "all" || n.topics[topic]
		h := n.handler
		n.mu.RUnlock()
		if ok {
			h.HandlePush(topic, payload)
		}
	}
	return nil
}

func (b *hubBroker) Request(ctx context.Context, node string, payload []byte) ([]byte, error) {
	if _, err := b.others(); err != nil {
		return nil, err
	}
	b.hub.mu.RLock()
	n := b.hub.nodes[node]
	b.hub.mu.RUnlock()
	if n == nil {
		return nil, fmt.Errorf("%w: %q", ErrNodeNotFound, node)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return n.handler.HandleRequest(payload), nil
}

func (b *hubBroker) Gather(ctx context.Context, payload []byte) ([][]byte, error) {
	nodes, err := b.others()
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(nodes))
	for _, n := range nodes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out = append(out, n.handler.HandleRequest(payload))
	}
	return out, nil
}

func (b *hubBroker) Close() error {
	b.hub.mu.Lock()
	defer b.hub.mu.Unlock()
	if b.hub.nodes[b.node] == b {
		delete(b.hub.nodes, b.node)
	}
	return nil
}
