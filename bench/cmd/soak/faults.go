package main

import (
	"bufio"
	crand "crypto/rand"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// faultStat counts one kind of bad peer and how the server dealt with it.
type faultStat struct {
	Started  uint64            `json:"started"`
	Restart  uint64            `json:"restart"` // cut by the server's restart: not judged
	Closed   uint64            `json:"closed"`  // by the server within the bound
	Late     uint64            `json:"late"`    // not closed within the bound
	Got101   uint64            `json:"got101"`  // upgraded although it should not have been
	MaxNs    int64             `json:"max_ns"`  // longest time to the server's close
	Statuses map[string]uint64 `json:"statuses"`
}

type faultReport struct {
	Nonreaders     uint64    `json:"nonreaders"`
	NonreaderFails uint64    `json:"nonreader_fails"`
	HalfOpen       uint64    `json:"halfopen"`
	Slowloris      faultStat `json:"slowloris"`
	Garbage        faultStat `json:"garbage"`
	BadFrame       faultStat `json:"badframe"`
}

type faultCounter struct {
	mu sync.Mutex
	s  faultStat
}

func (f *faultCounter) start() {
	f.mu.Lock()
	f.s.Started++
	f.mu.Unlock()
}

// restartEpoch counts the suite's RESTART lines: odd while the server is
// being killed and started again. A bad peer whose life saw it change was
// cut by the restart and is not judged.
var restartEpoch atomic.Uint64

// done records one bad peer's end: closed by the server after el (within
// bound or not), with the first line it got; epoch is restartEpoch at its
// start.
func (f *faultCounter) done(epoch uint64, el, bound time.Duration, closed bool, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now := restartEpoch.Load(); now != epoch || epoch%2 == 1 {
		f.s.Restart++
		return
	}
	if f.s.Statuses == nil {
		f.s.Statuses = map[string]uint64{}
	}
	switch {
	case closed && el <= bound:
		f.s.Closed++
	default:
		f.s.Late++
	}
	f.s.MaxNs = max(f.s.MaxNs, int64(el))
	if strings.HasPrefix(status, "HTTP/1.1 101") {
		f.s.Got101++
	}
	f.s.Statuses[status]++
}

func (f *faultCounter) get() faultStat {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.s
}

// statusOf shortens what a bad peer got to its status line.
func statusOf(first string, err error) string {
	first = strings.TrimSpace(first)
	if first == "" {
		if err != nil && err != io.EOF {
			return "no response (" + errText(err) + ")"
		}
		return "no response (EOF)"
	}
	if len(first) > 40 {
		first = first[:40]
	}
	return first
}

// readToEnd reads r until the server closes or the deadline passes; it
// returns the first line and whether the server closed (EOF or reset).
func readToEnd(c net.Conn, br *bufio.Reader, deadline time.Time) (string, bool, error) {
	c.SetReadDeadline(deadline)
	first, err := br.ReadString('\n')
	if err == nil {
		_, err = io.Copy(io.Discard, br)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return first, false, err
	}
	return first, true, err
}

// garbageBound: garbage is answered at once; more than this means the
// server stalled.
const garbageBound = 5 * time.Second

// runFaults is the -role faults child: clients that never read,
// slowloris handshakes, garbage instead of a handshake (or an invalid
// frame after one), and, on the suite's command, half-open peers through
// the suite's proxy.
func runFaults(o clientOptions) {
	p := newProc(o)
	cmds := p.commands()
	var (
		fr                   faultReport
		nonreaders, hoCount  atomic.Uint64
		nonreaderFails       atomic.Uint64
		slow, garbage, badfr faultCounter
		stop                 = make(chan struct{})
		wg                   sync.WaitGroup
		waveMu               sync.Mutex
		waves                = map[string][]*wsConn{}
	)
	// Bounds: a slowloris handshake is cut after HandshakeTimeout, noticed
	// by a heartbeat tick (at most one ping interval later); garbage is
	// answered at once.
	slowBound := o.handshakeTimeout + o.ping + 2*time.Second
	garbageBound := garbageBound

	startFaults := func() {
		for i := range o.nonreaders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k, fails := 0, 0; ; k++ {
					select {
					case <-stop:
						return
					default:
					}
					w, err := p.dial(o.addr, fmt.Sprintf("%s.n%d.%d", o.id, i, k), kindNonreader, 4096)
					if err != nil {
						nonreaderFails.Add(1)
						fails++
						backoff(fails, stop)
						continue
					}
					if o.push {
						if err := w.readWelcome(); err != nil {
							nonreaderFails.Add(1)
							w.c.Close()
							fails++
							backoff(fails, stop)
							continue
						}
					}
					fails = 0
					nonreaders.Add(1)
					// It never reads, but it writes an unsolicited pong every
					// second, so that the server's heartbeat keeps it: its
					// send buffer has to fill.
					life := time.NewTimer(o.nonreaderLife)
					beat := time.NewTicker(time.Second)
				held:
					for {
						select {
						case <-beat.C:
							w.write(ws.OpPong, nil)
						case <-life.C:
							break held
						case <-stop:
							break held
						}
					}
					life.Stop()
					beat.Stop()
					w.c.Close() // unread data: the kernel sends an RST
				}
			}()
		}
		for range o.slowloris {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for fails := 0; ; {
					select {
					case <-stop:
						return
					default:
					}
					if !slowlorisOne(o, &slow, slowBound, stop) {
						fails++
						backoff(fails, stop)
					} else {
						fails = 0
					}
				}
			}()
		}
		if o.garbageRate > 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := time.NewTicker(time.Second / time.Duration(o.garbageRate))
				defer t.Stop()
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					case <-t.C:
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						if n%5 == 4 {
							badFrameOne(p, o, &badfr, garbageBound, n)
						} else {
							garbageOne(o, &garbage, garbageBound, n%5)
						}
					}()
				}
			}()
		}
	}

	started := false
	for l := range cmds {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "START":
			if !started {
				started = true
				startFaults()
			}
		case "RESTART": // RESTART 1 before the kill, RESTART 0 once the server listens again
			restartEpoch.Add(1)
		case "STOP":
			select {
			case <-stop:
			default:
				close(stop)
			}
		case "HALFOPEN": // HALFOPEN <wave> <proxy addr> <count>
			k, _ := strconv.Atoi(f[3])
			var conns []*wsConn
			for i := range k {
				w, err := p.dial(f[2], fmt.Sprintf("%s.h%s.%d", o.id, f[1], i), kindHalfOpen, 0)
				if err != nil {
					continue
				}
				conns = append(conns, w)
				hoCount.Add(1)
				go w.run()
			}
			waveMu.Lock()
			waves[f[1]] = conns
			waveMu.Unlock()
			p.say("HALFOPEN-UP %s %d", f[1], len(conns))
		case "VANISH":
			waveMu.Lock()
			for _, w := range waves[f[1]] {
				w.vanished.Store(true)
			}
			waveMu.Unlock()
		case "HALFOPEN-END":
			waveMu.Lock()
			for _, w := range waves[f[1]] {
				w.reset()
			}
			delete(waves, f[1])
			waveMu.Unlock()
		case "FINISH":
			select {
			case <-stop:
			default:
				close(stop)
			}
			waitGroup(&wg, 30*time.Second)
			fr.Nonreaders, fr.NonreaderFails, fr.HalfOpen = nonreaders.Load(), nonreaderFails.Load(), hoCount.Load()
			fr.Slowloris, fr.Garbage, fr.BadFrame = slow.get(), garbage.get(), badfr.get()
			p.report(0, &fr, nil)
			return
		}
	}
}

// slowlorisOne trickles a handshake one byte every 500 ms until the server
// gives up on it; false when it could not connect.
func slowlorisOne(o clientOptions, fc *faultCounter, bound time.Duration, stop <-chan struct{}) bool {
	c, err := dialTCP(o.addr, 0)
	if err != nil {
		return false
	}
	defer c.Close()
	key, _ := wsKey()
	req := "GET /?kind=slowloris HTTP/1.1\r\nHost: " + o.addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	start, epoch := time.Now(), restartEpoch.Load()
	type result struct {
		first  string
		closed bool
		err    error
	}
	res := make(chan result, 1)
	go func() {
		first, closed, err := readToEnd(c, bufio.NewReader(c), start.Add(bound+5*time.Second))
		res <- result{first, closed, err}
	}()
	fc.start()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; {
		select {
		case r := <-res:
			fc.done(epoch, time.Since(start), bound, r.closed, statusOf(r.first, r.err))
			return true
		case <-t.C:
			if i < len(req) {
				c.Write([]byte{req[i]}) // an error means the server closed: res follows
				i++
			}
		case <-stop:
			c.Close()
			<-res // cut short by the suite: not counted
			fc.mu.Lock()
			fc.s.Started--
			fc.mu.Unlock()
			return true
		}
	}
}

// garbageOne sends something that is not a WebSocket handshake and
// expects the server to answer with an error and close.
func garbageOne(o clientOptions, fc *faultCounter, bound time.Duration, variant int) {
	c, err := dialTCP(o.addr, 0)
	if err != nil {
		return
	}
	defer c.Close()
	fc.start()
	var msg []byte
	switch variant {
	case 0: // random bytes, then an end of header
		msg = make([]byte, 512)
		crand.Read(msg)
		msg = append(msg, "\r\n\r\n"...)
	case 1: // HTTP, but no upgrade
		msg = []byte("GET / HTTP/1.1\r\nHost: " + o.addr + "\r\n\r\n")
		if o.push {
			// The push server serves HTTP on its client port (GET
			// /workerman-push.js): a well-formed request is answered and
			// the connection kept alive, as HTTP/1.1 allows; ask for the
			// close.
			msg = []byte("GET / HTTP/1.1\r\nHost: " + o.addr + "\r\nConnection: close\r\n\r\n")
		}
	case 2: // an upgrade with a version nobody speaks
		key, _ := wsKey()
		msg = []byte("GET / HTTP/1.1\r\nHost: " + o.addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 8\r\n\r\n")
	default: // a header over the handshake size limit
		msg = []byte("GET / HTTP/1.1\r\nHost: " + o.addr + "\r\nX-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n")
	}
	start, epoch := time.Now(), restartEpoch.Load()
	c.SetWriteDeadline(start.Add(bound))
	c.Write(msg) // the server may close before all of it is written
	first, closed, err := readToEnd(c, bufio.NewReader(c), start.Add(bound+5*time.Second))
	fc.done(epoch, time.Since(start), bound, closed, statusOf(first, err))
}

// badFrameOne completes a handshake, then sends a frame with a reserved
// opcode: the server must close the connection (with 1002). How many
// close frames it sends is not checked.
func badFrameOne(p *proc, o clientOptions, fc *faultCounter, bound time.Duration, n int) {
	epoch := restartEpoch.Load()
	w, err := p.dial(o.addr, fmt.Sprintf("%s.g%d", o.id, n), kindBadFrame, 0)
	if err != nil {
		return
	}
	defer w.c.Close()
	fc.start()
	start := time.Now()
	w.c.Write([]byte{0x83, 0x80, 1, 2, 3, 4}) // FIN, opcode 3, masked, empty
	w.c.SetReadDeadline(start.Add(bound + 5*time.Second))
	_, err = io.Copy(io.Discard, w.br)
	closed, status := true, "upgraded, then closed"
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		closed, status = false, "upgraded, still open"
	}
	fc.done(epoch, time.Since(start), bound, closed, status)
}
