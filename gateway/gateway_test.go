package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/workerman-go/workerman/internal/leakcheck"
)

func TestSingleNode(t *testing.T) {
	leakcheck.Check(t)
	n := newNode(t, "n1", nil, "websocket://127.0.0.1:0")
	c := ctx(t)
	a1, a2, b := dialWS(t, n), dialWS(t, n), dialWS(t, n)
	for _, cl := range []*wsClient{a1, a2, b} {
		if ev := wait(t, n.events, "OnConnect"); !strings.HasPrefix(ev, "connect n1.") {
			t.Fatalf("event %q", ev)
		}
		if NodeOf(cl.id) != "n1" {
			t.Fatalf("client ID %q does not name its node", cl.id)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// A uid holds many connections (two tabs of alice).
	must(n.BindUID(c, a1.id, "alice"))
	must(n.BindUID(c, a2.id, "alice"))
	must(n.BindUID(c, b.id, "bob"))
	must(n.SendToUID(c, "alice", Text("hi alice")))
	a1.expect(t, "hi alice")
	a2.expect(t, "hi alice")
	b.expectNothing(t, n.Gateway)
	if ids, _ := n.ClientIDsByUID(c, "alice"); !slices.Equal(ids, sorted(a1.id, a2.id)) {
		t.Fatalf("ClientIDsByUID(alice) = %v", ids)
	}
	if uid, _ := n.UIDByClientID(c, b.id); uid != "bob" {
		t.Fatalf("UIDByClientID = %q", uid)
	}
	// Binding again replaces the uid.
	must(n.BindUID(c, b.id, "robert"))
	if on, _ := n.IsUIDOnline(c, "bob"); on {
		t.Fatal("bob still online after rebinding to robert")
	}
	if k, _ := n.UIDCount(c); k != 2 {
		t.Fatalf("UIDCount = %d, want 2 (alice, robert)", k)
	}
	// Groups, with exclusion, in text and binary.
	must(n.JoinGroup(c, a1.id, "room"))
	must(n.JoinGroup(c, b.id, "room"))
	must(n.JoinGroup(c, b.id, "other"))
	must(n.SendToGroup(c, "room", Binary([]byte{0xff, 0}), b.id))
	if f := wait(t, a1.msgs, "the group push"); f.data != "\xff\x00" || !f.binary {
		t.Fatalf("group push %+v", f)
	}
	b.expectNothing(t, n.Gateway)
	a2.expectNothing(t, n.Gateway)
	if l, _ := n.GroupClientIDs(c, "room"); !slices.Equal(l, sorted(a1.id, b.id)) {
		t.Fatalf("GroupClientIDs = %v", l)
	}
	if l, _ := n.GroupUIDs(c, "room"); !slices.Equal(l, []string{"alice", "robert"}) {
		t.Fatalf("GroupUIDs = %v", l)
	}
	if k, _ := n.GroupClientCount(c, "room"); k != 2 {
		t.Fatalf("GroupClientCount = %d", k)
	}
	if l, _ := n.Groups(c); !slices.Equal(l, []string{"other", "room"}) {
		t.Fatalf("Groups = %v", l)
	}
	must(n.SendToAll(c, Text("all"), a2.id))
	a1.expect(t, "all")
	b.expect(t, "all")
	a2.expectNothing(t, n.Gateway)
	must(n.LeaveGroup(c, b.id, "room"))
	must(n.SendToGroup(c, "room", Text("room only")))
	a1.expect(t, "room only")
	b.expectNothing(t, n.Gateway)
	must(n.Ungroup(c, "room"))
	if l, _ := n.Groups(c); !slices.Equal(l, []string{"other"}) {
		t.Fatalf("Groups after Ungroup = %v", l)
	}
	must(n.SendToGroup(c, "room", Text("nobody")))
	a1.expectNothing(t, n.Gateway)
	// UnbindUID only removes the uid the client has.
	must(n.UnbindUID(c, a2.id, "bob"))
	if uid, _ := n.UIDByClientID(c, a2.id); uid != "alice" {
		t.Fatalf("UnbindUID of another uid changed it to %q", uid)
	}
	must(n.UnbindUID(c, a2.id, "alice"))
	if ids, _ := n.ClientIDsByUID(c, "alice"); !slices.Equal(ids, []string{a1.id}) {
		t.Fatalf("ClientIDsByUID(alice) after unbind = %v", ids)
	}
	// Sessions: set replaces, update merges top-level keys.
	must(n.SetSession(c, a1.id, map[string]any{"name": "Alice", "n": 1}))
	must(n.UpdateSession(c, a1.id, map[string]any{"n": 2, "room": "x"}))
	s, err := n.Session(c, a1.id)
	must(err)
	if s["name"] != "Alice" || s["n"] != 2.0 || s["room"] != "x" || len(s) != 3 {
		t.Fatalf("session %v", s)
	}
	must(n.SetSession(c, a1.id, map[string]any{"only": true}))
	if s, _ := n.Session(c, a1.id); len(s) != 1 || s["only"] != true {
		t.Fatalf("session after SetSession %v", s)
	}
	if err := n.SetSession(c, a1.id, map[string]any{"f": func() {}}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("a session value that is not JSON: %v", err)
	}
	// Bad arguments.
	if err := n.SendToClient(c, "n1.nope.1", Text("x")); !errors.Is(err, ErrClientNotFound) {
		t.Fatalf("unknown client: %v", err)
	}
	if err := n.SendToClient(c, "not an id", Text("x")); !errors.Is(err, ErrClientNotFound) {
		t.Fatalf("malformed client ID: %v", err)
	}
	if err := n.SendToUID(c, "alice", Message{Data: []byte{0xff}}); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("text that is not UTF-8: %v", err)
	}
	if err := n.BindUID(c, a1.id, ""); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("empty uid: %v", err)
	}
	if err := n.JoinGroup(c, a1.id, strings.Repeat("g", MaxKeyLen+1)); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("a group name over MaxKeyLen: %v", err)
	}
	if k, _ := n.ClientCount(c); k != 3 {
		t.Fatalf("ClientCount = %d", k)
	}
	// CloseClient sends the final message, then a 1000 close; every
	// index forgets the client and OnClose reports what it was.
	must(n.CloseClient(c, b.id, Text("bye")))
	b.expect(t, "bye")
	if code := wait(t, b.closed, "the close frame"); code != 1000 {
		t.Fatalf("close code %d", code)
	}
	if ev := wait(t, n.events, "OnClose"); ev != "close "+b.id+" robert [other]" {
		t.Fatalf("event %q", ev)
	}
	if on, _ := n.IsOnline(c, b.id); on {
		t.Fatal("closed client online")
	}
	if l, _ := n.Groups(c); len(l) != 0 {
		t.Fatalf("Groups after the last member closed = %v", l)
	}
	if k, _ := n.UIDCount(c); k != 1 {
		t.Fatalf("UIDCount = %d, want 1 (alice)", k)
	}
	if k, _ := n.ClientCount(c); k != 2 {
		t.Fatalf("ClientCount = %d", k)
	}
	if err := n.JoinGroup(c, b.id, "room"); !errors.Is(err, ErrClientNotFound) {
		t.Fatalf("JoinGroup of a closed client: %v", err)
	}
	// What clients send reaches OnMessage with their ID and type.
	a1.SendString("from a1")
	if ev := wait(t, n.events, "OnMessage"); ev != "message "+a1.id+" text from a1" {
		t.Fatalf("event %q", ev)
	}
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

// A client that never reads fills its send buffer: the pushes to it are
// dropped and counted, and the others get every one of them.
func TestClientThatNeverReads(t *testing.T) {
	leakcheck.Check(t)
	n := newNode(t, "n1", nil, "websocket://127.0.0.1:0")
	c := ctx(t)
	reader := dialWS(t, n)
	stuck := dialStuck(t, n)
	n.Connection(stuck).SetMaxSendBufferSize(64 << 10)
	for _, id := range []string{reader.id, stuck} {
		if err := n.JoinGroup(c, id, "g"); err != nil {
			t.Fatal(err)
		}
	}
	big := strings.Repeat("x", 32<<10)
	const pushes = 200 // 6.4 MB: far over any socket buffer
	for i := range pushes {
		if err := n.SendToGroup(c, "g", Text(fmt.Sprintf("%d %s", i, big))); err != nil {
			t.Fatal(err)
		}
		// The reader keeps up: each push arrives, in order.
		if f := wait(t, reader.msgs, "push"); !strings.HasPrefix(f.data, fmt.Sprintf("%d ", i)) {
			t.Fatalf("push %d: got %.20q", i, f.data)
		}
	}
	st := n.Stats()
	if st.Dropped == 0 || st.Deliveries+st.Dropped != 2*pushes {
		t.Fatalf("stats %+v: want drops for the stuck client and %d attempts in all", st, 2*pushes)
	}
	if st.Deliveries < pushes {
		t.Fatalf("stats %+v: the reader's %d deliveries are not all counted", st, pushes)
	}
	if ok, _ := n.IsOnline(c, stuck); !ok {
		t.Fatal("the stuck client was disconnected: it should only lose messages")
	}
}

// dialStuck opens a WebSocket client that reads its welcome and then never
// reads again; it returns its client ID.
func dialStuck(t *testing.T, n *node) string {
	t.Helper()
	conn, br, _, err := ws.Dial(context.Background(), "ws://"+n.addr+"/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var r io.Reader = conn
	if br != nil {
		r = io.MultiReader(br, conn)
	}
	data, err := wsutil.ReadServerText(struct {
		io.Reader
		io.Writer
	}{bufio.NewReader(r), conn})
	if err != nil {
		t.Fatal(err)
	}
	var w struct {
		ClientID string `json:"client_id"`
	}
	if json.Unmarshal(data, &w) != nil || w.ClientID == "" {
		t.Fatalf("welcome %q", data)
	}
	return w.ClientID
}

// Clients that vanish abruptly (a reset, no close frame) leave every
// answer.
func TestCountsAfterAbruptDisconnects(t *testing.T) {
	leakcheck.Check(t)
	n := newNode(t, "n1", nil, "websocket://127.0.0.1:0")
	c := ctx(t)
	stay := dialWS(t, n)
	wait(t, n.events, "OnConnect")
	if err := n.BindUID(c, stay.id, "stay"); err != nil {
		t.Fatal(err)
	}
	var gone []string
	for i := range 5 {
		conn, _, _, err := ws.Dial(context.Background(), "ws://"+n.addr+"/")
		if err != nil {
			t.Fatal(err)
		}
		ev := wait(t, n.events, "OnConnect")
		id := strings.TrimPrefix(ev, "connect ")
		must(t, n.BindUID(c, id, fmt.Sprintf("u%d", i)))
		must(t, n.JoinGroup(c, id, "room"))
		gone = append(gone, id)
		conn.(*net.TCPConn).SetLinger(0) // close with an RST
		conn.Close()
		if ev := wait(t, n.events, "OnClose"); ev != fmt.Sprintf("close %s u%d [room]", id, i) {
			t.Fatalf("event %q", ev)
		}
	}
	if k, _ := n.ClientCount(c); k != 1 {
		t.Fatalf("ClientCount %d, want 1", k)
	}
	if k, _ := n.UIDCount(c); k != 1 {
		t.Fatalf("UIDCount %d, want 1", k)
	}
	if l, _ := n.Groups(c); len(l) != 0 {
		t.Fatalf("Groups %v", l)
	}
	for _, id := range gone {
		if on, _ := n.IsOnline(c, id); on {
			t.Fatalf("%s still online", id)
		}
	}
	if st := n.Stats(); st.Clients != 1 || st.UIDs != 1 || st.Groups != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
