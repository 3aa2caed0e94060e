package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/internal/leakcheck"
	"github.com/workerman-go/workerman/protocol"
)

// histNode is a node in history mode whose clients say who they are in
// the query: ?uid=alice&group=a&group=b (bound and joined in OnConnect,
// before they are reachable).
func histNode(t *testing.T, h History) *node {
	t.Helper()
	return histNodeOn(t, &workerman.Worker{URI: "websocket://127.0.0.1:0"}, h)
}

// histNodeOn is histNode on a worker of the caller's.
func histNodeOn(t *testing.T, w *workerman.Worker, h History) *node {
	t.Helper()
	return histNodeOpts(t, w, Options{Node: "h1", History: h})
}

// histNodeOpts is histNode with a worker and options of the caller's (a
// cluster's broker and its shared history).
func histNodeOpts(t *testing.T, w *workerman.Worker, opt Options) *node {
	t.Helper()
	w.OnWebSocketConnect = func(c *workerman.Connection, r *workerman.WebSocketRequest) error {
		c.SetValue(r.Query())
		return nil
	}
	return newNodeOpts(t, w, opt, func(n *node) {
		n.OnConnect = func(id string) {
			q, _ := n.Connection(id).Value().(url.Values)
			if uid := q.Get("uid"); uid != "" {
				n.BindUID(context.Background(), id, uid)
			}
			for _, grp := range q["group"] {
				n.JoinGroup(context.Background(), id, grp)
			}
		}
	})
}

// hframe is a frame of history mode, decoded.
type hframe struct {
	Type       string                   `json:"type"`
	Stream     string                   `json:"stream"`
	Offset     uint64                   `json:"offset"`
	Epoch      string                   `json:"epoch"`
	Data       *string                  `json:"data"`
	DataBase64 []byte                   `json:"data_base64"`
	Streams    map[string]resumedStream `json:"streams"`
	raw        string
}

// hclient is a WebSocket client of a history node; frames come decoded.
type hclient struct {
	*workerman.AsyncConnection
	id     string
	frames chan hframe
	closed chan struct{}
}

// dialHist connects with the query (uid, group, resume...) and reads the
// welcome. It reports failures as errors, so that it runs on any
// goroutine.
func dialHist(n *node, q url.Values) (*hclient, error) {
	c := &hclient{
		AsyncConnection: workerman.NewAsyncConnection("ws://" + n.addr + "/?" + q.Encode()),
		frames:          make(chan hframe, 4096),
		closed:          make(chan struct{}),
	}
	var once sync.Once
	c.OnMessage = func(a *workerman.AsyncConnection, d []byte) {
		f := hframe{raw: string(d)}
		if a.MessageType() == protocol.BinaryMessage {
			f.Type = "binary"
		} else if err := json.Unmarshal(d, &f); err != nil {
			f.Type = "not json"
		}
		c.frames <- f
	}
	c.OnClose = func(*workerman.AsyncConnection) { once.Do(func() { close(c.closed) }) }
	if err := c.Connect(); err != nil {
		return nil, err
	}
	select {
	case f := <-c.frames:
		var w struct {
			ClientID string `json:"client_id"`
		}
		if json.Unmarshal([]byte(f.raw), &w); w.ClientID == "" {
			c.Destroy()
			return nil, fmt.Errorf("first frame %q is not a welcome", f.raw)
		}
		c.id = w.ClientID
	case <-c.closed:
		return nil, errors.New("closed before the welcome")
	case <-time.After(10 * time.Second):
		c.Destroy()
		return nil, errors.New("no welcome")
	}
	return c, nil
}

func mustDialHist(t *testing.T, n *node, q url.Values) *hclient {
	t.Helper()
	c, err := dialHist(n, q)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Destroy)
	return c
}

func (c *hclient) next(t *testing.T) hframe {
	t.Helper()
	return wait(t, c.frames, "a frame")
}

// expectMsg reads a message of stream at offset with text data.
func (c *hclient) expectMsg(t *testing.T, stream string, offset uint64, epoch, data string) hframe {
	t.Helper()
	f := c.next(t)
	if f.Type != "message" || f.Stream != stream || f.Offset != offset || (epoch != "" && f.Epoch != epoch) ||
		f.Data == nil || *f.Data != data {
		t.Fatalf("got %s, want %s #%d %q", f.raw, stream, offset, data)
	}
	return f
}

func resumeQ(q url.Values, r map[string]Position) url.Values {
	b, _ := json.Marshal(r)
	q.Set("resume", string(b))
	return q
}

// In history mode every push is an envelope, with offsets that rise by 1
// per stream; SendToClient's has no stream.
func TestHistoryEnvelopes(t *testing.T) {
	leakcheck.Check(t)
	n := histNode(t, NewMemoryHistory(MemoryHistoryOptions{Size: 10}))
	c := ctx(t)
	a := mustDialHist(t, n, url.Values{"uid": {"alice"}, "group": {"room"}})
	must(t, n.SendToUID(c, "alice", Text(`{"n":1} "é"`+"\n")))
	f := a.next(t)
	if f.Epoch == "" {
		t.Fatalf("no epoch: %s", f.raw)
	}
	if want := `{"type":"message","stream":"uid:alice","offset":1,"epoch":"` + f.Epoch + `","data":"{\"n\":1} \"é\"\n"}`; f.raw != want {
		t.Fatalf("envelope\n%s\nwant\n%s", f.raw, want)
	}
	alice := f.Epoch
	must(t, n.SendToUID(c, "alice", Text("two")))
	a.expectMsg(t, "uid:alice", 2, alice, "two")
	must(t, n.SendToGroup(c, "room", Text("r1")))
	room := a.expectMsg(t, "group:room", 1, "", "r1").Epoch
	must(t, n.SendToAll(c, Binary([]byte{0, 0xff})))
	if f := a.next(t); f.Type != "message" || f.Stream != "all" || f.Offset != 1 || f.Data != nil || string(f.DataBase64) != "\x00\xff" ||
		!strings.Contains(f.raw, `"data_base64":"AP8="`) {
		t.Fatalf("binary push %s", f.raw)
	}
	must(t, n.SendToGroup(c, "room", Text("r2")))
	a.expectMsg(t, "group:room", 2, room, "r2")
	must(t, n.SendToClient(c, a.id, Text("direct")))
	if f := a.next(t); f.raw != `{"type":"message","data":"direct"}` {
		t.Fatalf("SendToClient in history mode: %s", f.raw)
	}
	for i := uint64(3); i <= 30; i++ {
		must(t, n.SendToUID(c, "alice", Text(strconv.FormatUint(i, 10))))
		a.expectMsg(t, "uid:alice", i, alice, strconv.FormatUint(i, 10))
	}
	// No resume parameter: no resumed frame, nothing but the pushes.
	must(t, n.CloseClient(c, a.id, Text("bye")))
	if f := a.next(t); f.raw != `{"type":"message","data":"bye"}` {
		t.Fatalf("final message %s", f.raw)
	}
}

// A client that reconnects with its positions gets exactly what it
// missed, then resumed, then the live pushes.
func TestHistoryResume(t *testing.T) {
	leakcheck.Check(t)
	n := histNode(t, NewMemoryHistory(MemoryHistoryOptions{Size: 100}))
	c := ctx(t)
	q := url.Values{"uid": {"alice"}, "group": {"room"}}
	a := mustDialHist(t, n, q)
	must(t, n.SendToUID(c, "alice", Text("a1")))
	ep := a.expectMsg(t, "uid:alice", 1, "", "a1").Epoch
	must(t, n.SendToGroup(c, "room", Text("r1")))
	rep := a.expectMsg(t, "group:room", 1, "", "r1").Epoch
	a.Destroy()
	wait(t, n.events, "close")

	for i := 2; i <= 4; i++ {
		must(t, n.SendToUID(c, "alice", Text(fmt.Sprint("a", i))))
	}
	must(t, n.SendToGroup(c, "room", Text("r2")))
	must(t, n.SendToUID(c, "bob", Text("not alice's")))
	b := mustDialHist(t, n, resumeQ(q, map[string]Position{
		"uid:alice":  {Epoch: ep, Offset: 1},
		"group:room": {Epoch: rep, Offset: 1},
		"uid:bob":    {Epoch: "", Offset: 0}, // not alice's to read: ignored
		"group:x":    {},                     // not a member: ignored
	}))
	// The streams are replayed one after the other, in name order.
	b.expectMsg(t, "group:room", 2, rep, "r2")
	for i := uint64(2); i <= 4; i++ {
		b.expectMsg(t, "uid:alice", i, ep, fmt.Sprint("a", i))
	}
	f := b.next(t)
	want := map[string]resumedStream{"uid:alice": {true, ep, 4}, "group:room": {true, rep, 2}}
	if f.Type != "resumed" || fmt.Sprint(f.Streams) != fmt.Sprint(want) {
		t.Fatalf("got %s, want resumed %v", f.raw, want)
	}
	must(t, n.SendToUID(c, "alice", Text("a5")))
	b.expectMsg(t, "uid:alice", 5, ep, "a5")

	// Resuming at the newest offset replays nothing.
	c2 := mustDialHist(t, n, resumeQ(url.Values{"uid": {"alice"}}, map[string]Position{"uid:alice": {Epoch: ep, Offset: 5}}))
	if f := c2.next(t); f.Type != "resumed" || f.Streams["uid:alice"] != (resumedStream{true, ep, 5}) || len(f.Streams) != 1 {
		t.Fatalf("got %s", f.raw)
	}
}

// An empty epoch is the offline queue: everything kept.
func TestHistoryEmptyEpoch(t *testing.T) {
	leakcheck.Check(t)
	n := histNode(t, NewMemoryHistory(MemoryHistoryOptions{Size: 3}))
	c := ctx(t)
	for i := 1; i <= 5; i++ { // bob is away; the history keeps 3, 4, 5
		must(t, n.SendToUID(c, "bob", Text(fmt.Sprint("m", i))))
	}
	b := mustDialHist(t, n, resumeQ(url.Values{"uid": {"bob"}}, map[string]Position{"uid:bob": {Offset: 1}}))
	ep := b.expectMsg(t, "uid:bob", 3, "", "m3").Epoch
	b.expectMsg(t, "uid:bob", 4, ep, "m4")
	b.expectMsg(t, "uid:bob", 5, ep, "m5")
	if f := b.next(t); f.Type != "resumed" || f.Streams["uid:bob"] != (resumedStream{true, ep, 5}) {
		t.Fatalf("got %s", f.raw)
	}
	// A stream with no history yet: recovered, and the epoch its first
	// message will have.
	e := mustDialHist(t, n, resumeQ(url.Values{"group": {"new"}}, map[string]Position{"group:new": {}}))
	f := e.next(t)
	st := f.Streams["group:new"]
	if f.Type != "resumed" || !st.Recovered || st.Epoch == "" || st.Offset != 0 {
		t.Fatalf("got %s", f.raw)
	}
	must(t, n.SendToGroup(c, "new", Text("first")))
	e.expectMsg(t, "group:new", 1, st.Epoch, "first")
}

// An unknown epoch, or a position the history no longer reaches: nothing
// replayed, recovered false with the current epoch and offset.
func TestHistoryNotRecovered(t *testing.T) {
	leakcheck.Check(t)
	n := histNode(t, NewMemoryHistory(MemoryHistoryOptions{Size: 2}))
	c := ctx(t)
	for i := 1; i <= 4; i++ {
		must(t, n.SendToAll(c, Text(fmt.Sprint(i))))
	}
	_, cur, _, _ := n.hist.Since(c, "all", Position{})
	for name, pos := range map[string]Position{
		"unknown epoch":       {Epoch: "nope", Offset: 3},
		"older than kept":     {Epoch: cur.Epoch, Offset: 1}, // 2 was dropped
		"newer than the last": {Epoch: cur.Epoch, Offset: 9},
	} {
		a := mustDialHist(t, n, resumeQ(url.Values{}, map[string]Position{"all": pos}))
		if f := a.next(t); f.Type != "resumed" || f.Streams["all"] != (resumedStream{false, cur.Epoch, 4}) {
			t.Fatalf("%s: got %s", name, f.raw)
		}
		must(t, n.SendToClient(c, a.id, Text("marker")))
		if f := a.next(t); f.raw != `{"type":"message","data":"marker"}` {
			t.Fatalf("%s: got %s after resumed", name, f.raw)
		}
	}
	// The oldest kept is still reachable from the offset before it.
	a := mustDialHist(t, n, resumeQ(url.Values{}, map[string]Position{"all": {Epoch: cur.Epoch, Offset: 2}}))
	a.expectMsg(t, "all", 3, cur.Epoch, "3")
	a.expectMsg(t, "all", 4, cur.Epoch, "4")
	if f := a.next(t); f.Type != "resumed" || !f.Streams["all"].Recovered {
		t.Fatalf("got %s", f.raw)
	}
}

// A malformed resume parameter is refused before the upgrade with 400;
// without history the parameter is ignored and the frames stay as they
// are.
func TestHistoryResumeParameter(t *testing.T) {
	leakcheck.Check(t)
	n := histNode(t, NewMemoryHistory(MemoryHistoryOptions{}))
	for _, bad := range []string{`{`, `[]`, `null`, `{"all":1}`, `{"all":{"offset":-1}}`, `{"all":{"epoch":3}}`, `{"all":{"offset":1.5}}`} {
		a := workerman.NewAsyncConnection("ws://" + n.addr + "/?" + url.Values{"resume": {bad}}.Encode())
		failed := make(chan error, 1)
		a.OnError = func(_ *workerman.AsyncConnection, err error) {
			select {
			case failed <- err:
			default:
			}
		}
		a.OnMessage = func(*workerman.AsyncConnection, []byte) { failed <- errors.New("a message came") }
		if err := a.Connect(); err != nil {
			t.Fatal(err)
		}
		err := wait(t, failed, "the refusal of "+bad)
		a.Destroy()
		if !strings.Contains(err.Error(), "400") {
			t.Fatalf("resume=%s: %v, want a 400", bad, err)
		}
	}

	plain := newNode(t, "plain", nil, "websocket://127.0.0.1:0")
	c := dialWS(t, plain) // the welcome, as without resume
	_ = c
	p, err := dialHist(plain, resumeQ(url.Values{}, map[string]Position{"all": {Epoch: "x", Offset: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Destroy)
	must(t, plain.SendToAll(ctx(t), Text("as sent")))
	if f := p.next(t); f.raw != "as sent" {
		t.Fatalf("without history: %q", f.raw)
	}
}

// 50 clients resume while a stream gets pushes: each gets every message
// after its position exactly once, in order, with resumed at the seam.
func TestHistoryResumeRace(t *testing.T) {
	leakcheck.Check(t)
	h := NewMemoryHistory(MemoryHistoryOptions{Size: 5000})
	n := histNode(t, h)
	c := ctx(t)
	const total = 1500
	const clients = 50
	must(t, n.SendToGroup(c, "room", Text("1")))
	_, cur, _, _ := h.Since(c, "group:room", Position{})

	pushed := make(chan error, 1)
	go func() {
		for i := 2; i <= total; i++ {
			if err := n.SendToGroup(c, "room", Text(strconv.Itoa(i))); err != nil {
				pushed <- err
				return
			}
		}
		pushed <- nil
	}()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for k := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := resumeAndCheck(n, h, k, total); err != nil {
				errs <- fmt.Errorf("client %d: %w", k, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := <-pushed; err != nil {
		t.Fatal(err)
	}
	if _, last, _, _ := h.Since(c, "group:room", Position{Epoch: cur.Epoch, Offset: total}); last != (Position{cur.Epoch, total}) {
		t.Fatalf("history at %+v, want %d in %s", last, total, cur.Epoch)
	}
}

// resumeAndCheck connects a member of room at a position some way behind
// the newest message, and checks it gets every message from there to
// total once, in order, with resumed between the replay and the live.
func resumeAndCheck(n *node, h History, k, total int) error {
	_, cur, _, err := h.Since(context.Background(), "group:room", Position{})
	if err != nil {
		return err
	}
	from := cur
	from.Offset -= uint64(rand.IntN(int(cur.Offset))) // 0..cur, kept: Size > total
	if k%10 == 0 {
		from = Position{} // the offline queue: everything
	}
	a, err := dialHist(n, resumeQ(url.Values{"group": {"room"}}, map[string]Position{"group:room": from}))
	if err != nil {
		return err
	}
	defer a.Destroy()
	next := from.Offset + 1
	seam := false
	for next <= uint64(total) {
		var f hframe
		select {
		case f = <-a.frames:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("waiting for offset %d (from %d, resumed seen %v)", next, from.Offset, seam)
		}
		switch {
		case f.Type == "resumed":
			st := f.Streams["group:room"]
			if seam || !st.Recovered || st.Epoch != cur.Epoch || st.Offset != next-1 {
				return fmt.Errorf("resumed %s after offset %d (seen before: %v)", f.raw, next-1, seam)
			}
			seam = true
		case f.Type == "message" && f.Stream == "group:room":
			if f.Offset != next || f.Epoch != cur.Epoch || f.Data == nil || *f.Data != strconv.FormatUint(next, 10) {
				return fmt.Errorf("got %s, want offset %d", f.raw, next)
			}
			next++
		default:
			return fmt.Errorf("unexpected frame %s", f.raw)
		}
	}
	if !seam {
		// The replay reached total (the client resumed after the last
		// push): the resumed frame comes after it.
		select {
		case f := <-a.frames:
			st := f.Streams["group:room"]
			if f.Type != "resumed" || !st.Recovered || st.Epoch != cur.Epoch || st.Offset != next-1 {
				return fmt.Errorf("after the replay to offset %d: %s, want resumed", next-1, f.raw)
			}
		case <-time.After(10 * time.Second):
			return errors.New("no resumed frame")
		}
	}
	return nil
}

// The memory history keeps Size messages per stream and forgets what is
// older than the TTL: a stream whose every message expired is gone, and
// its next message starts a new epoch.
func TestMemoryHistoryBounds(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	h := NewMemoryHistory(MemoryHistoryOptions{Size: 4, TTL: time.Minute, Now: clock})
	c := context.Background()
	for i := 1; i <= 100; i++ {
		pos, _ := h.Append(c, "uid:a", Text(fmt.Sprintf("%03d", i)), nil)
		if pos.Offset != uint64(i) {
			t.Fatalf("offset %d for message %d", pos.Offset, i)
		}
	}
	if s := h.Stats(); s != (MemoryHistoryStats{Streams: 1, Messages: 4, Bytes: 12}) {
		t.Fatalf("stats %+v, want the last 4 messages only", s)
	}
	msgs, cur, ok, _ := h.Since(c, "uid:a", Position{})
	if !ok || cur.Offset != 100 || len(msgs) != 4 || msgs[0].Offset != 97 || string(msgs[3].Data) != "100" {
		t.Fatalf("Since: %v %+v %v", msgs, cur, ok)
	}
	// Half a TTL later, two more; a TTL after the first four, only the
	// two are left.
	now = now.Add(30 * time.Second)
	h.Append(c, "uid:a", Text("101"), nil)
	h.Append(c, "uid:a", Text("102"), nil)
	now = now.Add(30 * time.Second)
	msgs, cur, ok, _ = h.Since(c, "uid:a", Position{Epoch: cur.Epoch, Offset: 100})
	if !ok || len(msgs) != 2 || msgs[0].Offset != 101 || cur.Offset != 102 {
		t.Fatalf("after the first TTL: %v %+v %v", msgs, cur, ok)
	}
	if _, _, ok, _ := h.Since(c, "uid:a", Position{Epoch: cur.Epoch, Offset: 99}); ok {
		t.Fatal("offset 99: its successor expired, yet recovered")
	}
	// Many streams, then a TTL of silence: all forgotten, no memory held.
	for i := range 1000 {
		h.Append(c, fmt.Sprintf("group:%d", i), Text("x"), nil)
	}
	if s := h.Stats(); s.Streams != 1001 || s.Messages != 1002 {
		t.Fatalf("stats %+v", s)
	}
	now = now.Add(time.Minute)
	if s := h.Stats(); s != (MemoryHistoryStats{}) {
		t.Fatalf("a TTL later: %+v, want nothing", s)
	}
	_, again, ok, _ := h.Since(c, "uid:a", Position{Epoch: cur.Epoch, Offset: 102})
	if ok || again.Epoch == cur.Epoch || again.Offset != 0 {
		t.Fatalf("after the history was lost: %+v recovered %v, want a new epoch at 0", again, ok)
	}
	if pos, _ := h.Append(c, "uid:a", Text("new"), nil); pos != (Position{again.Epoch, 1}) {
		t.Fatalf("first message of the new history at %+v", pos)
	}
	// The sweep runs from Append too: streams nobody asks about go.
	now = now.Add(2 * time.Minute)
	h.Append(c, "other", Text("y"), nil)
	h.mu.Lock()
	left := len(h.streams)
	h.mu.Unlock()
	if left != 1 {
		t.Fatalf("%d streams after the sweep, want 1", left)
	}
}

// The ring wraps and grows correctly under partial expiry.
func TestMemoryHistoryRing(t *testing.T) {
	now := time.Unix(0, 0)
	h := NewMemoryHistory(MemoryHistoryOptions{Size: 8, TTL: 10 * time.Second, Now: func() time.Time { return now }})
	c := context.Background()
	var want []string
	for i := 1; i <= 200; i++ {
		now = now.Add(time.Second)
		h.Append(c, "s", Text(strconv.Itoa(i)), nil)
		want = append(want, strconv.Itoa(i))
		if i%7 == 0 {
			now = now.Add(time.Duration(i%5) * 2 * time.Second) // expire a few
		}
		msgs, cur, _, _ := h.Since(c, "s", Position{})
		if cur.Offset != uint64(i) {
			t.Fatalf("step %d: cur %+v", i, cur)
		}
		for j, m := range msgs {
			if m.Offset != uint64(i-len(msgs)+j+1) || string(m.Data) != want[m.Offset-1] {
				t.Fatalf("step %d: entry %d is %d %q", i, j, m.Offset, m.Data)
			}
			if now.Sub(time.Unix(0, 0)) >= 10*time.Second && m.Offset == uint64(i) && len(msgs) > 8 {
				t.Fatalf("step %d: %d kept", i, len(msgs))
			}
		}
		if len(msgs) > 8 {
			t.Fatalf("step %d: %d kept, Size 8", i, len(msgs))
		}
	}
}

// The memory the documentation states: about 200 bytes and the name per
// stream, 40 bytes and the message per message kept.
func TestMemoryHistoryMemory(t *testing.T) {
	const streams, size = 10000, 50
	h := NewMemoryHistory(MemoryHistoryOptions{Size: size})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range streams {
		name := fmt.Sprintf("uid:user%06d", i) // 15 bytes
		for range 2 * size {
			h.Append(context.Background(), name, Message{}, nil)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / streams
	runtime.KeepAlive(h)
	if limit := int64(200 + 16 + size*40 + 100); per > limit {
		t.Fatalf("%d bytes per stream of %d empty messages, documented about %d", per, size, limit-100)
	}
	t.Logf("%d bytes per stream of %d empty messages", per, size)
}

// A client away for longer than the TTL: its messages expired, the stream
// was forgotten, and its resume is not recovered (a new epoch); one back
// within the TTL gets its messages.
func TestHistoryTTL(t *testing.T) {
	leakcheck.Check(t)
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	advance := func(d time.Duration) {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
	}
	n := histNode(t, NewMemoryHistory(MemoryHistoryOptions{Size: 10, TTL: time.Minute, Now: clock}))
	c := ctx(t)
	must(t, n.SendToUID(c, "carol", Text("old")))
	advance(50 * time.Second)
	must(t, n.SendToUID(c, "carol", Text("newer")))
	_, cur, _, _ := n.hist.Since(c, "uid:carol", Position{})
	advance(20 * time.Second) // "old" is 70 s old, "newer" 20 s
	a := mustDialHist(t, n, resumeQ(url.Values{"uid": {"carol"}}, map[string]Position{"uid:carol": {Epoch: cur.Epoch, Offset: 1}}))
	a.expectMsg(t, "uid:carol", 2, cur.Epoch, "newer")
	if f := a.next(t); f.Type != "resumed" || f.Streams["uid:carol"] != (resumedStream{true, cur.Epoch, 2}) {
		t.Fatalf("within the TTL: %s", f.raw)
	}
	a.Destroy()
	advance(time.Minute)
	b := mustDialHist(t, n, resumeQ(url.Values{"uid": {"carol"}}, map[string]Position{"uid:carol": {Epoch: cur.Epoch, Offset: 1}}))
	f := b.next(t)
	st := f.Streams["uid:carol"]
	if f.Type != "resumed" || st.Recovered || st.Epoch == cur.Epoch || st.Offset != 0 {
		t.Fatalf("after the TTL: %s, want recovered false in a new epoch", f.raw)
	}
	must(t, n.SendToUID(c, "carol", Text("fresh")))
	b.expectMsg(t, "uid:carol", 1, st.Epoch, "fresh")
}

// A member whose send buffer is full when a push comes is closed (1013)
// after what was queued before: it got a contiguous run of offsets, and
// resuming from the last one replays exactly the rest. (A skip on a live
// connection is only ever an exclusion.)
func TestHistoryFullBufferCloses(t *testing.T) {
	leakcheck.Check(t)
	n := histNodeOn(t, &workerman.Worker{URI: "websocket://127.0.0.1:0", MaxSendBufferSize: 16 << 10},
		NewMemoryHistory(MemoryHistoryOptions{Size: 100000}))
	c := ctx(t)
	q := url.Values{"uid": {"alice"}}
	a := mustDialHist(t, n, q)
	a.PauseRecv()
	pad := strings.Repeat("x", 4<<10)
	pushed := 0
	closed := false
	for !closed && pushed < 20000 { // 80 MB: far beyond any socket buffer
		pushed++
		must(t, n.SendToUID(c, "alice", Text(fmt.Sprint(pushed, " ", pad))))
		select {
		case ev := <-n.events:
			closed = strings.HasPrefix(ev, "close "+a.id)
		default:
		}
	}
	if !closed {
		t.Fatalf("%d pushes to a client that does not read, and it is still open", pushed)
	}
	a.ResumeRecv()
	var ep string
	got := uint64(0)
	for done := false; !done; {
		select {
		case f := <-a.frames:
			if f.Type != "message" || f.Stream != "uid:alice" || f.Offset != got+1 {
				t.Fatalf("after offset %d: %.60s", got, f.raw)
			}
			got, ep = f.Offset, f.Epoch
		case <-a.closed:
			done = true
		case <-time.After(10 * time.Second):
			t.Fatalf("no close after offset %d", got)
		}
	}
	if got == 0 || got >= uint64(pushed) {
		t.Fatalf("got offsets 1..%d of %d pushes", got, pushed)
	}
	b := mustDialHist(t, n, resumeQ(url.Values{"uid": {"alice"}}, map[string]Position{"uid:alice": {Epoch: ep, Offset: got}}))
	for i := got + 1; i <= uint64(pushed); i++ {
		if f := b.next(t); f.Offset != i || f.Data == nil || !strings.HasPrefix(*f.Data, fmt.Sprint(i, " ")) {
			t.Fatalf("replay: %.60s, want offset %d", f.raw, i)
		}
	}
	if f := b.next(t); f.Type != "resumed" || f.Streams["uid:alice"] != (resumedStream{true, ep, uint64(pushed)}) {
		t.Fatalf("got %.80s, want resumed at %d", f.raw, pushed)
	}
}

// A node's first member of a stream reads the stream's current position;
// in the memory history that makes no stream: binding a uid costs nothing
// there until the uid gets a message.
func TestMemoryHistoryJoinMakesNoStream(t *testing.T) {
	leakcheck.Check(t)
	h := NewMemoryHistory(MemoryHistoryOptions{Size: 10})
	n := histNode(t, h)
	a := mustDialHist(t, n, url.Values{"uid": {"alice"}, "group": {"room"}})
	if st := h.Stats(); st.Streams != 0 {
		t.Fatalf("%d streams after a client bound a uid and joined a group, want 0", st.Streams)
	}
	c := ctx(t)
	must(t, n.SendToUID(c, "alice", Text("one")))
	a.expectMsg(t, "uid:alice", 1, "", "one")
	if st := h.Stats(); st.Streams != 1 || st.Messages != 1 {
		t.Fatalf("after a push: %+v", st)
	}
}
