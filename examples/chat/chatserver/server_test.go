package chatserver

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/workerman-go/workerman"
)

// The chat's protocol, spoken by WebSocket clients. The browser test in
// e2e drives the page; these pin down what the server answers.

const wait = 10 * time.Second

type server struct {
	chat   *Chat
	addr   string
	closed chan *workerman.Connection // after each OnClose returned
}

func startServer(t *testing.T) *server {
	t.Helper()
	s := &server{chat: new(Chat), closed: make(chan *workerman.Connection, 16)}
	w := s.chat.Worker("http://127.0.0.1:0")
	onClose := w.OnClose
	w.OnClose = func(c *workerman.Connection) {
		onClose(c)
		s.closed <- c
	}
	if err := w.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		w.Shutdown(ctx)
	})
	s.addr = w.Addr().String()
	return s
}

// serverClosed waits for the server's OnClose of one connection.
func (s *server) serverClosed(t *testing.T) {
	t.Helper()
	select {
	case <-s.closed:
	case <-time.After(wait):
		t.Fatal("the server never closed the connection")
	}
}

type client struct {
	t      *testing.T
	name   string
	a      *workerman.AsyncConnection
	in     chan Out
	closed chan struct{}
}

func (s *server) dial(t *testing.T, name string) *client {
	t.Helper()
	c := &client{t: t, name: name, in: make(chan Out, 64), closed: make(chan struct{})}
	c.a = workerman.NewAsyncConnection("ws://" + s.addr + "/ws")
	open := make(chan struct{})
	c.a.OnWebSocketConnect = func(*workerman.AsyncConnection, *workerman.WebSocketResponse) { close(open) }
	c.a.OnMessage = func(_ *workerman.AsyncConnection, data []byte) {
		var o Out
		if err := json.Unmarshal(data, &o); err != nil {
			o = Out{Type: "not JSON", Text: string(data)}
		}
		c.in <- o
	}
	c.a.OnClose = func(*workerman.AsyncConnection) { close(c.closed) }
	if err := c.a.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.a.Close()
		select {
		case <-c.closed:
		case <-time.After(wait):
			t.Errorf("%s: never closed", name)
		}
	})
	select {
	case <-open:
	case <-c.closed:
		t.Fatalf("%s: could not connect", name)
	case <-time.After(wait):
		t.Fatalf("%s: no handshake", name)
	}
	return c
}

func (c *client) send(in In) {
	c.t.Helper()
	b, _ := json.Marshal(in)
	if err := c.a.Send(b); err != nil {
		c.t.Fatalf("%s: send: %v", c.name, err)
	}
}

func (c *client) next() Out {
	c.t.Helper()
	select {
	case o := <-c.in:
		o.Time = 0
		for i := range o.Messages {
			o.Messages[i].Time = 0
		}
		return o
	case <-time.After(wait):
		c.t.Fatalf("%s: no message", c.name)
		return Out{}
	}
}

// expect takes the next messages and compares them, without times and
// tokens, with want.
func (c *client) expect(want ...Out) {
	c.t.Helper()
	for _, w := range want {
		got := c.next()
		got.Token = ""
		if !equal(got, w) {
			c.t.Fatalf("%s got\n\t%+v\nwant\n\t%+v", c.name, got, w)
		}
	}
}

func equal(a, b Out) bool {
	return a.Type == b.Type && a.Room == b.Room && a.Nick == b.Nick && a.Text == b.Text &&
		a.Field == b.Field && slices.Equal(a.Users, b.Users) &&
		slices.EqualFunc(a.Messages, b.Messages, equal)
}

// join joins and takes the answers up to the presence list; it returns the
// token.
func (c *client) join(room, nick string, users ...string) string {
	c.t.Helper()
	c.send(In{Type: "join", Room: room, Nick: nick})
	j := c.next()
	if j.Type != "joined" || j.Room != room || j.Nick != nick || j.Token == "" {
		c.t.Fatalf("%s: joining %s as %s: got %+v", c.name, room, nick, j)
	}
	if h := c.next(); h.Type != "history" {
		c.t.Fatalf("%s: got %+v, want the history", c.name, h)
	}
	c.expect(
		Out{Type: "notice", Room: room, Text: nick + " joined"},
		Out{Type: "presence", Room: room, Users: users},
	)
	return j.Token
}

func TestRefusedJoinKeepsTheRoom(t *testing.T) {
	s := startServer(t)
	alice := s.dial(t, "alice")
	bob := s.dial(t, "bob")
	alice.join("lobby", "alice", "alice")
	bob.join("lobby", "bob", "alice", "bob")
	alice.expect(
		Out{Type: "notice", Room: "lobby", Text: "bob joined"},
		Out{Type: "presence", Room: "lobby", Users: []string{"alice", "bob"}},
	)

	for _, tc := range []struct {
		name       string
		join       In
		field, msg string
	}{
		{"bad room name", In{Room: "no spaces", Nick: "alice"}, "room", "a room name has 1 to 32 letters, digits, - or _"},
		{"blank nickname", In{Room: "other", Nick: "  "}, "nick", "a nickname has 1 to 24 characters"},
		{"nickname in use", In{Room: "other", Nick: "bob"}, "nick", "the nickname bob is in use: pick another"},
		{"nickname in use in another case", In{Room: "lobby", Nick: "BoB"}, "nick", "the nickname BoB is in use: pick another"},
		{"someone else's token", In{Room: "other", Nick: "bob", Token: "guess"}, "nick", "the nickname bob is in use: pick another"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alice.t = t
			join := tc.join
			join.Type = "join"
			alice.send(join)
			alice.expect(Out{Type: "refused", Room: "lobby", Nick: "alice", Field: tc.field, Text: tc.msg})
			if got := s.chat.RoomOf("alice"); got != "lobby" {
				t.Fatalf("the server has alice in %q", got)
			}
		})
	}
	alice.t = t

	// Someone in no room is told so.
	other := s.dial(t, "other")
	other.send(In{Type: "join", Room: "other", Nick: "ALICE"})
	other.expect(Out{Type: "refused", Field: "nick", Text: "the nickname ALICE is in use: pick another"})

	// Bob heard nothing of it: his next message is alice's.
	alice.send(In{Type: "say", Text: "still here"})
	bob.expect(Out{Type: "message", Room: "lobby", Nick: "alice", Text: "still here"})
}

func TestJoinTheSameRoomAgain(t *testing.T) {
	s := startServer(t)
	alice := s.dial(t, "alice")
	bob := s.dial(t, "bob")
	token := alice.join("lobby", "alice", "alice")
	bob.join("lobby", "bob", "alice", "bob")
	alice.expect(
		Out{Type: "notice", Room: "lobby", Text: "bob joined"},
		Out{Type: "presence", Room: "lobby", Users: []string{"alice", "bob"}},
	)

	alice.send(In{Type: "join", Room: "lobby", Nick: "alice"})
	if j := alice.next(); j.Type != "joined" || j.Room != "lobby" || j.Nick != "alice" || j.Token != token {
		t.Fatalf("joining again: got %+v", j)
	}
	alice.send(In{Type: "say", Text: "hello"})
	hello := Out{Type: "message", Room: "lobby", Nick: "alice", Text: "hello"}
	alice.expect(hello)
	bob.expect(hello)

	// Another nickname in the same room is a rename, the own one in
	// another case included.
	alice.send(In{Type: "join", Room: "lobby", Nick: "Alice"})
	alice.expect(Out{Type: "joined", Room: "lobby", Nick: "Alice"})
	renamed := []Out{
		{Type: "notice", Room: "lobby", Text: "alice is now Alice"},
		{Type: "presence", Room: "lobby", Users: []string{"Alice", "bob"}},
	}
	alice.expect(renamed...)
	bob.expect(renamed...)
	if got := s.chat.RoomOf("ALICE"); got != "lobby" {
		t.Fatalf("the server has Alice in %q", got)
	}

	// A move keeps the token and frees the old nickname.
	alice.send(In{Type: "join", Room: "other", Nick: "carol"})
	bob.expect(
		Out{Type: "notice", Room: "lobby", Text: "Alice left"},
		Out{Type: "presence", Room: "lobby", Users: []string{"bob"}},
	)
	if j := alice.next(); j.Type != "joined" || j.Room != "other" || j.Nick != "carol" || j.Token != token {
		t.Fatalf("moving: got %+v", j)
	}
	if got := s.chat.RoomOf("alice"); got != "" {
		t.Fatalf("the old nickname is still in %q", got)
	}
}

// A page whose connection died unnoticed comes back on a new one: with the
// token it takes the old connection's place, and the room never hears that
// it left.
func TestNewConnectionTakesThePlaceOfTheOld(t *testing.T) {
	s := startServer(t)
	old := s.dial(t, "alice")
	bob := s.dial(t, "bob")
	token := old.join("lobby", "alice", "alice")
	bob.join("lobby", "bob", "alice", "bob")
	old.send(In{Type: "say", Text: "one"})
	one := Out{Type: "message", Room: "lobby", Nick: "alice", Text: "one"}
	bob.expect(one)

	again := s.dial(t, "alice again")
	again.send(In{Type: "join", Room: "lobby", Nick: "alice"})
	again.expect(Out{Type: "refused", Field: "nick", Text: "the nickname alice is in use: pick another"})

	again.send(In{Type: "join", Room: "lobby", Nick: "alice", Token: token})
	if j := again.next(); j.Type != "joined" || j.Room != "lobby" || j.Nick != "alice" || j.Token != token {
		t.Fatalf("taking over: got %+v", j)
	}
	again.expect(
		Out{Type: "history", Room: "lobby", Messages: []Out{one}},
		Out{Type: "presence", Room: "lobby", Users: []string{"alice", "bob"}},
	)
	select {
	case <-old.closed:
	case <-time.After(wait):
		t.Fatal("the old connection is still open")
	}
	s.serverClosed(t)

	again.send(In{Type: "say", Text: "two"})
	bob.expect(Out{Type: "message", Room: "lobby", Nick: "alice", Text: "two"})
	if got := s.chat.RoomOf("alice"); got != "lobby" {
		t.Fatalf("the server has alice in %q", got)
	}
}

func TestClosingFreesTheNickname(t *testing.T) {
	s := startServer(t)
	alice := s.dial(t, "alice")
	bob := s.dial(t, "bob")
	alice.join("lobby", "alice", "alice")
	bob.join("lobby", "bob", "alice", "bob")
	alice.a.Close()
	s.serverClosed(t)
	bob.expect(
		Out{Type: "notice", Room: "lobby", Text: "alice left"},
		Out{Type: "presence", Room: "lobby", Users: []string{"bob"}},
	)
	if got := s.chat.RoomOf("alice"); got != "" {
		t.Fatalf("alice, gone, is in %q", got)
	}
	newcomer := s.dial(t, "newcomer")
	newcomer.join("lobby", "Alice", "Alice", "bob")
}

// Two workers of one Chat are one chat: their gateways are the nodes of one
// hub, so a room, its who-is-online list and a nickname span both.
func TestTwoWorkersOneChat(t *testing.T) {
	ch := new(Chat)
	var servers []*server
	for range 2 {
		s := &server{chat: ch, closed: make(chan *workerman.Connection, 16)}
		w := ch.Worker("http://127.0.0.1:0")
		if err := w.Listen(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			w.Shutdown(ctx)
		})
		s.addr = w.Addr().String()
		servers = append(servers, s)
	}
	alice := servers[0].dial(t, "alice")
	bob := servers[1].dial(t, "bob")
	alice.join("lobby", "alice", "alice")
	bob.join("lobby", "bob", "alice", "bob")
	alice.expect(
		Out{Type: "notice", Room: "lobby", Text: "bob joined"},
		Out{Type: "presence", Room: "lobby", Users: []string{"alice", "bob"}},
	)
	bob.send(In{Type: "say", Text: "across"})
	across := Out{Type: "message", Room: "lobby", Nick: "bob", Text: "across"}
	bob.expect(across)
	alice.expect(across)

	other := servers[1].dial(t, "other")
	other.send(In{Type: "join", Room: "other", Nick: "Alice"})
	other.expect(Out{Type: "refused", Field: "nick", Text: "the nickname Alice is in use: pick another"})
}
