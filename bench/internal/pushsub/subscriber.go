package pushsub

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MaxPushes bounds the push numbers a subscriber process counts.
const MaxPushes = 100000

// Options of a subscriber process.
type Options struct {
	Kind     string // Ours or Centrifugo
	WS, API  string // the client URL and the API base URL of the node the clients use
	Key      string // API key
	N        int    // clients
	Sources  []*net.TCPAddr
	Parallel int    // connects (and joinGroup calls) in flight
	Group    string // the group (ours) or channel (Centrifugo)
	Name     string // the client name in Centrifugo's connect command
	// UIDs: each client can also get its own uid u<Base+i> (BIND), the
	// process counts the uid pushes that arrive, and COUNT answers
	// COUNT got lost.
	UIDs bool
	Base int // the index of the first client
}

// RunSubscriber is a subscriber process: it holds opt.N clients, answers
// the server's heartbeats, counts the group pushes that arrive and reports
// on stdout. Commands on stdin, answers on stdout:
//
//	CONNECT   connect every client and make it a member of the group -> CONNECTED n
//	BIND      give every client its own uid (opt.UIDs)               -> BOUND n
//	COUNT     connections lost so far                                -> COUNT lost
//	          (opt.UIDs: uid deliveries so far, and connections lost -> COUNT got lost)
//	QUIT      close everything and exit
//
// and, unasked, GOT k t when the last of this process's clients received
// group push k (t: Unix nanoseconds of that last delivery). Errors are
// answered as ERR ....
func RunSubscriber(opt Options) {
	u, err := url.Parse(opt.WS)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	if opt.Parallel < 1 {
		opt.Parallel = 100
	}
	c := &subscriber{opt: opt, wsURL: u, got: make([]atomic.Int32, MaxPushes), last: make([]atomic.Int64, MaxPushes)}
	c.http = NewHTTPClient(opt.Parallel)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch cmd := strings.TrimSpace(in.Text()); cmd {
		case "CONNECT":
			if err := c.connectAll(); err != nil {
				c.say("ERR connect: %v", err)
			} else {
				c.say("CONNECTED %d", len(c.subs))
			}
		case "BIND":
			if !opt.UIDs {
				c.say("ERR unknown command %q", cmd)
			} else if err := c.bindAll(); err != nil {
				c.say("ERR bind: %v", err)
			} else {
				c.say("BOUND %d", len(c.subs))
			}
		case "COUNT":
			if opt.UIDs {
				c.say("COUNT %d %d", c.uidGot.Load(), c.lost.Load())
			} else {
				c.say("COUNT %d", c.lost.Load())
			}
		case "QUIT":
			c.closing.Store(true)
			for _, s := range c.subs {
				if s != nil {
					s.ws.Close()
				}
			}
			return
		default:
			c.say("ERR unknown command %q", cmd)
		}
	}
}

type subscriber struct {
	opt   Options
	wsURL *url.URL
	http  *http.Client
	out   sync.Mutex
	subs  []*client

	got     []atomic.Int32
	last    []atomic.Int64
	uidGot  atomic.Int64
	lost    atomic.Int64
	closing atomic.Bool
}

type client struct {
	ws       *Conn
	idx      int
	clientID string
	first    chan []byte // ours: the welcome; Centrifugo: command replies
}

func (c *subscriber) say(format string, a ...any) {
	c.out.Lock()
	fmt.Fprintf(os.Stdout, format+"\n", a...)
	c.out.Unlock()
}

// each runs f for every index, opt.Parallel at a time, and returns the
// first error.
func (c *subscriber) each(n int, f func(i int) error) error { return Each(n, c.opt.Parallel, f) }

// Each runs f for every index below n, parallel at a time, and returns
// the first error; after an error it starts no more.
func Each(n, parallel int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		first atomic.Value
		sem   = make(chan struct{}, max(1, parallel))
	)
	for i := range n {
		if first.Load() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(i); err != nil {
				first.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		return err
	}
	return nil
}

func (c *subscriber) connectAll() error {
	c.subs = make([]*client, c.opt.N)
	return c.each(c.opt.N, func(i int) error {
		var src *net.TCPAddr
		if len(c.opt.Sources) > 0 {
			src = c.opt.Sources[i%len(c.opt.Sources)]
		}
		ws, err := Dial(c.wsURL, src)
		if err != nil {
			return err
		}
		s := &client{ws: ws, idx: c.opt.Base + i, first: make(chan []byte, 4)}
		c.subs[i] = s
		go c.read(s)
		if c.opt.Kind == Centrifugo {
			if err := s.command(1, `{"id":1,"connect":{"name":"`+c.opt.Name+`"}}`); err != nil {
				return err
			}
			return s.command(2, `{"id":2,"subscribe":{"channel":"`+c.opt.Group+`"}}`)
		}
		var welcome struct {
			Type     string `json:"type"`
			ClientID string `json:"client_id"`
		}
		select {
		case b := <-s.first:
			if err := json.Unmarshal(b, &welcome); err != nil || welcome.Type != "welcome" || welcome.ClientID == "" {
				return fmt.Errorf("first frame %q is no welcome", b)
			}
		case <-time.After(15 * time.Second):
			return errors.New("no welcome within 15 s")
		}
		s.clientID = welcome.ClientID
		return Call(c.http, c.opt.API, c.opt.Key, c.opt.Kind, "joinGroup",
			map[string]string{"client_id": s.clientID, "group": c.opt.Group})
	})
}

func (c *subscriber) bindAll() error {
	return c.each(len(c.subs), func(i int) error {
		s := c.subs[i]
		uid := fmt.Sprintf("u%d", s.idx)
		if c.opt.Kind == Centrifugo {
			return s.command(3, `{"id":3,"subscribe":{"channel":"`+uid+`"}}`)
		}
		return Call(c.http, c.opt.API, c.opt.Key, c.opt.Kind, "bindUid",
			map[string]string{"client_id": s.clientID, "uid": uid})
	})
}

// command sends a Centrifugo protocol command and waits for its reply.
func (s *client) command(id int, cmd string) error {
	if err := s.ws.WriteText([]byte(cmd)); err != nil {
		return err
	}
	select {
	case b := <-s.first:
		var r struct {
			ID    int `json:"id"`
			Error *struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("reply %q: %w", b, err)
		}
		if r.Error != nil {
			return fmt.Errorf("command %s: error %d %s", cmd, r.Error.Code, r.Error.Message)
		}
		if r.ID != id {
			return fmt.Errorf("reply %q to command %d", b, id)
		}
		return nil
	case <-time.After(15 * time.Second):
		return fmt.Errorf("no reply to %s within 15 s", cmd)
	}
}

// read is a client's reading goroutine.
func (c *subscriber) read(s *client) {
	firstDone := false
	for {
		msg, err := s.ws.Next()
		if err != nil {
			if !c.closing.Load() {
				c.lost.Add(1)
			}
			return
		}
		if c.opt.Kind != Centrifugo {
			if !firstDone {
				firstDone = true
				s.first <- bytes.Clone(msg)
				continue
			}
			c.count(msg)
			continue
		}
		// Centrifugo's JSON protocol: one or more replies or pushes per
		// frame, a line each; an empty object is a ping to answer in kind.
		for len(msg) > 0 {
			line := msg
			if i := bytes.IndexByte(msg, '\n'); i >= 0 {
				line, msg = msg[:i], msg[i+1:]
			} else {
				msg = nil
			}
			switch {
			case len(line) == 0:
			case string(line) == "{}":
				s.ws.WriteText([]byte("{}"))
			case bytes.HasPrefix(line, []byte(`{"id":`)):
				s.first <- bytes.Clone(line)
			default:
				c.count(line)
			}
		}
	}
}

// Markers inside the pushed messages: P#nnnnnn is group push n, U# a uid
// push.
var (
	markGroup = []byte("P#")
	markUID   = []byte("U#")
)

// count records the pushes one message carries.
func (c *subscriber) count(msg []byte) {
	if c.opt.UIDs {
		if n := bytes.Count(msg, markUID); n > 0 {
			c.uidGot.Add(int64(n))
		}
	}
	for {
		i := bytes.Index(msg, markGroup)
		if i < 0 || len(msg) < i+8 {
			return
		}
		k := 0
		for _, d := range msg[i+2 : i+8] {
			k = k*10 + int(d-'0')
		}
		msg = msg[i+8:]
		if k < 0 || k >= MaxPushes {
			continue
		}
		now := time.Now().UnixNano()
		for {
			old := c.last[k].Load()
			if now <= old || c.last[k].CompareAndSwap(old, now) {
				break
			}
		}
		if int(c.got[k].Add(1)) == len(c.subs) {
			c.say("GOT %d %d", k, c.last[k].Load())
		}
	}
}

// Got is a subscriber process's report that all its clients have push K,
// the last at T (Unix nanoseconds).
type Got struct {
	K int
	T int64
}

// Proc is a running subscriber process, seen from the orchestrator.
type Proc struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
}

// Start runs a subscriber process (name args..., which must end up in
// RunSubscriber) and forwards its GOT reports to got.
func Start(got chan<- Got, name string, args ...string) (*Proc, error) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{cmd: cmd, in: in, lines: make(chan string, 64)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l := sc.Text()
			if rest, ok := strings.CutPrefix(l, "GOT "); ok {
				var g Got
				fmt.Sscan(rest, &g.K, &g.T)
				got <- g
				continue
			}
			p.lines <- l
		}
		close(p.lines)
	}()
	return p, nil
}

// Send sends a command.
func (p *Proc) Send(cmd string) { fmt.Fprintln(p.in, cmd) }

// Expect waits for the answer that starts with prefix and returns the rest.
func (p *Proc) Expect(prefix string, d time.Duration) (string, error) {
	timeout := time.After(d)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				return "", fmt.Errorf("subscriber process exited waiting for %s", prefix)
			}
			if strings.HasPrefix(l, "ERR") {
				return "", fmt.Errorf("subscriber process: %s", l)
			}
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return strings.TrimSpace(rest), nil
			}
		case <-timeout:
			return "", fmt.Errorf("timed out waiting for %s", prefix)
		}
	}
}

// All sends cmd to every process and waits for each one's answer.
func All(ps []*Proc, cmd, answer string, d time.Duration) ([]string, error) {
	for _, p := range ps {
		p.Send(cmd)
	}
	var out []string
	for _, p := range ps {
		a, err := p.Expect(answer, d)
		if err != nil {
			return out, err
		}
		out = append(out, a)
	}
	return out, nil
}

// Stop asks every process to quit and waits (killing one that does not
// within 10 s).
func Stop(ps []*Proc) {
	for _, p := range ps {
		p.Send("QUIT")
		p.in.Close()
	}
	for _, p := range ps {
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-done
		}
	}
}

// ErrNotAll is WaitGot's error when not every process reported the push in
// time.
var ErrNotAll = errors.New("not every subscriber process reported the push")

// WaitGot waits until each of the processes ps reported group push k on
// got (see Start) and returns the time of the last delivery. After d it
// returns ErrNotAll with the processes' answers to COUNT; a report of
// another push is an error too.
func WaitGot(got <-chan Got, ps []*Proc, k int, d time.Duration) (last int64, counts []string, err error) {
	timeout := time.After(d)
	for range ps {
		select {
		case g := <-got:
			if g.K != k {
				return last, nil, fmt.Errorf("a subscriber process reported push %d", g.K)
			}
			last = max(last, g.T)
		case <-timeout:
			counts, _ := All(ps, "COUNT", "COUNT", 5*time.Second)
			return last, counts, ErrNotAll
		}
	}
	return last, nil, nil
}
