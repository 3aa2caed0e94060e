package pushclient

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/gateway"
)

// historyServer is a push server with history as the client sees it
// (push.md, "History and recovery"), faked on a websocket:// worker so
// that the client's side is tested on its own: every stream keeps its
// last messages with rising offsets under an epoch; a connection, once
// the test starts it, gets the welcome, the replay of what its resume
// missed, the resumed answer, then the live pushes of the streams it
// reads. The test may also script a connection frame by frame.
type historyServer struct {
	url   string
	conns chan *histConn // connections after their handshake, not started

	mu      sync.Mutex
	keep    int // messages kept per stream
	streams map[string]*histStream
	live    map[*histConn]bool
	epochs  int
	clients int
}

type histStream struct {
	epoch string
	last  uint64   // offset of the last message, 0 when none came
	msgs  []string // the last ones kept, up to last; text only
}

// histConn is one client connection.
type histConn struct {
	s       *historyServer
	c       *workerman.Connection
	query   url.Values
	resume  map[string]Position // the resume parameter; nil when none
	reads   []string            // the streams it may read, set by start
	closeBy chan int            // the close code the client sent
}

func newHistoryServer(t *testing.T, keep int) *historyServer {
	t.Helper()
	s := &historyServer{conns: make(chan *histConn, 100), keep: keep, streams: map[string]*histStream{}, live: map[*histConn]bool{}}
	w := &workerman.Worker{URI: "websocket://127.0.0.1:0"}
	w.OnWebSocketConnect = func(c *workerman.Connection, r *workerman.WebSocketRequest) error {
		hc := &histConn{s: s, c: c, query: r.Query(), closeBy: make(chan int, 1)}
		if raw, ok := r.Query()["resume"]; ok {
			if err := json.Unmarshal([]byte(raw[0]), &hc.resume); err != nil {
				return workerman.RejectWebSocket(400, "malformed resume")
			}
		}
		c.SetValue(hc)
		return nil
	}
	w.OnWebSocketConnected = func(c *workerman.Connection, _ *workerman.WebSocketRequest) {
		s.conns <- c.Value().(*histConn)
	}
	w.OnWebSocketClose = func(c *workerman.Connection, code int, _ string) {
		c.Value().(*histConn).closeBy <- code
	}
	w.OnClose = func(c *workerman.Connection) {
		if hc, ok := c.Value().(*histConn); ok {
			s.mu.Lock()
			delete(s.live, hc)
			s.mu.Unlock()
		}
	}
	listen(t, w)
	s.url = "ws://" + w.Addr().String() + "/"
	return s
}

// next returns the next connection, not started yet.
func (s *historyServer) next(t *testing.T) *histConn {
	t.Helper()
	select {
	case hc := <-s.conns:
		return hc
	case <-time.After(10 * time.Second):
		t.Fatal("no connection to the history server")
		panic("unreachable")
	}
}

func (s *historyServer) streamLocked(name string) *histStream {
	st := s.streams[name]
	if st == nil {
		s.epochs++
		st = &histStream{epoch: fmt.Sprintf("ep%d", s.epochs)}
		s.streams[name] = st
	}
	return st
}

// position is stream's current epoch and last offset.
func (s *historyServer) position(stream string) Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streamLocked(stream)
	return Position{st.epoch, st.last}
}

// push appends data to stream and sends it to the live connections that
// read it.
func (s *historyServer) push(stream, data string) Position {
	return s.pushTo(stream, data, nil, nil)
}

// pushTo is push, but the live connection exclude (when not nil) is left
// out, as the backend's exclude_client_ids does, and the one full (when
// not nil) is taken as a client whose send buffer is full: instead of
// the push it gets a close with 1013, and nothing after it.
func (s *historyServer) pushTo(stream, data string, exclude, full *histConn) Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streamLocked(stream)
	st.last++
	st.msgs = append(st.msgs, data)
	if len(st.msgs) > s.keep {
		st.msgs = st.msgs[len(st.msgs)-s.keep:]
	}
	for hc := range s.live {
		switch {
		case !slices.Contains(hc.reads, stream) || hc == exclude:
		case hc == full:
			delete(s.live, hc)
			hc.c.CloseWebSocket(closeTryAgainLater, "send buffer full")
		default:
			hc.c.SendString(envelopeJSON(stream, st.last, st.epoch, data))
		}
	}
	return Position{st.epoch, st.last}
}

// closeTryAgainLater is the close code of a push server that could not
// queue a push for a client in history mode (RFC 6455's 1013).
const closeTryAgainLater = 1013

// start sends the welcome, then, when the connection resumes, the replay
// of every stream it names and may read and the resumed answer; from then
// on it gets the live pushes of reads. All under the lock: no push slips
// in between (no gap, no duplicate at the seam).
func (hc *histConn) start(uid string, reads ...string) {
	s := hc.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients++
	hc.welcome(fmt.Sprintf("h.%d", s.clients), uid)
	hc.reads = reads
	if hc.resume != nil {
		answer := map[string]any{}
		for stream, from := range hc.resume {
			if !slices.Contains(reads, stream) {
				continue
			}
			st := s.streamLocked(stream)
			oldest := st.last - uint64(len(st.msgs)) + 1
			var skip uint64
			switch {
			case from.Epoch == "":
			case from.Epoch != st.epoch || from.Offset > st.last || from.Offset+1 < oldest:
				answer[stream] = map[string]any{"recovered": false, "epoch": st.epoch, "offset": st.last}
				continue
			default:
				skip = from.Offset + 1 - oldest
			}
			for i := skip; i < uint64(len(st.msgs)); i++ {
				hc.raw(envelopeJSON(stream, oldest+i, st.epoch, st.msgs[i]))
			}
			answer[stream] = map[string]any{"recovered": true, "epoch": st.epoch, "offset": st.last}
		}
		b, _ := json.Marshal(map[string]any{"type": "resumed", "streams": answer})
		hc.raw(string(b))
	}
	s.live[hc] = true
}

func (hc *histConn) welcome(clientID, uid string) {
	b, _ := json.Marshal(map[string]string{"type": "welcome", "client_id": clientID, "uid": uid})
	hc.raw(string(b))
}

// raw sends frame as a text frame.
func (hc *histConn) raw(frame string) { hc.c.SendString(frame) }

// direct sends a sendToClient push as history mode wraps it.
func (hc *histConn) direct(data string) {
	b, _ := json.Marshal(map[string]string{"type": "message", "data": data})
	hc.raw(string(b))
}

func (hc *histConn) close() { hc.c.CloseWebSocket(1000, "") }

// closedBy returns the close code the client sent.
func (hc *histConn) closedBy(t *testing.T) int {
	t.Helper()
	select {
	case code := <-hc.closeBy:
		return code
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not close the connection")
		panic("unreachable")
	}
}

func envelopeJSON(stream string, offset uint64, epoch, data string) string {
	b, _ := json.Marshal(map[string]any{"type": "message", "stream": stream, "offset": offset, "epoch": epoch, "data": data})
	return string(b)
}

// pushed skips to the next message and checks all of it.
func (r *recorder) pushed(t *testing.T, want Message) {
	t.Helper()
	got := nextOf[Message](t, r)
	if string(got.Data) != string(want.Data) || got.Binary != want.Binary || got.Stream != want.Stream || got.Offset != want.Offset || got.Epoch != want.Epoch {
		t.Fatalf("message %q %+v, want %q %+v", got.Data, got, want.Data, want)
	}
}

// deliveries returns the next n events that are messages or resumed
// answers, as strings, skipping the others.
func (r *recorder) deliveries(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for len(out) < n {
		switch e := r.next(t).(type) {
		case Message:
			out = append(out, fmt.Sprintf("%s %d %s", e.Stream, e.Offset, e.Data))
		case Resumed:
			out = append(out, fmt.Sprintf("resumed lost=%v", e.Lost()))
		}
	}
	return out
}

func samePositions(t *testing.T, got, want map[string]Position) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Fatalf("positions %v, want %v", got, want)
	}
}

// Envelopes are unwrapped and their positions tracked; a reconnect
// resumes from them, and what was pushed meanwhile arrives once, in
// order, before the resumed answer and the live pushes.
func TestHistoryResume(t *testing.T) {
	s := newHistoryServer(t, 100)
	r := newRecorder()
	c, err := New([]string{s.url}, r.options(fast))
	must(t, err)
	defer closeAndWait(t, c)

	hc := s.next(t)
	if _, ok := hc.query["resume"]; ok {
		t.Fatalf("first connection resumes: %v", hc.query)
	}
	hc.start("alice", "uid:alice", "all")
	r.welcome(t, s.url)
	a1 := s.push("uid:alice", "one")
	s.mu.Lock()
	st := s.streamLocked("all")
	st.last = 41 // an older stream, sent by hand: a binary push
	s.mu.Unlock()
	all := s.position("all")
	hc.raw(`{"type":"message","stream":"all","offset":41,"epoch":"` + all.Epoch + `","data_base64":"` + base64.StdEncoding.EncodeToString([]byte{0, 1, 255}) + `"}`)
	hc.direct("to the client")
	a2 := s.push("uid:alice", "two")
	r.pushed(t, Message{Data: []byte("one"), Stream: "uid:alice", Offset: 1, Epoch: a1.Epoch})
	r.pushed(t, Message{Data: []byte{0, 1, 255}, Binary: true, Stream: "all", Offset: 41, Epoch: all.Epoch})
	r.pushed(t, Message{Data: []byte("to the client")})
	r.pushed(t, Message{Data: []byte("two"), Stream: "uid:alice", Offset: 2, Epoch: a2.Epoch})
	want := map[string]Position{"uid:alice": a2, "all": {all.Epoch, 41}}
	samePositions(t, c.Positions(), want)

	// The server drops the connection; pushes go on meanwhile.
	hc.close()
	hc = s.next(t)
	samePositions(t, hc.resume, want)
	s.push("uid:alice", "three")
	s.push("uid:alice", "four")
	hc.start("alice", "uid:alice", "all")
	s.push("uid:alice", "five")
	got := r.deliveries(t, 4)
	if w := []string{"uid:alice 3 three", "uid:alice 4 four", "resumed lost=[]", "uid:alice 5 five"}; !slices.Equal(got, w) {
		t.Fatalf("after the reconnect %q, want %q", got, w)
	}
	samePositions(t, c.Positions(), map[string]Position{"uid:alice": {a1.Epoch, 5}, "all": {all.Epoch, 41}})

	// Every reconnect resumes, from the latest positions.
	hc.close()
	hc = s.next(t)
	samePositions(t, hc.resume, c.Positions())
}

// The answer names every stream; OnResumed's Lost tells those whose
// history no longer reaches the position, and the client goes on from
// the epoch and offset the answer gave. Options.Resume is the first
// connection's resume; an empty epoch replays all that is kept.
func TestHistoryNotRecovered(t *testing.T) {
	s := newHistoryServer(t, 3)
	for i := 1; i <= 5; i++ {
		s.push("group:g", fmt.Sprint("g", i)) // 1 and 2 are no longer kept
	}
	alice := s.push("uid:alice", "a1")
	r := newRecorder()
	o := r.options(fast)
	o.Resume = map[string]Position{
		"uid:alice":    {"an epoch long gone", 9},
		"group:g":      {"", 0},
		"group:secret": {"x", 1}, // not readable: not answered, kept
	}
	c, err := New([]string{s.url}, o)
	must(t, err)
	defer closeAndWait(t, c)
	o.Resume["uid:alice"] = Position{} // the client has its own copy

	hc := s.next(t)
	samePositions(t, hc.resume, map[string]Position{"uid:alice": {"an epoch long gone", 9}, "group:g": {}, "group:secret": {"x", 1}})
	hc.start("alice", "uid:alice", "group:g")
	got := r.deliveries(t, 4)
	if w := []string{"group:g 3 g3", "group:g 4 g4", "group:g 5 g5", "resumed lost=[uid:alice]"}; !slices.Equal(got, w) {
		t.Fatalf("deliveries %q, want %q", got, w)
	}
	s.push("uid:alice", "a2")
	r.pushed(t, Message{Data: []byte("a2"), Stream: "uid:alice", Offset: 2, Epoch: alice.Epoch})
	g := s.position("group:g")
	samePositions(t, c.Positions(), map[string]Position{"uid:alice": {alice.Epoch, 2}, "group:g": g, "group:secret": {"x", 1}})
}

// OnResumed gets the answer whole.
func TestHistoryResumedEvent(t *testing.T) {
	s := newHistoryServer(t, 10)
	p := s.push("all", "x")
	resumed := make(chan Resumed, 1)
	o := fast
	o.Resume = map[string]Position{"all": {p.Epoch, 0}, "uid:bob": {"old", 3}}
	o.OnResumed = func(_ *Client, r Resumed) { resumed <- r }
	c, err := New([]string{s.url}, o)
	must(t, err)
	defer closeAndWait(t, c)
	s.next(t).start("bob", "all", "uid:bob")
	select {
	case r := <-resumed:
		bob := s.position("uid:bob")
		want := Resumed{URL: s.url, Streams: map[string]StreamResumed{
			"all":     {Recovered: true, Epoch: p.Epoch, Offset: 1},
			"uid:bob": {Recovered: false, Epoch: bob.Epoch, Offset: 0},
		}}
		if !reflect.DeepEqual(r, want) {
			t.Fatalf("resumed %+v, want %+v", r, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no OnResumed")
	}
}

// A push at or below the position in its epoch is dropped (a replay that
// overlaps what was delivered); one above it is delivered and becomes
// the position, also when it skips offsets (pushes this client was left
// out of): the connection goes on, and the next one resumes from there.
func TestHistoryDuplicatesAndJumps(t *testing.T) {
	s := newHistoryServer(t, 10)
	r := newRecorder()
	c, err := New([]string{s.url}, r.options(fast))
	must(t, err)
	defer closeAndWait(t, c)

	hc := s.next(t)
	hc.welcome("g.1", "")
	hc.raw(envelopeJSON("group:x", 1, "e1", "one"))
	hc.raw(envelopeJSON("group:x", 1, "e1", "one again"))
	hc.raw(envelopeJSON("group:x", 2, "e1", "two"))
	hc.raw(envelopeJSON("group:x", 4, "e1", "four"))  // 3 left this client out
	hc.raw(envelopeJSON("group:x", 3, "e1", "three")) // below the position
	hc.raw(envelopeJSON("group:x", 4, "e1", "four again"))
	hc.raw(envelopeJSON("group:x", 7, "e1", "seven"))
	hc.raw(envelopeJSON("group:x", 9, "e2", "a new epoch")) // the history was lost: taken as it comes
	hc.raw(envelopeJSON("group:x", 10, "e2", "ten"))
	var got []string
	for len(got) < 6 {
		switch e := r.next(t).(type) {
		case Message:
			got = append(got, fmt.Sprintf("%s %d %s %s", e.Stream, e.Offset, e.Epoch, e.Data))
		case CloseEvent:
			t.Fatalf("the connection ended after %q: %+v", got, e)
		}
	}
	w := []string{"group:x 1 e1 one", "group:x 2 e1 two", "group:x 4 e1 four", "group:x 7 e1 seven", "group:x 9 e2 a new epoch", "group:x 10 e2 ten"}
	if !slices.Equal(got, w) {
		t.Fatalf("deliveries %q, want %q", got, w)
	}
	samePositions(t, c.Positions(), map[string]Position{"group:x": {"e2", 10}})
	if !c.Connected() {
		t.Fatal("not connected after an offset jump")
	}
	hc.direct("still here") // the connection still delivers
	r.pushed(t, Message{Data: []byte("still here")})
	select {
	case code := <-hc.closeBy:
		t.Fatalf("the client closed the connection (%d)", code)
	default:
	}

	// The next connection resumes from the position the jumps left.
	hc.close()
	if e := nextOf[CloseEvent](t, r); e.Code != 1000 || e.Err != nil || !e.Reconnect {
		t.Fatalf("close event %+v", e)
	}
	hc = s.next(t)
	samePositions(t, hc.resume, map[string]Position{"group:x": {"e2", 10}})
	hc.welcome("g.2", "")
	for i := 9; i <= 12; i++ { // a replay that starts one early
		hc.raw(envelopeJSON("group:x", uint64(i), "e2", fmt.Sprint("#", i)))
	}
	hc.raw(`{"type":"resumed","streams":{"group:x":{"recovered":true,"epoch":"e2","offset":12}}}`)
	hc.raw(`{"type":"resumed","streams":{}}`) // only once: then a push
	got = r.deliveries(t, 3)
	if w := []string{"group:x 11 #11", "group:x 12 #12", "resumed lost=[]"}; !slices.Equal(got, w) {
		t.Fatalf("deliveries %q, want %q", got, w)
	}
	r.pushed(t, Message{Data: []byte(`{"type":"resumed","streams":{}}`)})
	samePositions(t, c.Positions(), map[string]Position{"group:x": {"e2", 12}})
}

// A push the server could not queue for the client (its send buffer was
// full) closes the connection with 1013 before anything later: the client
// comes back to the same URL after the usual wait, resumes from its
// position, and gets the replay once: the push that closed the connection,
// what came meanwhile, and a push the client was excluded from on its old
// connection (exclusion filters live pushes only).
func TestHistoryTryAgainLater(t *testing.T) {
	s := newHistoryServer(t, 10)
	r := newRecorder()
	// The second URL must not be used: a welcomed connection comes back
	// to its own, after a 1013 too.
	c, err := New([]string{s.url, refusedURL(t)}, r.options(fast))
	must(t, err)
	defer closeAndWait(t, c)

	hc := s.next(t)
	hc.start("alice", "uid:alice")
	first := r.welcome(t, s.url)
	p1 := s.push("uid:alice", "one")
	r.pushed(t, Message{Data: []byte("one"), Stream: "uid:alice", Offset: 1, Epoch: p1.Epoch})
	s.pushTo("uid:alice", "two", hc, nil)   // its own message: left out
	s.pushTo("uid:alice", "three", nil, hc) // its buffer is full: 1013
	s.push("uid:alice", "four")             // pushed while it is away

	var e CloseEvent
	for {
		ev := r.next(t)
		if m, ok := ev.(Message); ok {
			t.Fatalf("a message %q after the 1013 close", m.Data)
		}
		if ce, ok := ev.(CloseEvent); ok {
			e = ce
			break
		}
	}
	if e.Code != closeTryAgainLater || e.Err != nil || !e.Reconnect || e.URL != s.url || e.ClientID != first.ClientID {
		t.Fatalf("close event %+v, want 1013 and a reconnect", e)
	}
	if e.Delay > fast.MinReconnectDelay {
		t.Fatalf("reconnect after %v, want the usual first wait, at most %v", e.Delay, fast.MinReconnectDelay)
	}
	if u := nextOf[string](t, r); u != s.url {
		t.Fatalf("the next attempt went to %s, want %s", u, s.url)
	}

	hc = s.next(t)
	samePositions(t, hc.resume, map[string]Position{"uid:alice": {p1.Epoch, 1}})
	hc.start("alice", "uid:alice")
	r.welcome(t, s.url)
	hc.raw(envelopeJSON("uid:alice", 4, p1.Epoch, "four again")) // a duplicate
	s.push("uid:alice", "five")
	got := r.deliveries(t, 5)
	w := []string{"uid:alice 2 two", "uid:alice 3 three", "uid:alice 4 four", "resumed lost=[]", "uid:alice 5 five"}
	if !slices.Equal(got, w) {
		t.Fatalf("after the 1013 %q, want %q", got, w)
	}
	samePositions(t, c.Positions(), map[string]Position{"uid:alice": {p1.Epoch, 5}})
}

// A server without history: every frame reaches OnMessage as it came,
// JSON that looks like the history wire included, and no resume is sent.
func TestNoHistoryUnchanged(t *testing.T) {
	s := newServer(t, "n1", serverOptions{uid: "alice"})
	r := newRecorder()
	c, err := Dial(ctx(t), []string{s.url}, r.options(fast))
	must(t, err)
	defer closeAndWait(t, c)
	w := r.welcome(t, s.url)
	frames := []string{
		`{"type":"message","data":"an app's own JSON"}`,
		`{"type":"resumed","streams":{}}`,
		`{"type":"message","stream":"","offset":1,"epoch":"e","data":"x"}`,
		`{"type":"message","stream":"s","offset":1.5,"epoch":"e","data":"x"}`,
		`{"type":"message","stream":"s","offset":1,"epoch":"e","data":"x","data_base64":""}`,
		`{"type":"message","stream":"s","offset":1,"data":"x"}`,
		`[1,2]`,
		`plain`,
	}
	for _, f := range frames {
		must(t, s.SendToUID(ctx(t), "alice", gateway.Text(f)))
	}
	for _, f := range frames {
		r.pushed(t, Message{Data: []byte(f)})
	}
	if p := c.Positions(); len(p) != 0 {
		t.Fatalf("positions %v from a server without history", p)
	}
	<-s.handshake
	must(t, s.CloseClient(ctx(t), w.ClientID))
	r.welcome(t, s.url)
	h := <-s.handshake
	if q, _ := url.ParseQuery(h.Get("X-Query")); q.Has("resume") {
		t.Fatalf("the reconnect resumes: %v", q)
	}
}

func TestParseFrame(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want frame
	}{
		{`{"type":"message","stream":"all","offset":3,"epoch":"e","data":"x"}`, frame{envelope: true, msg: Message{Data: []byte("x"), Stream: "all", Offset: 3, Epoch: "e"}}},
		{` {"epoch":"","data_base64":"AP8=","offset":1,"stream":"uid:a","type":"message","extra":1}`, frame{envelope: true, msg: Message{Data: []byte{0, 255}, Binary: true, Stream: "uid:a", Offset: 1, Epoch: ""}}},
		{`{"type":"message","data":"direct"}`, frame{envelope: true, msg: Message{Data: []byte("direct")}}},
		{`{"type":"message","data_base64":"not base64!"}`, frame{}},
		{`{"type":"message","stream":"all","offset":0,"epoch":"e","data":"x"}`, frame{}},
		{`{"type":"message","stream":null,"data":"x"}`, frame{}},
		{`{"type":"message","data":7}`, frame{}},
		{`{"type":"message"}`, frame{}},
		{`{"type":"welcome","client_id":"x"}`, frame{}},
		{`{"type":"resumed","streams":{"a":{"recovered":true,"epoch":"e","offset":2},"b":{"recovered":"yes"},"c":7}}`, frame{resumed: map[string]StreamResumed{"a": {true, "e", 2}, "b": {}}}},
		{`{"type":"resumed","streams":[]}`, frame{}},
		{`{"type":"resumed"}`, frame{}},
		{`{"type":5}`, frame{}},
		{`not json`, frame{}},
	} {
		got := parseFrame([]byte(tc.in))
		if got.envelope && got.msg.Data == nil {
			got.msg.Data = []byte{}
		}
		if tc.want.envelope && tc.want.msg.Data == nil {
			tc.want.msg.Data = []byte{}
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseFrame(%s) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// Against the real gateway: the client resumes a group it is not in yet;
// the backend joins it after connect, and the client gets what it missed
// there, then OnResumed for that group, then the live pushes.
func TestHistoryResumedAfterBind(t *testing.T) {
	h := gateway.NewMemoryHistory(gateway.MemoryHistoryOptions{Size: 100})
	s := newServer(t, "late", serverOptions{history: h})
	for i := 1; i <= 5; i++ {
		must(t, s.SendToGroup(ctx(t), "room", gateway.Text(strconv.Itoa(i))))
	}
	_, room, _, _ := h.Since(ctx(t), "group:room", gateway.Position{})
	r := newRecorder()
	o := r.options(fast)
	o.Resume = map[string]Position{"group:room": {room.Epoch, 2}}
	c, err := New([]string{s.url}, o)
	must(t, err)
	defer closeAndWait(t, c)
	w := r.welcome(t, s.url)
	if first := nextOf[Resumed](t, r); len(first.Streams) != 0 {
		t.Fatalf("at connect: %+v", first)
	}
	must(t, s.JoinGroup(ctx(t), w.ClientID, "room"))
	must(t, s.SendToGroup(ctx(t), "room", gateway.Text("6")))
	if got, want := r.deliveries(t, 5), []string{"group:room 3 3", "group:room 4 4", "group:room 5 5", "resumed lost=[]", "group:room 6 6"}; !slices.Equal(got, want) {
		t.Fatalf("after the join: %q, want %q", got, want)
	}
	samePositions(t, c.Positions(), map[string]Position{"group:room": {room.Epoch, 6}})
}
