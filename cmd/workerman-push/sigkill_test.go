package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/gateway"
	"github.com/workerman-go/workerman/pushclient"
)

// dropBound is how long a node killed with SIGKILL may stay in the
// cluster's answers (push.md, "Cluster").
const dropBound = 10 * time.Second

// Three workerman-push processes with embedded NATS; the seed node is
// killed with SIGKILL. Within dropBound every survivor's answers leave out
// its clients; its clients, which know every node's URL, reconnect to the
// survivors, and once bound again get pushes through a survivor; the
// survivors' clients get every push, in order, throughout.
func TestSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three processes")
	}
	bin := buildPush(t)
	a := startProc(t, bin, "a", "")
	b := startProc(t, bin, "b", a.cluster)
	c := startProc(t, bin, "c", a.cluster)
	nodes := []*procNode{a, b, c}
	urls := []string{a.clients, b.clients, c.clients}

	// Two clients per node: client i tries the list from node i%3 on, then
	// the two others, in one order for i < 3 and in the other for i ≥ 3. Each
	// asks its TokenFunc before every attempt; all attempts but the first
	// wait for reconnect, so that the answers are checked while the killed
	// node's clients are away, then their reconnection.
	reconnect := make(chan struct{})
	var clients []*killClient
	for i := range 6 {
		list := append(slices.Clone(urls[i%3:]), urls[:i%3]...)
		if i >= 3 {
			slices.Reverse(list[1:])
		}
		cl := dialKillClient(t, fmt.Sprintf("u%d", i), list, reconnect)
		if got := gateway.NodeOf(cl.id); got != nodes[i%3].name {
			t.Fatalf("client %d is on node %q, want %q", i, got, nodes[i%3].name)
		}
		clients = append(clients, cl)
	}
	// The backend binds and joins through another node than the client's.
	for i, cl := range clients {
		api := nodes[(i+1)%3]
		api.mustCall(t, "bindUid", map[string]any{"client_id": cl.id, "uid": cl.uid})
		api.mustCall(t, "joinGroup", map[string]any{"client_id": cl.id, "group": "room"})
	}
	for _, n := range nodes {
		if got := n.count(t); got != 6 {
			t.Fatalf("node %s: getAllClientCount %d before the kill, want 6", n.name, got)
		}
	}
	dead := []*killClient{clients[0], clients[3]} // on a
	alive := []*killClient{clients[1], clients[2], clients[4], clients[5]}

	// The survivors' clients get numbered pushes through b until the end.
	ticks := startTicker(t, b, alive)

	killed := time.Now()
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Each survivor is asked on its own goroutine, so that one's wait does
	// not count in the other's time.
	survivors := []*procNode{b, c}
	errs := make(chan error, len(survivors))
	for _, n := range survivors {
		go func() {
			took, err := waitDropped(n, killed, alive, dead)
			if err == nil {
				t.Logf("node %s: answers left out node a's clients %v after SIGKILL", n.name, took.Round(time.Millisecond))
			}
			errs <- err
		}()
	}
	for range survivors {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, cl := range dead {
		e := cl.closed(t)
		if e.ClientID != cl.id || !e.Reconnect {
			t.Fatalf("client %s: close event %+v", cl.uid, e)
		}
	}

	close(reconnect)
	released := time.Now()
	for i, cl := range dead {
		old := cl.id
		cl.welcome(t)
		if node := gateway.NodeOf(cl.id); node != "b" && node != "c" || cl.id == old {
			t.Fatalf("client %s reconnected as %s (was %s): want a new client of b or c", cl.uid, cl.id, old)
		}
		t.Logf("client %s: back on node %s %v after it was let reconnect", cl.uid, gateway.NodeOf(cl.id), time.Since(released).Round(time.Millisecond))
		// On the way: one attempt on a, refused, then the next URL.
		if e := cl.closed(t); e.URL != a.clients || !errors.Is(e.Err, workerman.ErrConnectFailed) {
			t.Fatalf("client %s: close event %+v, want a refused attempt on a", cl.uid, e)
		}
		api := survivors[i%2]
		api.mustCall(t, "bindUid", map[string]any{"client_id": cl.id, "uid": cl.uid})
		api.mustCall(t, "joinGroup", map[string]any{"client_id": cl.id, "group": "room"})
	}
	for _, cl := range dead {
		c.mustCall(t, "sendToUid", map[string]any{"uid": cl.uid, "message": "to " + cl.uid})
		cl.expect(t, "to "+cl.uid)
	}
	b.mustCall(t, "sendToGroup", map[string]any{"group": "room", "message": "to room"})
	for _, cl := range clients {
		cl.expect(t, "to room")
	}
	var ids []string
	for _, cl := range clients {
		ids = append(ids, cl.id)
	}
	slices.Sort(ids)
	for _, n := range survivors {
		if got := n.count(t); got != 6 {
			t.Fatalf("node %s: getAllClientCount %d after the reconnects, want 6", n.name, got)
		}
		if got := n.ids(t, "getClientIdListByGroup", "group", "room"); !slices.Equal(got, ids) {
			t.Fatalf("node %s: room is %v, want %v", n.name, got, ids)
		}
	}

	sent := ticks.stop()
	t.Logf("%d rounds of pushes to the survivors' clients, through node b, from before SIGKILL to the end", sent)
	for _, cl := range alive {
		cl.expectTicks(t, sent)
		if cl.reconnects.Load() != 0 {
			t.Fatalf("client %s of a survivor reconnected", cl.uid)
		}
	}
}

// ---- processes ----

// buildPush builds this command into a temporary directory.
func buildPush(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the binary with")
	}
	bin := filepath.Join(t.TempDir(), "workerman-push")
	out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// procNode is a workerman-push process.
type procNode struct {
	name    string
	cmd     *exec.Cmd
	log     *logBuf
	clients string // ws://127.0.0.1:port/
	api     string // http://127.0.0.1:port/api/
	cluster string // its embedded NATS route address
	key     string
	http    *http.Client
}

var procStarted = regexp.MustCompile(`msg="workerman-push started" clients=(\S+) js=\S+ api=(\S+) .*cluster=(\S+)`)

// startProc starts node name with embedded NATS, its peer seed (none when
// ""), every port chosen by the system, and stops it when the test ends
// (SIGTERM, then SIGKILL after 15 s) unless it was killed.
func startProc(t *testing.T, bin, name, seed string) *procNode {
	t.Helper()
	extra := []string{"-cluster", "127.0.0.1:0"}
	if seed != "" {
		extra = append(extra, "-peers", seed)
	}
	return startProcWith(t, bin, name, extra...)
}

// startProcWith starts node name with the flags extra (which must give
// -cluster), as startProc does.
func startProcWith(t *testing.T, bin, name string, extra ...string) *procNode {
	t.Helper()
	n := &procNode{name: name, log: newLogBuf(), key: "key-" + name,
		http: &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}}
	argv := append(args("-node-id", name, "-api-key", n.key, "-count", "1"), extra...)
	n.cmd = exec.Command(bin, argv...)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		n.cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		n.http.CloseIdleConnections()
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			t.Errorf("node %s did not stop 15 s after SIGTERM; its log:\n%s", name, n.log.String())
			n.cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		if m := procStarted.FindStringSubmatch(n.log.String()); m != nil {
			n.clients, n.api, n.cluster = m[1], m[2], m[3]
			return n
		}
		select {
		case <-n.log.wrote:
		case <-exited:
			t.Fatalf("node %s exited before starting: %v\n%s", name, n.cmd.ProcessState, n.log.String())
		case <-deadline.C:
			t.Fatalf("node %s: no start line after 20 s:\n%s", name, n.log.String())
		}
	}
}

// call posts to the node's HTTP API.
func (n *procNode) call(method string, body any) (int, map[string]any, error) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, n.api+method, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+n.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s answered %d with %q", method, resp.StatusCode, raw)
	}
	return resp.StatusCode, out, nil
}

func (n *procNode) mustCall(t *testing.T, method string, body any) map[string]any {
	t.Helper()
	out, err := n.ok(method, body)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (n *procNode) count(t *testing.T) int {
	t.Helper()
	count, err := n.tryCount()
	if err != nil {
		t.Fatal(err)
	}
	return count
}

func (n *procNode) tryCount() (int, error) {
	out, err := n.ok("getAllClientCount", nil)
	f, _ := out["count"].(float64)
	return int(f), err
}

// ids is a sorted list answer ({"client_ids": [...]}) to method with
// {key: value}.
func (n *procNode) ids(t *testing.T, method, key, value string) []string {
	t.Helper()
	ids, err := n.tryIDs(method, key, value)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func (n *procNode) tryIDs(method, key, value string) ([]string, error) {
	out, err := n.ok(method, map[string]any{key: value})
	list, _ := out["client_ids"].([]any)
	ids := []string{}
	for _, x := range list {
		s, _ := x.(string)
		ids = append(ids, s)
	}
	slices.Sort(ids)
	return ids, err
}

// ok is call that wants 200.
func (n *procNode) ok(method string, body any) (map[string]any, error) {
	code, out, err := n.call(method, body)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("%s %v: %d %v", method, body, code, out)
	}
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.name, err)
	}
	return out, nil
}

// waitDropped polls n until its answers hold exactly the alive clients and
// none of the dead ones, and returns how long after killed that was; an
// error when that takes over dropBound.
func waitDropped(n *procNode, killed time.Time, alive, dead []*killClient) (time.Duration, error) {
	var want []string
	for _, cl := range alive {
		want = append(want, cl.id)
	}
	slices.Sort(want)
	// wrong lists what n's answers still get wrong.
	wrong := func() (string, error) {
		var w []string
		count, err := n.tryCount()
		if err != nil {
			return "", err
		}
		if count != len(alive) {
			w = append(w, fmt.Sprintf("getAllClientCount %d, want %d", count, len(alive)))
		}
		room, err := n.tryIDs("getClientIdListByGroup", "group", "room")
		if err != nil {
			return "", err
		}
		if !slices.Equal(room, want) {
			w = append(w, fmt.Sprintf("room %v, want %v", room, want))
		}
		for _, cl := range append(slices.Clone(alive), dead...) {
			got, err := n.tryIDs("getClientIdByUid", "uid", cl.uid)
			if err != nil {
				return "", err
			}
			expect := []string{}
			if !slices.Contains(dead, cl) {
				expect = []string{cl.id}
			}
			if !slices.Equal(got, expect) {
				w = append(w, fmt.Sprintf("getClientIdByUid %s: %v, want %v", cl.uid, got, expect))
			}
		}
		return strings.Join(w, "; "), nil
	}
	for {
		w, err := wrong()
		took := time.Since(killed)
		switch {
		case err != nil:
			return took, fmt.Errorf("node %s: %w", n.name, err)
		case took > dropBound && w != "":
			return took, fmt.Errorf("node %s: %v after SIGKILL the answers still hold the killed node's clients: %s",
				n.name, took.Round(time.Millisecond), w)
		case took > dropBound:
			return took, fmt.Errorf("node %s: answers left out the killed node's clients only %v after SIGKILL (bound %v)",
				n.name, took.Round(time.Millisecond), dropBound)
		case w == "":
			return took, nil
		}
		time.Sleep(50 * time.Millisecond) // bounded polling: dropBound above
	}
}

// ---- clients ----

// killClient is a pushclient.Client with its events as channels.
type killClient struct {
	c          *pushclient.Client
	uid        string // what the backend binds it to
	id         string // the client ID of its last welcome
	welcomes   chan pushclient.Welcome
	closes     chan pushclient.CloseEvent
	msgs       chan string // pushes but ticks
	ticks      chan string
	reconnects atomic.Int32
}

// dialKillClient connects a client with the list urls; every attempt after
// the first waits for reconnect to be closed.
func dialKillClient(t *testing.T, uid string, urls []string, reconnect <-chan struct{}) *killClient {
	t.Helper()
	k := &killClient{uid: uid, welcomes: make(chan pushclient.Welcome, 10),
		closes: make(chan pushclient.CloseEvent, 100), msgs: make(chan string, 100), ticks: make(chan string, 10000)}
	var attempts atomic.Int32
	opt := pushclient.Options{
		MinReconnectDelay: 50 * time.Millisecond,
		MaxReconnectDelay: time.Second,
		TokenFunc: func(ctx context.Context) (string, error) {
			if attempts.Add(1) > 1 {
				select {
				case <-reconnect:
				case <-ctx.Done():
					return "", ctx.Err()
				}
			}
			return "", nil
		},
		OnWelcome: func(_ *pushclient.Client, w pushclient.Welcome) { k.welcomes <- w },
		OnMessage: func(_ *pushclient.Client, m pushclient.Message) {
			if s := string(m.Data); strings.HasPrefix(s, "tick ") {
				k.ticks <- s
			} else {
				k.msgs <- s
			}
		},
		OnClose: func(_ *pushclient.Client, e pushclient.CloseEvent) {
			if e.Reconnect {
				k.reconnects.Add(1)
			}
			k.closes <- e
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pushclient.Dial(ctx, urls, opt)
	if err != nil {
		t.Fatal(err)
	}
	k.c = c
	t.Cleanup(func() {
		c.Close()
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Errorf("client %s: Done not closed 10 s after Close", uid)
		}
	})
	k.welcome(t)
	return k
}

// welcome waits for the next welcome and takes its client ID.
func (k *killClient) welcome(t *testing.T) {
	t.Helper()
	select {
	case w := <-k.welcomes:
		k.id = w.ClientID
	case <-time.After(15 * time.Second):
		t.Fatalf("client %s: no welcome after 15 s", k.uid)
	}
}

func (k *killClient) closed(t *testing.T) pushclient.CloseEvent {
	t.Helper()
	select {
	case e := <-k.closes:
		return e
	case <-time.After(10 * time.Second):
		t.Fatalf("client %s: its connection did not end 10 s after SIGKILL", k.uid)
		panic("unreachable")
	}
}

// expect checks the next push that is not a tick.
func (k *killClient) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case m := <-k.msgs:
		if m != want {
			t.Fatalf("client %s got %q, want %q", k.uid, m, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("client %s: no %q after 10 s", k.uid, want)
	}
}

// expectTicks checks that the client got ticks 1 to n, each once, in
// order, and no other.
func (k *killClient) expectTicks(t *testing.T, n int) {
	t.Helper()
	for next := 1; next <= n; next++ {
		select {
		case m := <-k.ticks:
			if m != fmt.Sprintf("tick %d", next) {
				t.Fatalf("client %s got %q, want tick %d", k.uid, m, next)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("client %s: got ticks up to %d of %d", k.uid, next-1, n)
		}
	}
	select {
	case m := <-k.ticks:
		t.Fatalf("client %s got %q after the last tick sent, %d", k.uid, m, n)
	default:
	}
}

// ticker pushes "tick n" to every client's uid through one node, one
// round every 20 ms, until stopped.
type ticker struct {
	quit chan struct{}
	done chan struct{}
	sent int // read after done
	once sync.Once
}

func startTicker(t *testing.T, n *procNode, to []*killClient) *ticker {
	tk := &ticker{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tk.done)
		for {
			select {
			case <-tk.quit:
				return
			case <-time.After(20 * time.Millisecond):
			}
			for _, cl := range to {
				body := map[string]any{"uid": cl.uid, "message": fmt.Sprintf("tick %d", tk.sent+1)}
				if code, out, err := n.call("sendToUid", body); err != nil || code != http.StatusOK {
					t.Errorf("node %s: sendToUid %v: %d %v %v", n.name, body, code, out, err)
					return
				}
			}
			tk.sent++
		}
	}()
	t.Cleanup(func() { tk.stop() })
	return tk
}

// stop ends the pushes and returns how many rounds were sent.
func (tk *ticker) stop() int {
	tk.once.Do(func() { close(tk.quit) })
	<-tk.done
	return tk.sent
}
