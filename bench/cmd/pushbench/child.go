package main

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
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The client side of the benchmark runs in child processes (the parent is
// the orchestrator): each holds some of the subscribers, answers the
// server's heartbeats, counts what arrives and reports on stdout.
//
// Commands on stdin, answers on stdout:
//
//	CONNECT   connect every client and make it a member of the group    -> CONNECTED n
//	BIND      give every client its own uid                             -> BOUND n
//	COUNT     uid deliveries so far, and connections lost               -> COUNT got lost
//	QUIT      close everything and exit
//
// and, unasked, GOT k t when the last of this child's clients received
// group push k (t: Unix nanoseconds of that last delivery).

// Markers inside the pushed messages: P#nnnnnn is group push n, U# a uid
// push.
var (
	markGroup = []byte("P#")
	markUID   = []byte("U#")
)

const maxPushes = 100000

type childOpts struct {
	kind     string // ours, gorilla-hub, centrifugo
	ws, api  string
	key      string
	n, base  int
	sources  []*net.TCPAddr
	parallel int
	group    string
}

type child struct {
	opt   childOpts
	wsURL *url.URL
	http  *http.Client
	out   sync.Mutex
	subs  []*sub

	got     []atomic.Int32
	last    []atomic.Int64
	uidGot  atomic.Int64
	lost    atomic.Int64
	closing atomic.Bool
}

type sub struct {
	ws       *wsConn
	idx      int
	clientID string
	first    chan []byte // ours, gorilla-hub: the welcome; centrifugo: command replies
}

func runChild(opt childOpts) {
	u, err := url.Parse(opt.ws)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	c := &child{opt: opt, wsURL: u, got: make([]atomic.Int32, maxPushes), last: make([]atomic.Int64, maxPushes)}
	c.http = newHTTPClient(opt.parallel)
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
			if err := c.bindAll(); err != nil {
				c.say("ERR bind: %v", err)
			} else {
				c.say("BOUND %d", len(c.subs))
			}
		case "COUNT":
			c.say("COUNT %d %d", c.uidGot.Load(), c.lost.Load())
		case "QUIT":
			c.closing.Store(true)
			for _, s := range c.subs {
				s.ws.close()
			}
			return
		default:
			c.say("ERR unknown command %q", cmd)
		}
	}
}

func (c *child) say(format string, a ...any) {
	c.out.Lock()
	fmt.Fprintf(os.Stdout, format+"\n", a...)
	c.out.Unlock()
}

// each runs f for every index, opt.parallel at a time, and returns the
// first error.
func (c *child) each(n int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		first atomic.Value
		sem   = make(chan struct{}, c.opt.parallel)
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

func (c *child) connectAll() error {
	c.subs = make([]*sub, c.opt.n)
	return c.each(c.opt.n, func(i int) error {
		src := c.opt.sources[i%len(c.opt.sources)]
		ws, err := dialWS(c.wsURL, src)
		if err != nil {
			return err
		}
		s := &sub{ws: ws, idx: c.opt.base + i, first: make(chan []byte, 4)}
		c.subs[i] = s
		go c.read(s)
		switch c.opt.kind {
		case "centrifugo":
			if err := s.command(1, `{"id":1,"connect":{"name":"pushbench"}}`); err != nil {
				return err
			}
			return s.command(2, `{"id":2,"subscribe":{"channel":"`+c.opt.group+`"}}`)
		default:
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
			return apiCall(c.http, c.opt.api, c.opt.key, c.opt.kind, "joinGroup",
				map[string]string{"client_id": s.clientID, "group": c.opt.group})
		}
	})
}

func (c *child) bindAll() error {
	return c.each(len(c.subs), func(i int) error {
		s := c.subs[i]
		uid := fmt.Sprintf("u%d", s.idx)
		if c.opt.kind == "centrifugo" {
			return s.command(3, `{"id":3,"subscribe":{"channel":"`+uid+`"}}`)
		}
		return apiCall(c.http, c.opt.api, c.opt.key, c.opt.kind, "bindUid",
			map[string]string{"client_id": s.clientID, "uid": uid})
	})
}

// command sends a Centrifugo protocol command and waits for its reply.
func (s *sub) command(id int, cmd string) error {
	if err := s.ws.writeText([]byte(cmd)); err != nil {
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
func (c *child) read(s *sub) {
	firstDone := false
	for {
		msg, err := s.ws.next()
		if err != nil {
			if !c.closing.Load() {
				c.lost.Add(1)
			}
			return
		}
		if c.opt.kind != "centrifugo" {
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
				s.ws.writeText([]byte("{}"))
			case bytes.HasPrefix(line, []byte(`{"id":`)):
				s.first <- bytes.Clone(line)
			default:
				c.count(line)
			}
		}
	}
}

// count records the pushes one message carries.
func (c *child) count(msg []byte) {
	if n := bytes.Count(msg, markUID); n > 0 {
		c.uidGot.Add(int64(n))
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
		if k < 0 || k >= maxPushes {
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

// newHTTPClient keeps up to conns connections alive to one host.
func newHTTPClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// apiCall calls method of the server's HTTP API. ours and gorilla-hub speak
// the push layer's API (POST /api/<method>, bearer key); Centrifugo's
// publish (the only method asked of it) is POST /api/publish with
// X-API-Key.
func apiCall(hc *http.Client, api, key, kind, method string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, api+"/api/"+method, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if kind == "centrifugo" {
		req.Header.Set("X-API-Key", key)
	} else {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", method, resp.Status, bytes.TrimSpace(rb))
	}
	// Centrifugo answers 200 with {"error":...} for a failed command.
	if kind == "centrifugo" && bytes.Contains(rb, []byte(`"error"`)) {
		return fmt.Errorf("%s: %s", method, bytes.TrimSpace(rb))
	}
	return nil
}
