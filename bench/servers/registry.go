package servers

import (
	"net"
	"sync"
)

// connSet is the set of open connections of a server, each with the lock
// that keeps a broadcast from interleaving with the connection's own writes.
type connSet[C comparable] struct {
	mu sync.Mutex
	m  map[C]*sync.Mutex
}

func (s *connSet[C]) add(c C) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[C]*sync.Mutex{}
	}
	wmu := new(sync.Mutex)
	s.m[c] = wmu
	return wmu
}

func (s *connSet[C]) remove(c C) {
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
}

// each calls write for every connection, holding its write lock, and
// counts the writes that succeeded.
func (s *connSet[C]) each(write func(C) error) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c, wmu := range s.m {
		wmu.Lock()
		if write(c) == nil {
			n++
		}
		wmu.Unlock()
	}
	return n
}

// goPerConn accepts connections on ln until it is closed and serves each on
// its own goroutine: the plain net.Conn way the goroutine-per-connection
// competitors are written.
func goPerConn(ln net.Listener, serve func(net.Conn)) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
}
