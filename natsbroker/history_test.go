package natsbroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/gateway"
	"github.com/workerman-go/workerman/protocol"
)

// jsServer runs a standalone nats-server with JetStream (nats-server -js).
func jsServer(t *testing.T) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// waitHistory waits until the node's history takes appends.
func waitHistory(t *testing.T, n *node) {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.b.hist.wait(c); err != nil {
		t.Fatal(err)
	}
}

// frame is a frame of history mode.
type frame struct {
	Type    string `json:"type"`
	Stream  string `json:"stream"`
	Offset  uint64 `json:"offset"`
	Epoch   string `json:"epoch"`
	Data    string `json:"data"`
	Streams map[string]struct {
		Recovered bool   `json:"recovered"`
		Epoch     string `json:"epoch"`
		Offset    uint64 `json:"offset"`
	} `json:"streams"`
	raw string
}

type histClient struct {
	*workerman.AsyncConnection
	frames chan frame
	closed chan struct{}
}

func dialResume(t *testing.T, n *node, uid string, resume map[string]gateway.Position) *histClient {
	t.Helper()
	q := url.Values{"uid": {uid}}
	if resume != nil {
		b, _ := json.Marshal(resume)
		q.Set("resume", string(b))
	}
	c := &histClient{AsyncConnection: workerman.NewAsyncConnection("ws://" + n.addr + "/?" + q.Encode()),
		frames: make(chan frame, 10000), closed: make(chan struct{})}
	var once sync.Once
	c.OnMessage = func(a *workerman.AsyncConnection, d []byte) {
		f := frame{raw: string(d)}
		if a.MessageType() == protocol.BinaryMessage || json.Unmarshal(d, &f) != nil {
			f.Type = "bad"
		}
		c.frames <- f
	}
	c.OnClose = func(*workerman.AsyncConnection) { once.Do(func() { close(c.closed) }) }
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Destroy)
	if f := wait(t, c.frames, "the welcome"); f.Type != "welcome" {
		t.Fatalf("first frame %s", f.raw)
	}
	return c
}

// freeAddr is a loopback address for a route port, free now, below the
// ephemeral range (32768 and up on Linux), where another test's outgoing
// connection could take it before the node binds it.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 1000 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(20000+rand.IntN(12000)))
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr
		}
	}
	t.Fatal("no free port for a route")
	return ""
}

// The History contract on an external nats-server started with -js: two
// nodes append to one stream at once and get every offset once; Since
// answers an empty stream, the offline queue, an unknown epoch and an
// offset older than what is kept; the messages expire after the TTL and
// the stream's next message starts a new epoch.
func TestHistoryExternalJetStream(t *testing.T) {
	s := jsServer(t)
	opt := Options{URLs: []string{clientURL(s)}, History: &HistoryOptions{Size: 50, TTL: time.Hour}}
	a, b := newNode(t, "a", opt), newNode(t, "b", opt)
	waitHistory(t, a)
	waitHistory(t, b)
	ha, hb := a.b.History(), b.b.History()
	c := ctx(t)

	msgs, cur, ok, err := ha.Since(c, "uid:nobody", gateway.Position{})
	if err != nil || !ok || len(msgs) != 0 || cur != (gateway.Position{}) {
		t.Fatalf("an empty stream: %v %+v %v %v", msgs, cur, ok, err)
	}

	const each = 150
	offsets := make(chan uint64, 2*each)
	var wg sync.WaitGroup
	for _, h := range []gateway.History{ha, hb} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				pos, err := h.Append(c, "group:room", gateway.Text(strconv.Itoa(i)), []string{"x.y.z"})
				if err != nil {
					t.Error(err)
					return
				}
				offsets <- pos.Offset
			}
		}()
	}
	wg.Wait()
	close(offsets)
	seen := make(map[uint64]bool)
	for o := range offsets {
		if seen[o] || o < 1 || o > 2*each {
			t.Fatalf("offset %d twice or out of 1..%d", o, 2*each)
		}
		seen[o] = true
	}
	if len(seen) != 2*each {
		t.Fatalf("%d offsets, want %d", len(seen), 2*each)
	}

	msgs, cur, ok, err = hb.Since(c, "group:room", gateway.Position{})
	if err != nil || !ok || cur.Offset != 2*each || cur.Epoch == "" || len(msgs) != 50 ||
		msgs[0].Offset != 2*each-49 || msgs[49].Offset != 2*each || len(msgs[0].Exclude) != 1 || msgs[0].Exclude[0] != "x.y.z" {
		t.Fatalf("offline queue: %d msgs, %+v %v %v", len(msgs), cur, ok, err)
	}
	msgs, _, ok, _ = ha.Since(c, "group:room", gateway.Position{Epoch: cur.Epoch, Offset: 2*each - 3})
	if !ok || len(msgs) != 3 || msgs[0].Offset != 2*each-2 {
		t.Fatalf("the last 3: %v %v", msgs, ok)
	}
	if msgs, _, ok, _ := ha.Since(c, "group:room", gateway.Position{Epoch: cur.Epoch, Offset: 2*each - 50}); !ok || len(msgs) != 50 {
		t.Fatalf("from just before the oldest kept: %d, %v", len(msgs), ok)
	}
	if msgs, now, ok, _ := ha.Since(c, "group:room", gateway.Position{Epoch: cur.Epoch, Offset: 2*each - 51}); ok || len(msgs) != 0 || now != cur {
		t.Fatalf("older than the oldest kept: %d, %v", len(msgs), ok)
	}
	if msgs, now, ok, _ := ha.Since(c, "group:room", gateway.Position{Epoch: "other", Offset: 1}); ok || len(msgs) != 0 || now != cur {
		t.Fatalf("unknown epoch: %d, %v", len(msgs), ok)
	}
	if msgs, now, ok, _ := ha.Since(c, "group:room", cur); !ok || len(msgs) != 0 || now != cur {
		t.Fatalf("up to date: %d, %v", len(msgs), ok)
	}
	bin, err := ha.Append(c, "all", gateway.Binary([]byte{0, 0xff}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if msgs, _, _, _ := hb.Since(c, "all", gateway.Position{}); len(msgs) != 1 || !msgs[0].Binary || string(msgs[0].Data) != "\x00\xff" || bin.Offset != 1 {
		t.Fatalf("binary: %+v", msgs)
	}
}

// The TTL: a message is kept for TTL, and a stream whose messages all
// expired is gone: its next message starts a new epoch at offset 1.
func TestHistoryTTL(t *testing.T) {
	s := jsServer(t)
	n := newNode(t, "a", Options{URLs: []string{clientURL(s)}, History: &HistoryOptions{Size: 10, TTL: time.Second}})
	waitHistory(t, n)
	h := n.b.History()
	c := ctx(t)
	first, err := h.Append(c, "uid:u", gateway.Text("old"), nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the message expires", 10*time.Second, func() bool {
		msgs, cur, _, err := h.Since(c, "uid:u", gateway.Position{})
		return err == nil && len(msgs) == 0 && cur.Epoch == ""
	})
	if _, cur, ok, _ := h.Since(c, "uid:u", first); ok || cur.Epoch != "" {
		t.Fatalf("resuming an expired history: recovered %v at %+v", ok, cur)
	}
	next, err := h.Append(c, "uid:u", gateway.Text("new"), nil)
	if err != nil || next.Offset != 1 || next.Epoch == first.Epoch {
		t.Fatalf("after expiry: %+v (before %+v) %v", next, first, err)
	}
}

// Three nodes, each with an embedded nats-server running JetStream, the
// history replicated on all three. A client's node is killed (no goodbye,
// its server gone) while another node keeps pushing to the client's uid;
// the client reconnects to a third node with its position and gets
// exactly the pushes it missed, then the live ones: none lost, none twice.
func TestHistoryEmbeddedClusterNodeKilled(t *testing.T) {
	// Every node gets every node's route address, as in production:
	// JetStream clusters its servers by their configured routes.
	var peers []string
	for range 3 {
		peers = append(peers, freeAddr(t))
	}
	var nodes []*node
	for i, name := range []string{"n1", "n2", "n3"} {
		nodes = append(nodes, newNode(t, name, Options{Cluster: peers[i], Peers: peers,
			History: &HistoryOptions{Size: 20000, StoreDir: t.TempDir()}}))
	}
	for _, n := range nodes {
		eventually(t, n.Node()+" sees the others", 10*time.Second, func() bool { return len(n.b.Nodes()) == 2 })
		waitHistory(t, n)
		if r := n.b.hist.opt.Replicas; r != 3 {
			t.Fatalf("%s: %d replicas, want 3", n.Node(), r)
		}
	}
	victim, pusher, rescuer := nodes[0], nodes[1], nodes[2]
	c := ctx(t)

	cl := dialResume(t, victim, "alice", map[string]gateway.Position{})
	if f := wait(t, cl.frames, "resumed"); f.Type != "resumed" {
		t.Fatalf("want resumed, got %s", f.raw)
	}
	// Pushes from n2 until the test ends; those that returned nil must
	// all reach alice, each once, in order.
	var mu sync.Mutex
	accepted := map[string]bool{}
	stop := make(chan struct{})
	pushed := make(chan error, 1)
	go func() {
		// Paced (about 500 a second) so that the history (Size) holds
		// what the client misses while it moves.
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				pushed <- nil
				return
			case <-tick.C:
			}
			pc, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := pusher.SendToUID(pc, "alice", gateway.Text(strconv.Itoa(i)))
			cancel()
			if err == nil {
				mu.Lock()
				accepted[strconv.Itoa(i)] = true
				mu.Unlock()
			} else if !errors.Is(err, gateway.ErrBrokerUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
				pushed <- err
				return
			}
		}
	}()
	got := map[string]uint64{}
	var pos gateway.Position
	read := func(f frame) {
		if f.Type != "message" || f.Stream != "uid:alice" {
			t.Fatalf("unexpected frame %s", f.raw)
		}
		if pos.Epoch != "" && (f.Epoch != pos.Epoch || f.Offset != pos.Offset+1) {
			t.Fatalf("got %s after %+v", f.raw, pos)
		}
		if _, dup := got[f.Data]; dup {
			t.Fatalf("%q twice", f.Data)
		}
		got[f.Data] = f.Offset
		pos = gateway.Position{Epoch: f.Epoch, Offset: f.Offset}
	}
	for len(got) < 50 {
		read(wait(t, cl.frames, "pushes before the kill"))
	}
	victim.kill()
	// Whatever was on its way before the connection dropped.
	wait(t, cl.closed, "the client's connection to close")
drain:
	for {
		select {
		case f := <-cl.frames:
			read(f)
		default:
			break drain
		}
	}
	before := len(got)
	again := dialResume(t, rescuer, "alice", map[string]gateway.Position{"uid:alice": pos})
	for {
		f := wait(t, again.frames, "the replay")
		if f.Type == "resumed" {
			st := f.Streams["uid:alice"]
			if !st.Recovered || st.Epoch != pos.Epoch || st.Offset != pos.Offset {
				t.Fatalf("resumed %s after %+v", f.raw, pos)
			}
			break
		}
		read(f)
	}
	t.Logf("%d pushes before the kill, %d replayed on %s", before, len(got)-before, rescuer.Node())
	// Live pushes after the seam, then stop and check everything that was
	// accepted arrived.
	for n := len(got) + 30; len(got) < n; {
		read(wait(t, again.frames, "live pushes after the resume"))
	}
	close(stop)
	if err := <-pushed; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for {
		missing := 0
		for data := range accepted {
			if _, ok := got[data]; !ok {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		read(wait(t, again.frames, fmt.Sprintf("%d accepted pushes", missing)))
	}
	if _, _, ok, err := pusher.b.History().Since(c, "uid:alice", pos); err != nil || !ok {
		t.Fatalf("history after: %v %v", ok, err)
	}
}

// Two nodes push to one new stream at once; a member on a third node gets
// every offset from 1 once, in order, whichever node's push arrives
// first (a node fills a gap from JetStream and drops what it delivered
// already).
func TestHistoryTwoPublishersOneStream(t *testing.T) {
	s := jsServer(t)
	opt := Options{URLs: []string{clientURL(s)}, History: &HistoryOptions{Size: 2000, TTL: time.Hour}}
	var nodes []*node
	for _, name := range []string{"p1", "p2", "m"} {
		n := newNode(t, name, opt)
		waitHistory(t, n)
		nodes = append(nodes, n)
	}
	c := ctx(t)
	member := dialResume(t, nodes[2], "alice", nil)
	const each = 300
	errs := make(chan error, 2)
	for _, p := range nodes[:2] {
		go func() {
			for i := range each {
				if err := p.SendToUID(c, "alice", gateway.Text(p.Node()+"-"+strconv.Itoa(i))); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	seen := map[string]bool{}
	epoch := ""
	for want := uint64(1); want <= 2*each; want++ {
		f := wait(t, member.frames, fmt.Sprintf("offset %d", want))
		if f.Type != "message" || f.Stream != "uid:alice" || f.Offset != want || (epoch != "" && f.Epoch != epoch) || seen[f.Data] {
			t.Fatalf("got %s, want offset %d", f.raw, want)
		}
		epoch, seen[f.Data] = f.Epoch, true
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Nothing else: a marker sent now is the next frame.
	ids, err := nodes[2].ClientIDsByUID(c, "alice")
	if err != nil || len(ids) != 1 {
		t.Fatal(ids, err)
	}
	must(t, nodes[2].SendToClient(c, ids[0], gateway.Text("marker")))
	if f := wait(t, member.frames, "the marker"); f.Type != "message" || f.Stream != "" || f.Data != "marker" {
		t.Fatalf("after the pushes: %s", f.raw)
	}
}
