package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// clientOptions configure a client child (-role steady, churn or faults).
type clientOptions struct {
	role, id, addr string

	n int // steady: connections held

	churn     int // churn: connects per second
	resetFrac float64

	nonreaders       int
	nonreaderLife    time.Duration
	slowloris        int
	garbageRate      int
	handshakeTimeout time.Duration
	ping             time.Duration
	push             bool // -target push: the server is cmd/workerman-push, the suite's backend pushes
}

// proc is the state of one client process.
type proc struct {
	o     clientOptions
	phase atomic.Int32
	lat   [2][nPhases]liveHist // unicast, broadcast

	unicast, broadcast, sessions, connectFails, verified, resets, violations atomic.Uint64

	mu            sync.Mutex
	samples       []string
	ended         []endedConn
	endedOverflow int

	outMu sync.Mutex
	out   *bufio.Writer
}

// clientReport is what a client process tells the suite at the end.
type clientReport struct {
	Role          string              `json:"role"`
	ID            string              `json:"id"`
	Sessions      uint64              `json:"sessions"`
	ConnectFails  uint64              `json:"connect_fails"`
	Verified      uint64              `json:"verified"`
	Resets        uint64              `json:"resets"`
	Unicast       uint64              `json:"unicast"`
	Broadcast     uint64              `json:"broadcast"`
	Violations    uint64              `json:"violations"`
	Samples       []string            `json:"samples"`
	Ended         []endedConn         `json:"ended"`
	EndedOverflow int                 `json:"ended_overflow"`
	Latency       [2][nPhases]hist    `json:"latency"`
	Unfinished    int                 `json:"unfinished"`
	Faults        *faultReport        `json:"faults,omitempty"`
	Churn         map[string]uint64   `json:"churn,omitempty"`
	Extra         map[string][]string `json:"extra,omitempty"`
}

func newProc(o clientOptions) *proc {
	return &proc{o: o, out: bufio.NewWriter(os.Stdout)}
}

func (p *proc) say(format string, args ...any) {
	p.outMu.Lock()
	defer p.outMu.Unlock()
	fmt.Fprintf(p.out, format+"\n", args...)
	p.out.Flush()
}

// connectFailed counts a failed connect; the first few are logged, since
// outside the restart there should be none.
func (p *proc) connectFailed(err error) {
	if n := p.connectFails.Add(1); n <= 3 {
		log.Printf("%s: connect failed: %v", p.o.id, err)
	}
}

func (p *proc) latency(which int, d time.Duration) { p.lat[which][p.phase.Load()].add(d) }

func (p *proc) violation(format string, args ...any) {
	p.violations.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.samples) < 30 {
		p.samples = append(p.samples, p.o.id+": "+fmt.Sprintf(format, args...))
	}
}

func (p *proc) addEnded(e endedConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ended) < 50000 {
		p.ended = append(p.ended, e)
	} else {
		p.endedOverflow++
	}
}

func (p *proc) report(unfinished int, f *faultReport, churn map[string]uint64) {
	r := clientReport{Role: p.o.role, ID: p.o.id, Sessions: p.sessions.Load(), ConnectFails: p.connectFails.Load(),
		Verified: p.verified.Load(), Resets: p.resets.Load(), Unicast: p.unicast.Load(), Broadcast: p.broadcast.Load(),
		Violations: p.violations.Load(), Unfinished: unfinished, Faults: f, Churn: churn}
	p.mu.Lock()
	r.Samples, r.Ended, r.EndedOverflow = p.samples, p.ended, p.endedOverflow
	p.mu.Unlock()
	for i := range p.lat {
		for ph := range p.lat[i] {
			r.Latency[i][ph] = p.lat[i][ph].snapshot()
		}
	}
	b, _ := json.Marshal(r)
	p.say("REPORT %s", b)
}

// commands delivers the suite's lines on stdin; PHASE is handled here.
func (p *proc) commands() <-chan string {
	ch := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			l := sc.Text()
			if ph, ok := strings.CutPrefix(l, "PHASE "); ok {
				p.phase.Store(int32(phaseIndex(ph)))
				continue
			}
			ch <- l
		}
		close(ch)
	}()
	return ch
}

// backoff waits before reconnect attempt k (1, 2, ...): exponential from
// 100 ms to 2 s, with jitter, or until stop.
func backoff(k int, stop <-chan struct{}) {
	d := min(2*time.Second, 100*time.Millisecond<<min(k-1, 5))
	t := time.NewTimer(d/2 + rand.N(d/2+1))
	defer t.Stop()
	select {
	case <-t.C:
	case <-stop:
	}
}

// waitGroup waits for wg at most d and reports whether it finished.
func waitGroup(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// runSteady holds o.n well-behaved connections, reconnecting each with
// back-off when it ends, until FINISH: then each asks the server what it
// sent (bye) and checks the answer.
func runSteady(o clientOptions) {
	p := newProc(o)
	cmds := p.commands()
	var (
		mu        sync.Mutex
		live      = map[int]*wsConn{}
		finishing = make(chan struct{})
		up, all   sync.WaitGroup
		sem       = make(chan struct{}, 100)
	)
	up.Add(o.n)
	for i := range o.n {
		all.Add(1)
		go func() {
			defer all.Done()
			first := true
			for attempt, fails := 0, 0; ; attempt++ {
				select {
				case <-finishing:
					if first {
						up.Done()
					}
					return
				default:
				}
				if first {
					sem <- struct{}{}
				}
				w, err := p.dial(o.addr, fmt.Sprintf("%s.%d.%d", o.id, i, attempt), kindSteady, 0)
				if first {
					<-sem
				}
				if err != nil {
					p.connectFailed(err)
					fails++
					backoff(fails, finishing)
					continue
				}
				fails = 0
				if first {
					up.Done()
					first = false
				}
				p.sessions.Add(1)
				mu.Lock()
				live[i] = w
				select {
				case <-finishing:
					go w.bye()
				default:
				}
				mu.Unlock()
				w.run()
				mu.Lock()
				delete(live, i)
				mu.Unlock()
				if w.fin {
					return
				}
				backoff(1, finishing)
			}
		}()
	}
	go func() { up.Wait(); p.say("UP %d", o.n) }()
	for l := range cmds {
		if l == "FINISH" {
			break
		}
	}
	mu.Lock()
	close(finishing)
	for _, w := range live {
		go w.bye()
	}
	mu.Unlock()
	waitGroup(&all, 30*time.Second)
	mu.Lock()
	unfinished := len(live)
	mu.Unlock()
	p.report(unfinished, nil, nil)
}

// runChurn opens o.churn short-lived connections a second between START
// and STOP. Each lives 0.5-3 s, then says bye and checks the answer, or,
// for a fraction o.resetFrac, closes with an RST.
func runChurn(o clientOptions) {
	p := newProc(o)
	cmds := p.commands()
	var (
		live    sync.WaitGroup
		running atomic.Int64
		skipped atomic.Uint64
		n       atomic.Uint64
		stop    = make(chan struct{})
	)
	spawn := func() {
		if running.Load() > int64(5*o.churn+100) {
			skipped.Add(1) // the server is not keeping up: do not pile up
			return
		}
		kind := kindChurn
		if rand.Float64() < o.resetFrac {
			kind = kindReset
		}
		live.Add(1)
		running.Add(1)
		go func() {
			defer live.Done()
			defer running.Add(-1)
			w, err := p.dial(o.addr, fmt.Sprintf("%s.%d", o.id, n.Add(1)), kind, 0)
			if err != nil {
				p.connectFailed(err)
				return
			}
			p.sessions.Add(1)
			life := 500*time.Millisecond + rand.N(2500*time.Millisecond)
			t := time.AfterFunc(life, func() {
				if kind == kindReset {
					w.reset()
				} else {
					w.bye()
				}
			})
			w.run()
			t.Stop()
		}()
	}
	started := false
	for l := range cmds {
		switch l {
		case "START":
			if !started && o.churn > 0 {
				started = true
				go func() {
					t := time.NewTicker(time.Second / time.Duration(o.churn))
					defer t.Stop()
					for {
						select {
						case <-stop:
							return
						case <-t.C:
							spawn()
						}
					}
				}()
			}
		case "STOP":
			select {
			case <-stop:
			default:
				close(stop)
			}
		case "FINISH":
			select {
			case <-stop:
			default:
				close(stop)
			}
			waitGroup(&live, 30*time.Second)
			p.report(int(running.Load()), nil, map[string]uint64{"skipped": skipped.Load()})
			return
		}
	}
}
