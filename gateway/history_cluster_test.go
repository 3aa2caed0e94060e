package gateway

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/internal/leakcheck"
)

// A cluster in history mode: nodes on one Hub sharing one history, as the
// nodes of a NATS cluster share JetStream's.

func histCluster(t *testing.T, h History, brokers ...Broker) []*node {
	t.Helper()
	var nodes []*node
	for i, b := range brokers {
		nodes = append(nodes, histNodeOpts(t, &workerman.Worker{URI: "websocket://127.0.0.1:0"},
			Options{Node: fmt.Sprintf("n%d", i+1), Broker: b, History: h}))
	}
	return nodes
}

// holdBroker holds the pushes other nodes send to its node while hold is
// on, so that a test hands them over in the order it chooses.
type holdBroker struct {
	Broker
	mu   sync.Mutex
	hold bool
	held []func()
	got  chan struct{}
}

type holdHandler struct {
	b *holdBroker
	Handler
}

func (b *holdBroker) Start(node string, h Handler) error {
	return b.Broker.Start(node, holdHandler{b, h})
}

func (h holdHandler) HandlePush(topic string, payload []byte) {
	h.b.mu.Lock()
	if h.b.hold {
		p := append([]byte(nil), payload...)
		h.b.held = append(h.b.held, func() { h.Handler.HandlePush(topic, p) })
		h.b.mu.Unlock()
		h.b.got <- struct{}{}
		return
	}
	h.b.mu.Unlock()
	h.Handler.HandlePush(topic, payload)
}

// Two nodes push to one stream and their pushes reach a third node in the
// other order: its members get them in offset order, once each, and a
// member excluded from one push does not get it from the catch-up either.
func TestHistoryClusterOutOfOrder(t *testing.T) {
	leakcheck.Check(t)
	hub := NewHub()
	hold := &holdBroker{Broker: hub.Broker(), got: make(chan struct{}, 10)}
	nodes := histCluster(t, NewMemoryHistory(MemoryHistoryOptions{Size: 100}), hub.Broker(), hold, hub.Broker())
	a, b, c := nodes[0], nodes[1], nodes[2]
	x := mustDialHist(t, b, url.Values{"group": {"room"}})
	y := mustDialHist(t, b, url.Values{"group": {"room"}})
	cx := ctx(t)

	hold.mu.Lock()
	hold.hold = true
	hold.mu.Unlock()
	must(t, a.SendToGroup(cx, "room", Text("one"), x.id))
	wait(t, hold.got, "the first push at the held node")
	must(t, c.SendToGroup(cx, "room", Text("two")))
	wait(t, hold.got, "the second push at the held node")
	hold.mu.Lock()
	hold.hold = false
	held := hold.held
	hold.mu.Unlock()
	held[1]() // "two" first: the node catches up from the history
	epoch := y.expectMsg(t, "group:room", 1, "", "one").Epoch
	y.expectMsg(t, "group:room", 2, epoch, "two")
	x.expectMsg(t, "group:room", 2, epoch, "two")
	held[0]() // then "one": delivered already
	must(t, a.SendToGroup(cx, "room", Text("three")))
	y.expectMsg(t, "group:room", 3, epoch, "three")
	x.expectMsg(t, "group:room", 3, epoch, "three")
	// A push arriving in order after all that: nothing came in between.
	must(t, c.SendToGroup(cx, "room", Text("four")))
	y.expectMsg(t, "group:room", 4, epoch, "four")
	x.expectMsg(t, "group:room", 4, epoch, "four")
}

// Two nodes push to one stream at once while clients resume on all three
// nodes: every client gets every message after its position once, in
// offset order, with resumed at the seam; and a member that stayed
// connected on each node gets every message from its join on.
func TestHistoryClusterResumeRace(t *testing.T) {
	leakcheck.Check(t)
	hub := NewHub()
	h := NewMemoryHistory(MemoryHistoryOptions{Size: 5000})
	nodes := histCluster(t, h, hub.Broker(), hub.Broker(), hub.Broker())
	c := ctx(t)
	must(t, nodes[0].SendToGroup(c, "room", Text("first")))
	var stay []*hclient
	for _, n := range nodes {
		stay = append(stay, mustDialHist(t, n, url.Values{"group": {"room"}}))
	}
	const perPusher = 600
	const total = 1 + 2*perPusher
	pushed := make(chan error, 2)
	for _, from := range []*node{nodes[0], nodes[2]} {
		go func() {
			for i := range perPusher {
				if err := from.SendToGroup(c, "room", Text(from.Node()+"-"+strconv.Itoa(i))); err != nil {
					pushed <- err
					return
				}
			}
			pushed <- nil
		}()
	}
	const clients = 45
	var wg sync.WaitGroup
	errs := make(chan error, clients+len(stay))
	got := make([]map[uint64]string, clients)
	for k := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			got[k], err = resumeAll(nodes[k%3], h, k, total)
			if err != nil {
				errs <- fmt.Errorf("client %d on %s: %w", k, nodes[k%3].Node(), err)
			}
		}()
	}
	for i, s := range stay {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := readFrom(s, 2, total, false); err != nil {
				errs <- fmt.Errorf("member on %s: %w", nodes[i].Node(), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for range 2 {
		if err := <-pushed; err != nil {
			t.Fatal(err)
		}
	}
	kept, cur, _, _ := h.Since(c, "group:room", Position{})
	if cur.Offset != total || len(kept) != total {
		t.Fatalf("history at %d with %d kept, want %d", cur.Offset, len(kept), total)
	}
	for k, m := range got {
		for off, data := range m {
			if want := string(kept[off-1].Data); data != want {
				t.Fatalf("client %d: offset %d is %q, the history has %q", k, off, data, want)
			}
		}
	}
}

// resumeAll connects a member of room at a position some way behind the
// newest message (or with none: the offline queue) and reads up to total.
func resumeAll(n *node, h History, k, total int) (map[uint64]string, error) {
	_, cur, _, err := h.Since(context.Background(), "group:room", Position{})
	if err != nil {
		return nil, err
	}
	from := cur
	from.Offset -= uint64(rand.IntN(int(cur.Offset) + 1))
	if k%10 == 0 {
		from = Position{}
	}
	a, err := dialHist(n, resumeQ(url.Values{"group": {"room"}}, map[string]Position{"group:room": from}))
	if err != nil {
		return nil, err
	}
	defer a.Destroy()
	return readFrom(a, from.Offset+1, total, true)
}

// readFrom reads room's messages from offset next up to total: each once,
// in order (and, when resumed, the resumed frame once, right after the
// replay).
func readFrom(a *hclient, next uint64, total int, resumed bool) (map[uint64]string, error) {
	got := make(map[uint64]string)
	seam := !resumed
	epoch := ""
	for next <= uint64(total) {
		var f hframe
		select {
		case f = <-a.frames:
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("waiting for offset %d (resumed seen %v)", next, seam)
		}
		switch {
		case f.Type == "resumed" && !seam:
			st := f.Streams["group:room"]
			if !st.Recovered || st.Offset != next-1 {
				return nil, fmt.Errorf("resumed %s after offset %d", f.raw, next-1)
			}
			seam = true
		case f.Type == "message" && f.Stream == "group:room" && f.Data != nil:
			if f.Offset != next || (epoch != "" && f.Epoch != epoch) {
				return nil, fmt.Errorf("got %s, want offset %d", f.raw, next)
			}
			epoch = f.Epoch
			got[next] = *f.Data
			next++
		default:
			return nil, fmt.Errorf("unexpected frame %s at offset %d", f.raw, next)
		}
	}
	if !seam {
		// The replay reached total (the client resumed after the last
		// push): the resumed frame comes after it.
		select {
		case f := <-a.frames:
			st := f.Streams["group:room"]
			if f.Type != "resumed" || !st.Recovered || st.Offset != next-1 {
				return nil, fmt.Errorf("after the replay to offset %d: %s, want resumed", next-1, f.raw)
			}
		case <-time.After(10 * time.Second):
			return nil, errors.New("no resumed frame")
		}
	}
	return got, nil
}

// A client resumes streams it cannot read yet (the backend binds and
// joins it after connect, on its connect event, as GatewayWorker apps
// do): the bind or join replays what it missed there, then a resumed
// frame for that stream, then the live pushes, with no gap and no
// duplicate while pushes keep coming.
func TestHistoryResumeAfterBind(t *testing.T) {
	leakcheck.Check(t)
	h := NewMemoryHistory(MemoryHistoryOptions{Size: 1000})
	n := histNode(t, h)
	c := ctx(t)
	for i := 1; i <= 5; i++ {
		must(t, n.SendToGroup(c, "late", Text(strconv.Itoa(i))))
	}
	for i := 1; i <= 3; i++ {
		must(t, n.SendToUID(c, "bob", Text("b"+strconv.Itoa(i))))
	}
	_, room, _, _ := h.Since(c, "group:late", Position{})
	a := mustDialHist(t, n, resumeQ(url.Values{}, map[string]Position{
		"group:late": {Epoch: room.Epoch, Offset: 2},
		"uid:bob":    {},
		"group:none": {Epoch: "x", Offset: 1}, // never joined: nothing
	}))
	if f := a.next(t); f.Type != "resumed" || len(f.Streams) != 0 {
		t.Fatalf("at connect, nothing readable: %s", f.raw)
	}
	const total = 300
	pushed := make(chan error, 1)
	go func() {
		for i := 6; i <= total; i++ {
			if err := n.SendToGroup(c, "late", Text(strconv.Itoa(i))); err != nil {
				pushed <- err
				return
			}
		}
		pushed <- nil
	}()
	must(t, n.JoinGroup(c, a.id, "late"))
	must(t, n.BindUID(c, a.id, "bob"))
	next := map[string]uint64{"group:late": 3, "uid:bob": 1}
	seam := map[string]bool{}
	for next["group:late"] <= total || !seam["uid:bob"] {
		f := a.next(t)
		switch f.Type {
		case "resumed":
			if len(f.Streams) != 1 {
				t.Fatalf("one stream per late resume: %s", f.raw)
			}
			for s, st := range f.Streams {
				if seam[s] || !st.Recovered || st.Offset != next[s]-1 {
					t.Fatalf("resumed %s, next %d", f.raw, next[s])
				}
				seam[s] = true
			}
		case "message":
			want := strconv.FormatUint(next[f.Stream], 10)
			if f.Stream == "uid:bob" {
				want = "b" + want
			}
			if f.Offset != next[f.Stream] || f.Data == nil || *f.Data != want {
				t.Fatalf("got %s, want %s #%d", f.raw, f.Stream, next[f.Stream])
			}
			next[f.Stream]++
		default:
			t.Fatalf("unexpected %s", f.raw)
		}
	}
	if !seam["group:late"] || next["uid:bob"] != 4 {
		t.Fatalf("seams %v, bob at %d", seam, next["uid:bob"])
	}
	if err := <-pushed; err != nil {
		t.Fatal(err)
	}
	// Joined again later: live only, no second replay.
	must(t, n.LeaveGroup(c, a.id, "late"))
	must(t, n.JoinGroup(c, a.id, "late"))
	must(t, n.SendToGroup(c, "late", Text("again")))
	a.expectMsg(t, "group:late", total+1, room.Epoch, "again")
}
