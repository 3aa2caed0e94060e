//go:build linux

package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fdListener is a listening socket served by the loops: one socket in loop 0,
// or with ReusePort one socket per loop and the kernel spreading connections.
type fdListener struct {
	e        *loopEngine
	accept   AcceptFunc
	fds      []int
	owners   []*loop
	watched  []bool // per loop id: the kernel watches its socket (loop-owned)
	local    net.Addr
	unixPath string
	tcp      bool
	spread   bool // hand accepted connections to the least-loaded loop
	paused   atomic.Bool
	closed   atomic.Bool
	mu       sync.Mutex
	held     []heldConn // accepted by the kernel while paused; guarded by mu
}

// heldConn is a connection accepted while the listener was paused, kept
// until the pause ends.
type heldConn struct {
	loop *loop
	fd   int
	peer rawPeer
}

func (e *loopEngine) Listen(spec *Listener, accept AcceptFunc) error {
	if isPacket(spec.Network) {
		return listenUDP(spec, accept, e.Loops())
	}
	if spec.TLS != nil {
		return e.listenTLS(spec, accept)
	}
	family, sa, err := listenSockaddr(spec.Network, spec.Address)
	if err != nil {
		return err
	}
	ln := &fdListener{e: e, accept: accept, tcp: family != unix.AF_UNIX, watched: make([]bool, len(e.loops))}
	ln.paused.Store(spec.Paused)
	if !ln.tcp {
		ln.unixPath = spec.Address
		removeStaleSocket(spec.Address)
	}
	count := 1
	if spec.ReusePort && ln.tcp {
		count = len(e.loops)
	}
	ln.spread = count == 1
	backlog := spec.Backlog
	if backlog <= 0 {
		backlog = 102400
	}
	for i := 0; i < count; i++ {
		fd, err := listenSocket(family, sa, spec.ReusePort, backlog)
		if err != nil {
			ln.closeFDs()
			return fmt.Errorf("workerman: listen %s %s: %w", spec.Network, spec.Address, err)
		}
		ln.fds = append(ln.fds, fd)
		if i == 0 {
			// With port 0 every reuseport socket must bind the port the
			// first one got.
			if bound, err := unix.Getsockname(fd); err == nil {
				sa = bound
				ln.local = sockaddrToAddr(bound)
			}
		}
	}
	for i, fd := range ln.fds {
		l := e.loops[i]
		ln.owners = append(ln.owners, l)
		done := make(chan struct{})
		l.post(task{kind: taskListen, fd: fd, ln: ln, done: done})
		<-done
	}
	spec.impl = ln
	return nil
}

func (ln *fdListener) addr() net.Addr { return ln.local }

func (ln *fdListener) close() error {
	if !ln.closed.CompareAndSwap(false, true) {
		return nil
	}
	for i, fd := range ln.fds {
		done := make(chan struct{})
		ln.owners[i].post(task{kind: taskUnlisten, fd: fd, done: done})
		<-done
	}
	ln.mu.Lock()
	held := ln.held
	ln.held = nil
	ln.mu.Unlock()
	for _, h := range held {
		unix.Close(h.fd)
		h.loop.n.Add(-1)
	}
	if ln.unixPath != "" {
		os.Remove(ln.unixPath)
	}
	return nil
}

func (ln *fdListener) closeFDs() {
	for _, fd := range ln.fds {
		unix.Close(fd)
	}
	ln.fds = nil
}

func (ln *fdListener) setPaused(p bool) {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if ln.closed.Load() || ln.paused.Swap(p) == p {
		return
	}
	kind := taskResumeListen
	if p {
		kind = taskPauseListen
	}
	for i, fd := range ln.fds {
		ln.owners[i].post(task{kind: kind, fd: fd})
	}
	if !p {
		for _, h := range ln.held {
			h.loop.post(task{kind: taskAdopt, fd: h.fd, peer: h.peer, ln: ln})
		}
		ln.held = nil
	}
}

// hold keeps a connection that was accepted while the listener is paused
// (the loop can be accepting when the pause begins), so that nobody hears
// of it before the pause ends. It returns false when not paused.
func (ln *fdListener) hold(l *loop, fd int, peer rawPeer) bool {
	if !ln.paused.Load() {
		return false
	}
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if !ln.paused.Load() || ln.closed.Load() {
		return false
	}
	ln.held = append(ln.held, heldConn{l, fd, peer})
	return true
}

// accept takes a batch of pending connections from lfd. One that empties
// the queue waits for the next readiness (epoll) or completion (io_uring's
// multishot poll, which reports new connections only); one that stops short
// comes back for the rest after the other events.
func (l *loop) accept(ln *fdListener, lfd int) {
	for range acceptBatch {
		fd, peer, err := acceptPeer(lfd)
		if err != nil {
			switch err {
			case unix.EINTR, unix.ECONNABORTED:
				continue
			case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
				// Out of descriptors: stop accepting for a moment rather than
				// spinning on a listener that stays readable.
				ln.setPaused(true)
				time.AfterFunc(100*time.Millisecond, func() { ln.setPaused(false) })
			}
			return
		}
		target := l
		if ln.spread {
			target = l.e.leastLoaded()
		}
		target.n.Add(1) // reserve now so that a burst spreads
		if target == l {
			l.adopt(fd, peer, ln)
		} else {
			target.post(task{kind: taskAdopt, fd: fd, peer: peer, ln: ln})
		}
	}
	// Connections may still be pending.
	if l.e.uring {
		l.post(task{kind: taskAccept, ln: ln, fd: lfd})
	} else {
		l.again = true
	}
}

func (l *loop) adopt(fd int, peer rawPeer, ln *fdListener) {
	if ln.hold(l, fd, peer) {
		return
	}
	c := &fdConn{loop: l, fd: int32(fd), ln: ln}
	c.setRemoteLocked(peer)
	c.state.Store(stOpen)
	h := ln.accept(c, l.id)
	if h == nil {
		unix.Close(fd)
		l.n.Add(-1)
		return
	}
	c.h = h
	c.mu.Lock()
	err := l.register(c)
	c.mu.Unlock()
	if err != nil {
		c.closeFD(err)
	}
}

// Dial prepares a connect on the least-loaded loop.
func (e *loopEngine) Dial(d DialRequest) DialConn {
	if d.TLS != nil {
		return e.dialTLS(d)
	}
	l := e.leastLoaded()
	l.n.Add(1)
	c := &fdConn{loop: l, fd: -1, x: &connExtra{dial: &dialState{addr: d.Address, req: d}}}
	c.state.Store(stConnecting)
	return c
}

func (c *fdConn) Instance() int { return c.loop.id }

// Start begins the non-blocking connect.
func (c *fdConn) Start(h Handler, done func(err error)) {
	l := c.loop
	c.mu.Lock()
	c.h = h
	c.x.dial.done = done // x.dial is only cleared once connected, after Start
	d := c.x.dial.req
	if c.state.Load() != stConnecting {
		// Closed before it started: report it from the loop.
		c.mu.Unlock()
		l.post(task{kind: taskDial, c: c})
		return
	}
	if d.Timeout > 0 {
		c.x.timer = time.AfterFunc(d.Timeout, func() { l.post(task{kind: taskDialTimeout, c: c}) })
	}
	c.mu.Unlock()
	if family, sa, err := dialSockaddr(d.Network, d.Address); err == nil {
		c.startConnect(family, sa)
		l.post(task{kind: taskDial, c: c})
		return
	}
	// Host names need the resolver, which may block: not on a loop.
	go func() {
		family, sa, err := resolveDial(d.Network, d.Address, d.Timeout)
		if err != nil {
			c.mu.Lock()
			c.x.dial.err = err
			c.mu.Unlock()
		} else {
			c.startConnect(family, sa)
		}
		l.post(task{kind: taskDial, c: c})
	}()
}

// startConnect creates the socket and starts connecting (any goroutine,
// before the loop sees the connection).
func (c *fdConn) startConnect(family int, sa unix.Sockaddr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fdClosed {
		return // cancelled before the socket existed
	}
	d := c.x.dial // not cleared before the loop saw the connection
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		d.err = fmt.Errorf("workerman: socket: %w", err)
		return
	}
	if family != unix.AF_UNIX {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	}
	err = unix.Connect(fd, sa)
	if err != nil && err != unix.EINPROGRESS && err != unix.EINTR && err != unix.EAGAIN {
		unix.Close(fd)
		d.err = fmt.Errorf("workerman: connect %s: %w", d.addr, err)
		return
	}
	c.fd = int32(fd)
	c.setRemoteLocked(peerOf(sa))
}

// startDial registers a connecting socket with the loop.
func (l *loop) startDial(c *fdConn) {
	c.mu.Lock()
	if c.fdClosed {
		c.mu.Unlock()
		c.dialFailed(nil) // closed before it connected: report it now
		return
	}
	err := c.x.dial.err
	if err == nil && c.state.Load() != stConnecting {
		err = c.closedErrLocked()
	}
	if err == nil {
		err = l.register(c)
	}
	c.mu.Unlock()
	if err != nil {
		c.dialFailed(err)
	}
}

// finishDial runs when a connecting socket becomes writable. It reports
// whether the connection is up.
func (c *fdConn) finishDial() bool {
	if err := sockError(int(c.fd)); err != nil {
		c.dialFailed(fmt.Errorf("workerman: connect %s: %w", c.dialing().addr, err))
		return false
	}
	c.mu.Lock()
	c.stopTimerLocked()
	c.state.Store(stOpen)
	done := c.x.dial.done
	c.x.dial = nil
	if c.x.closeErr == nil && c.remote.kind != 6 {
		c.x = nil // a connected client is as small as an accepted connection
	}
	c.mu.Unlock()
	done(nil)
	c.mu.Lock()
	c.syncOnLoopLocked() // start reading
	c.mu.Unlock()
	// The socket is writable now: send what was queued while connecting.
	c.flush()
	return true
}

// dialFailed ends a connect that did not complete (loop goroutine). It may
// run before Start (the connection was closed first); done is then called
// when Start comes.
func (c *fdConn) dialFailed(err error) {
	c.mu.Lock()
	d := c.dialLocked()
	if d == nil {
		c.mu.Unlock()
		return // connected meanwhile
	}
	if !c.fdClosed {
		c.fdClosed = true
		c.state.Store(stDead)
		c.dropOutput()
		c.stopTimerLocked()
		if c.fd >= 0 {
			c.releaseFDLocked()
		}
		c.loop.n.Add(-1)
		if err == nil {
			err = c.closeErrLocked()
		}
		if err == nil {
			err = fmt.Errorf("workerman: connect %s: %w", d.addr, net.ErrClosed)
		}
		d.err = err
	}
	done, err := d.done, d.err
	d.done = nil
	c.mu.Unlock()
	if done != nil {
		done(err)
	}
}

// ---- sockets and addresses ----

func listenSocket(family int, sa unix.Sockaddr, reusePort bool, backlog int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	fail := func(err error) (int, error) {
		unix.Close(fd)
		return -1, err
	}
	if family != unix.AF_UNIX {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fail(err)
		}
		if reusePort {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
				return fail(err)
			}
		}
		if family == unix.AF_INET6 {
			unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
		}
		// Inherited by accepted sockets, as in Workerman.
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail(err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		return fail(err)
	}
	return fd, nil
}

func listenSockaddr(network, address string) (int, unix.Sockaddr, error) {
	if network == "unix" {
		return unix.AF_UNIX, &unix.SockaddrUnix{Name: address}, nil
	}
	addr, err := net.ResolveTCPAddr(network, address)
	if err != nil {
		return 0, nil, fmt.Errorf("workerman: listen %s: %w", address, err)
	}
	ip := addr.IP
	if ip == nil {
		if network == "tcp6" {
			ip = net.IPv6unspecified
		} else {
			ip = net.IPv4zero
		}
	}
	return tcpSockaddr(ip, addr.Port, addr.Zone)
}

func dialSockaddr(network, address string) (int, unix.Sockaddr, error) {
	if network == "unix" {
		return unix.AF_UNIX, &unix.SockaddrUnix{Name: address}, nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return 0, nil, err
	}
	return tcpSockaddr(net.IP(ap.Addr().AsSlice()), int(ap.Port()), ap.Addr().Zone())
}

func resolveDial(network, address string, timeout time.Duration) (int, unix.Sockaddr, error) {
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return 0, nil, fmt.Errorf("workerman: connect %s: %w", address, err)
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return 0, nil, fmt.Errorf("workerman: connect %s: %w", address, err)
	}
	p, err := net.LookupPort(network, port)
	if err != nil {
		return 0, nil, fmt.Errorf("workerman: connect %s: %w", address, err)
	}
	for _, ip := range ips {
		if network == "tcp6" && ip.IP.To4() != nil || network == "tcp4" && ip.IP.To4() == nil {
			continue
		}
		return tcpSockaddr(ip.IP, p, ip.Zone)
	}
	return 0, nil, fmt.Errorf("workerman: connect %s: no suitable address", address)
}

func tcpSockaddr(ip net.IP, port int, zone string) (int, unix.Sockaddr, error) {
	if ip4 := ip.To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: port}
		copy(sa.Addr[:], ip4)
		return unix.AF_INET, sa, nil
	}
	if ip16 := ip.To16(); ip16 != nil {
		sa := &unix.SockaddrInet6{Port: port}
		copy(sa.Addr[:], ip16)
		if zone != "" {
			if ifi, err := net.InterfaceByName(zone); err == nil {
				sa.ZoneId = uint32(ifi.Index)
			}
		}
		return unix.AF_INET6, sa, nil
	}
	return 0, nil, errors.New("workerman: invalid IP address")
}

// peerAddr is the peer's address, kept without the allocation of a
// unix.Sockaddr to keep idle connections small: the port and an IPv4
// address inline, an IPv6 address in the connection's connExtra (which is
// what keeps fdConn in its size class).
type peerAddr struct {
	ip4  [4]byte
	port uint16
	kind uint8 // 0 none (unix socket), 4 or 6
}

// rawPeer is a peer's socket address passed by value from the accept to
// the connection: IPv4 in the first 4 bytes of ip.
type rawPeer struct {
	ip   [16]byte
	port uint16
	kind uint8 // 0 none (unix socket), 4 or 6
}

// acceptPeer is unix.Accept4 (non-blocking, close-on-exec) without its two
// allocations per connection, the raw address and a unix.Sockaddr: the
// first lands in fdConn's size class, and the holes such short-lived
// objects leave among the connections cost resident memory for as long as
// the connections live. A raw system call, as in rawio_linux.go: the
// listening socket is non-blocking.
func acceptPeer(lfd int) (int, rawPeer, error) {
	var rsa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	fd, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, rawPeer{}, e
	}
	var p rawPeer
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&rsa))
		port := (*[2]byte)(unsafe.Pointer(&sa.Port)) // network byte order
		p = rawPeer{port: uint16(port[0])<<8 | uint16(port[1]), kind: 4}
		copy(p.ip[:], sa.Addr[:])
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&rsa))
		port := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p = rawPeer{ip: sa.Addr, port: uint16(port[0])<<8 | uint16(port[1]), kind: 6}
	}
	return int(fd), p, nil
}

// peerOf is the rawPeer of a dialed address.
func peerOf(sa unix.Sockaddr) rawPeer {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		p := rawPeer{port: uint16(sa.Port), kind: 4}
		copy(p.ip[:], sa.Addr[:])
		return p
	case *unix.SockaddrInet6:
		return rawPeer{ip: sa.Addr, port: uint16(sa.Port), kind: 6}
	}
	return rawPeer{}
}

// setRemoteLocked records the peer's address; the caller holds mu (or c is
// not shared yet). An IPv4 address mapped into IPv6 (a peer of a
// dual-stack socket) is kept as IPv4: RemoteAddr is the same.
func (c *fdConn) setRemoteLocked(p rawPeer) {
	switch {
	case p.kind == 4:
		c.remote = peerAddr{ip4: [4]byte(p.ip[:4]), port: p.port, kind: 4}
	case p.kind == 6 && net.IP(p.ip[:]).To4() != nil:
		c.remote = peerAddr{ip4: [4]byte(p.ip[12:]), port: p.port, kind: 4}
	case p.kind == 6:
		c.remote = peerAddr{port: p.port, kind: 6}
		c.extraLocked().ip6 = p.ip
	default:
		c.remote = peerAddr{}
	}
}

func (c *fdConn) remoteAddrLocked() net.Addr {
	p := c.remote
	switch p.kind {
	case 4:
		return &net.TCPAddr{IP: net.IPv4(p.ip4[0], p.ip4[1], p.ip4[2], p.ip4[3]), Port: int(p.port)}
	case 6:
		ip := make(net.IP, net.IPv6len)
		copy(ip, c.x.ip6[:])
		return &net.TCPAddr{IP: ip, Port: int(p.port)}
	}
	return nil
}

func sockaddrToAddr(sa unix.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IPv4(sa.Addr[0], sa.Addr[1], sa.Addr[2], sa.Addr[3]), Port: sa.Port}
	case *unix.SockaddrInet6:
		ip := make(net.IP, net.IPv6len)
		copy(ip, sa.Addr[:])
		return &net.TCPAddr{IP: ip, Port: sa.Port}
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: sa.Name, Net: "unix"}
	}
	return nil
}

// removeStaleSocket deletes a unix socket file that nobody listens on any
// more (left behind by a crashed process), so that bind succeeds.
func removeStaleSocket(path string) {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return // alive: let bind fail with "address in use"
	}
	os.Remove(path)
}
