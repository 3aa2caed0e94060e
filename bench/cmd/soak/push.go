package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/workerman-go/workerman/bench/internal/procstat"
)

// -target push: the server under test is cmd/workerman-push, built once
// and run as a child process, and the numbered messages come from a small
// backend in the orchestrator that pushes them through the push server's
// HTTP API, as an application backend would:
//
//   - each well-behaved client parses its welcome
//     ({"type":"welcome","client_id":…}) and reports its client ID to the
//     orchestrator on its stdout (PUSH CID <client_id> <kind> <cid>); from
//     then on the backend sends it "u <seq> <ns>" with sendToClient at
//     -rate (seq counts the calls answered 200), and every -broadcast-every
//     "b <bseq> <ns>" goes to everyone with sendToAll;
//   - bye goes to the backend instead of the server (PUSH BYE <client_id>):
//     the backend stops pushing to that client and sends it, through the
//     server, "f <n> <blast> 0 <bstart>": unicast 1..n were accepted, and
//     every broadcast bstart+1..blast was started after the client was
//     known (bstart is the broadcast counter when its report arrived), so
//     it must have them all; earlier ones may arrive too.
//
// One caller at a time per client keeps its unicasts in order; no
// broadcast runs while an answer to bye is being sent, so blast is exact.
// What the push server does not expose (its goroutines, drop counters,
// close reasons) is reported as n/a, not guessed.

const pushAPIKey = "soak-backend-key"

// buildPush builds cmd/workerman-push into dir.
func buildPush(dir string) (string, error) {
	bin := filepath.Join(dir, "workerman-push")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/workerman-go/workerman/cmd/workerman-push")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build cmd/workerman-push: %w", err)
	}
	return bin, nil
}

// freePort reserves a loopback port for the push server's API.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startPush runs the push server on addr (clients) and api, and waits
// until it answers /healthz and accepts WebSocket connections.
func startPush(o options, bin, addr, api string) (*serverProc, error) {
	cmd := exec.Command(bin, "-listen", "websocket://"+addr, "-api", "http://"+api, "-api-key", pushAPIKey,
		"-ping-interval", o.ping.String(), "-count", strconv.Itoa(o.loops), "-node-id", "soak")
	c, err := spawnCmd("push-server", cmd, true)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if !c.alive() {
			return nil, errors.New("the push server exited at start")
		}
		resp, err := http.Get("http://" + api + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				if tc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
					tc.Close()
					break
				}
			}
		}
		if time.Now().After(deadline) {
			c.kill()
			return nil, fmt.Errorf("the push server did not become healthy on %s within 30 s", api)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &serverProc{child: c, addr: addr, push: true}, nil
}

// sigterm stops the process with SIGTERM (the push server sends its
// clients 1001 and exits), killing it after d.
func (c *child) sigterm(d time.Duration) {
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(d):
		c.cmd.Process.Kill()
		<-c.exited
	}
}

// pclient is the backend's account of one client ID.
type pclient struct {
	pid, cid, kind string
	phase          uint64
	worker         int

	mu       sync.Mutex
	sent     uint64 // unicast 1..sent answered 200
	bStart   uint64
	finished bool
	gone     bool
}

type pushJob struct {
	c   *pclient
	n   uint64
	pad bool
}

// pushBackend is the application backend of -target push.
type pushBackend struct {
	o   options
	api atomic.Value // string: http://host:port
	hc  *http.Client
	pad []byte

	mu      sync.Mutex
	clients map[string]*pclient
	atKill  map[string]uint64 // client ID -> unicasts accepted, at the restart's kill
	steady  map[string]time.Time

	bmu  sync.RWMutex // broadcasts (write) against answers to bye and registrations (read)
	bseq uint64

	paused, frozen atomic.Bool
	inflight       atomic.Int64 // jobs queued or running
	workers        []chan pushJob

	unicastSent, broadcasts, byes, notFound atomic.Uint64
	errMu                                   sync.Mutex
	apiErrs                                 map[string]uint64
	stop                                    chan struct{}
}

func newPushBackend(o options, api string) *pushBackend {
	b := &pushBackend{o: o, clients: map[string]*pclient{}, steady: map[string]time.Time{}, apiErrs: map[string]uint64{},
		pad: bytes.Repeat([]byte{'.'}, o.nonreaderPad), stop: make(chan struct{}),
		hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64, IdleConnTimeout: time.Minute}}}
	b.api.Store("http://" + api)
	for range 16 {
		ch := make(chan pushJob, 1024)
		b.workers = append(b.workers, ch)
		go b.worker(ch)
	}
	go b.pusher()
	go b.broadcaster()
	return b
}

func (b *pushBackend) close() { close(b.stop) }

func (b *pushBackend) apiErr(what string) {
	b.errMu.Lock()
	defer b.errMu.Unlock()
	if _, seen := b.apiErrs[what]; seen || len(b.apiErrs) < 30 {
		b.apiErrs[what]++
	}
}

// call POSTs one API call and decodes the answer into out (when not nil).
func (b *pushBackend) call(method string, body, out any) (int, error) {
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", b.api.Load().(string)+"/api/"+method, bytes.NewReader(j))
	req.Header.Set("Authorization", "Bearer "+pushAPIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode == 200 && out != nil {
		return 200, json.Unmarshal(rb, out)
	}
	return resp.StatusCode, nil
}

// line handles a PUSH line of a client process: CID synchronously (so that
// a BYE that follows finds it), BYE in the background.
func (b *pushBackend) line(l string) {
	f := strings.Fields(l)
	switch {
	case len(f) == 5 && f[1] == "CID": // PUSH CID <client_id> <kind> <cid>
		c := &pclient{pid: f[2], kind: f[3], cid: f[4]}
		h := fnv.New32a()
		h.Write([]byte(c.pid))
		c.phase, c.worker = uint64(h.Sum32()%10), int(h.Sum32()/10%16)
		b.bmu.RLock()
		c.bStart = b.bseq
		b.mu.Lock()
		b.clients[c.pid] = c
		if c.kind == kindSteady {
			slot := c.cid[:strings.LastIndexByte(c.cid, '.')]
			b.steady[slot] = time.Now()
		}
		b.mu.Unlock()
		b.bmu.RUnlock()
	case len(f) == 3 && f[1] == "BYE":
		go b.bye(f[2])
	}
}

// bye answers a client's bye through the server: f <n> <blast> 0 <bstart>.
func (b *pushBackend) bye(pid string) {
	b.mu.Lock()
	c := b.clients[pid]
	b.mu.Unlock()
	if c == nil {
		b.apiErr("bye from an unknown client")
		return
	}
	b.byes.Add(1)
	b.bmu.RLock() // no broadcast starts until f is accepted; byes run in parallel
	defer b.bmu.RUnlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finished = true
	msg := string(appendMsg(nil, 'f', c.sent, b.bseq, 0, c.bStart))
	code, err := b.call("sendToClient", map[string]string{"client_id": pid, "message": msg}, nil)
	b.account("sendToClient (bye)", code, err)
	b.mu.Lock()
	delete(b.clients, pid)
	b.mu.Unlock()
}

func (b *pushBackend) account(what string, code int, err error) {
	switch {
	case err != nil:
		b.apiErr(what + ": " + errText(err))
	case code == 404:
		b.notFound.Add(1)
	case code != 200:
		b.apiErr(fmt.Sprintf("%s: HTTP %d", what, code))
	}
}

// pusher: every 100 ms, each client's share of -rate unicasts, spread over
// the ten ticks of a second; non-readers get one padded message a tick.
func (b *pushBackend) pusher() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	r := uint64(b.o.rate)
	for tick := uint64(0); ; tick++ {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		if b.paused.Load() || b.frozen.Load() {
			continue
		}
		b.mu.Lock()
		list := make([]*pclient, 0, len(b.clients))
		for _, c := range b.clients {
			list = append(list, c)
		}
		b.mu.Unlock()
		for _, c := range list {
			j := pushJob{c: c, n: ((tick+1)*r+c.phase)/10 - (tick*r+c.phase)/10}
			if c.kind == kindNonreader {
				j.n, j.pad = 1, true
			}
			if j.n == 0 {
				continue
			}
			b.inflight.Add(1)
			b.workers[c.worker] <- j
		}
	}
}

// worker runs the pushes of the clients assigned to it, one call at a time,
// so that each client's unicasts are accepted in order.
func (b *pushBackend) worker(ch chan pushJob) {
	for j := range ch {
		b.run(j)
		b.inflight.Add(-1)
	}
}

func (b *pushBackend) run(j pushJob) {
	c := j.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for range j.n {
		if c.finished || c.gone || b.frozen.Load() {
			return
		}
		msg := appendMsg(nil, 'u', c.sent+1, uint64(time.Now().UnixNano()))
		if j.pad {
			msg = append(append(msg, ' '), b.pad...)
		}
		code, err := b.call("sendToClient", map[string]string{"client_id": c.pid, "message": string(msg)}, nil)
		b.account("sendToClient", code, err)
		switch {
		case err == nil && code == 200:
			c.sent++
			b.unicastSent.Add(1)
		case err == nil && code == 404:
			c.gone = true
			b.mu.Lock()
			delete(b.clients, c.pid)
			b.mu.Unlock()
			return
		default:
			return
		}
	}
}

// broadcaster numbers a sendToAll every -broadcast-every.
func (b *pushBackend) broadcaster() {
	t := time.NewTicker(b.o.broadcastEvery)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		if b.paused.Load() || b.frozen.Load() {
			continue
		}
		b.bmu.Lock()
		b.bseq++
		msg := appendMsg(nil, 'b', b.bseq, uint64(time.Now().UnixNano()))
		code, err := b.call("sendToAll", map[string]string{"message": string(msg)}, nil)
		b.account("sendToAll", code, err)
		b.broadcasts.Add(1)
		b.bmu.Unlock()
	}
}

// freeze stops the pushes and waits for the calls in flight, before the
// restart's kill; it returns how many clients the backend held.
func (b *pushBackend) freeze() int {
	b.frozen.Store(true)
	b.bmu.Lock() // no broadcast, no answer to bye in flight
	b.bmu.Unlock()
	// The jobs still queued return at once (run checks frozen); bounded
	// poll for the calls in flight.
	for deadline := time.Now().Add(10 * time.Second); b.inflight.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	// Lock order: a client's mu, then b.mu (run and bye delete under both).
	b.mu.Lock()
	old := b.clients
	b.clients = map[string]*pclient{}
	b.mu.Unlock()
	atKill := map[string]uint64{}
	for pid, c := range old {
		c.mu.Lock()
		atKill[pid] = c.sent
		c.gone = true
		c.mu.Unlock()
	}
	b.mu.Lock()
	b.atKill = atKill
	b.mu.Unlock()
	return len(atKill)
}

func (b *pushBackend) thaw() { b.frozen.Store(false) }

// steadyBackSince: long-lived client slots that registered after t.
func (b *pushBackend) steadyBackSince(t time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, at := range b.steady {
		if at.After(t) {
			n++
		}
	}
	return n
}

// halfOpenIDs: client IDs of the half-open peers of one wave (cid prefix).
func (b *pushBackend) idsWithPrefix(prefix string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for pid, c := range b.clients {
		if strings.HasPrefix(c.cid, prefix) {
			out = append(out, pid)
		}
	}
	return out
}

func (b *pushBackend) clientCount() (int, error) {
	var r struct {
		Count int `json:"count"`
	}
	code, err := b.call("getAllClientCount", map[string]any{}, &r)
	if err == nil && code != 200 {
		err = fmt.Errorf("getAllClientCount: HTTP %d", code)
	}
	return r.Count, err
}

func (b *pushBackend) online(pid string) (bool, error) {
	var r struct {
		Online bool `json:"online"`
	}
	code, err := b.call("isOnline", map[string]string{"client_id": pid}, &r)
	if err == nil && code != 200 {
		err = fmt.Errorf("isOnline: HTTP %d", code)
	}
	return r.Online, err
}

// pushStats fills what the suite can know of the push server: clients
// (the API's count, as Conns and as open long-lived connections when
// settled), resources from /proc. Goroutines are unknown (-1).
func (s *serverProc) pushStats(b *pushBackend) (serverStats, error) {
	n, err := b.clientCount()
	if err != nil {
		return serverStats{}, err
	}
	return serverStats{Goroutines: -1, Conns: n, Open: map[string]int64{}}, nil
}

// backend is the running backend of -target push.
var backend *pushBackend

// measurePush reads the push server's level in a quiet moment: the backend
// pauses its pushes and broadcasts for 4 s (a ping interval and more), then
// resident memory and descriptors are read from /proc. The push server
// cannot be made to collect garbage nor asked for its goroutines.
func (s *serverProc) measurePush() (resources, error) {
	backend.paused.Store(true)
	defer backend.paused.Store(false)
	if !sleepOrExit(s.child, 4*time.Second) {
		return resources{}, errors.New("the push server exited while measuring")
	}
	n, err := backend.clientCount()
	if err != nil {
		return resources{}, err
	}
	pid := s.pid()
	return resources{RSS: procstat.RSS(pid), RSSAnon: statusKB(pid, "RssAnon:"), FDs: countFDs(pid), Goroutines: -1, Conns: n}, nil
}

func sleepOrExit(c *child, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-c.exited:
		return false
	}
}
