// Package servers holds the echo servers the benchmarks compare: this
// library and the Go libraries people would pick instead, each written the
// way its documentation recommends.
package servers

import (
	"fmt"
	"sort"
)

// Server is a running echo server.
type Server interface {
	Addr() string
	// Broadcast sends msg to every connected client (WebSocket servers).
	Broadcast(msg []byte) int
	Close()
}

// Factory starts an echo server for proto ("tcp" raw echo, "websocket").
type Factory func(proto, addr string) (Server, error)

var impls = map[string]Factory{}

func register(name string, f Factory) { impls[name] = f }

// Start starts the named implementation.
func Start(name, proto, addr string) (Server, error) {
	f, ok := impls[name]
	if !ok {
		return nil, fmt.Errorf("unknown server %q (have %v)", name, Names())
	}
	return f(proto, addr)
}

// Names lists the implementations.
func Names() []string {
	var n []string
	for k := range impls {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}
