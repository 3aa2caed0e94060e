// Package chatserver is the chat of examples/chat: one http:// worker that
// serves the page and, on /ws of the same port, the WebSocket it talks to.
// Rooms, nicknames, a who-is-online list and the last 50 messages of each
// room for late joiners.
//
// The protocol is JSON over WebSocket. The page sends
//
//	{"type":"join","room":"lobby","nick":"alice"}
//	{"type":"join","room":"lobby","nick":"alice","token":"…"}   (after a reconnect)
//	{"type":"say","text":"hello"}
//	{"type":"leave"}
//
// and receives "joined", "refused", "history", "message", "presence",
// "notice" and "error" messages (see the Out type).
//
// Every join is answered, with "joined" or "refused", and both name the room
// the connection is in afterwards: a refused join leaves it where it was, so
// the page and the server never disagree about the room. A nickname is held
// by one person at a time, compared without regard to case. Joining the room
// one is already in changes nothing (with another nickname it is a rename).
//
// "joined" carries a token. A page that lost its connection sends it with its
// next join: the server may not have noticed yet that the old connection is
// gone (a dropped network closes nothing until the pings go unanswered), and
// the token shows that the nickname's holder is the same page, which then
// takes the old connection's place instead of being refused its own name.
package chatserver

import (
	"crypto/rand"
	"embed"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/workerman-go/workerman"
)

//go:embed static
var static embed.FS

// HistorySize is how many messages of a room late joiners receive.
const HistorySize = 50

// In is what the page sends.
type In struct {
	Type  string `json:"type"`
	Room  string `json:"room,omitempty"`
	Nick  string `json:"nick,omitempty"`
	Text  string `json:"text,omitempty"`
	Token string `json:"token,omitempty"` // join: the token of the last "joined"
}

// Out is what the server sends.
type Out struct {
	Type     string   `json:"type"`
	Room     string   `json:"room,omitempty"` // refused: the room the connection is still in
	Nick     string   `json:"nick,omitempty"`
	Text     string   `json:"text,omitempty"`
	Time     int64    `json:"ts,omitempty"` // Unix milliseconds
	Users    []string `json:"users,omitempty"`
	Messages []Out    `json:"messages,omitempty"`
	Token    string   `json:"token,omitempty"` // joined: resumes the membership on a new connection
	Field    string   `json:"field,omitempty"` // refused: "nick" or "room", the one to change
}

// A member is a person in a room. It stays the same value from the first
// join to leaving or closing, across room changes, renames and a move to a
// new connection.
type member struct {
	nick, room, token string
}

type room struct {
	conns   map[*workerman.Connection]*member
	history []Out
}

// Chat holds the rooms; the zero value is an empty chat. Its methods run in
// connection callbacks, on many goroutines at once: one mutex guards
// everything, and sends happen under it so that every member sees the
// messages of a room in the same order (Send never blocks).
type Chat struct {
	mu      sync.Mutex
	rooms   map[string]*room
	members map[*workerman.Connection]*member
	nicks   map[string]*workerman.Connection // nickKey → the member's connection
}

// New returns a worker that serves a new, empty chat on listen (an http://
// URI).
func New(listen string) *workerman.Worker {
	return new(Chat).Worker(listen)
}

// Worker returns a worker that serves ch on listen (an http:// URI).
func (ch *Chat) Worker(listen string) *workerman.Worker {
	ch.mu.Lock()
	if ch.rooms == nil {
		ch.rooms = map[string]*room{}
		ch.members = map[*workerman.Connection]*member{}
		ch.nicks = map[string]*workerman.Connection{}
	}
	ch.mu.Unlock()
	w := workerman.NewWorker(listen)
	w.Name = "chat"
	w.WebSocket.Path = "/ws"
	w.WebSocket.PingInterval = 25 * time.Second
	w.WebSocket.PingNotResponseLimit = 2
	w.OnRequest = serveStatic
	w.OnMessage = ch.onMessage
	w.OnClose = ch.leave
	return w
}

// RoomOf returns the room of the person called nick (in any case), or ""
// when nobody of that name is in a room. It is safe from any goroutine.
func (ch *Chat) RoomOf(nick string) string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if c := ch.nicks[nickKey(nick)]; c != nil {
		return ch.members[c].room
	}
	return ""
}

func serveStatic(c *workerman.Connection, r *workerman.Request) {
	name := strings.TrimPrefix(r.Path(), "/")
	if name == "" {
		name = "index.html"
	}
	body, err := static.ReadFile("static/" + name)
	if err != nil || strings.Contains(name, "..") {
		c.SendResponse(workerman.NewResponse(http.StatusNotFound, []byte("not found")))
		return
	}
	ct := "text/html; charset=utf-8"
	if strings.HasSuffix(name, ".js") {
		ct = "text/javascript; charset=utf-8"
	}
	c.SendResponse(workerman.NewResponse(http.StatusOK, body).
		WithHeader("Content-Type", ct).
		WithHeader("Cache-Control", "no-cache"))
}

var roomName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

func (ch *Chat) onMessage(c *workerman.Connection, data []byte) {
	var in In
	if err := json.Unmarshal(data, &in); err != nil {
		send(c, Out{Type: "error", Text: "messages are JSON objects"})
		return
	}
	switch in.Type {
	case "join":
		nick := strings.TrimSpace(in.Nick)
		if nick == "" || utf8.RuneCountInString(nick) > 24 {
			ch.refuse(c, "nick", "a nickname has 1 to 24 characters")
			return
		}
		if !roomName.MatchString(in.Room) {
			ch.refuse(c, "room", "a room name has 1 to 32 letters, digits, - or _")
			return
		}
		ch.join(c, in.Room, nick, in.Token)
	case "say":
		text := strings.TrimSpace(in.Text)
		if text == "" {
			return
		}
		if utf8.RuneCountInString(text) > 2000 {
			send(c, Out{Type: "error", Text: "messages have at most 2000 characters"})
			return
		}
		ch.say(c, text)
	case "leave":
		ch.leave(c)
	default:
		send(c, Out{Type: "error", Text: "unknown message type " + in.Type})
	}
}

func (ch *Chat) join(c *workerman.Connection, name, nick, token string) {
	ch.mu.Lock()
	replaced := ch.joinLocked(c, name, nick, token)
	ch.mu.Unlock()
	if replaced != nil {
		// Outside the lock: its OnClose takes it. Having no member any
		// more, it says nothing, as the person never left.
		replaced.Close()
	}
}

// joinLocked answers a join of c. It returns the connection c took the
// place of, to be closed.
func (ch *Chat) joinLocked(c *workerman.Connection, name, nick, token string) (replaced *workerman.Connection) {
	if holder := ch.nicks[nickKey(nick)]; holder != nil && holder != c {
		old := ch.members[holder]
		if token == "" || token != old.token || ch.members[c] != nil {
			ch.refuseLocked(c, "nick", "the nickname "+nick+" is in use: pick another")
			return nil
		}
		delete(ch.members, holder)
		delete(ch.rooms[old.room].conns, holder)
		ch.members[c] = old
		ch.rooms[old.room].conns[c] = old
		ch.nicks[nickKey(old.nick)] = c
		replaced = holder
	}

	m := ch.members[c]
	switch {
	case m == nil:
		m = &member{nick: nick, token: rand.Text()}
		ch.members[c] = m
		ch.nicks[nickKey(nick)] = c
		ch.enterLocked(c, m, name)
	case m.room != name:
		ch.exitLocked(c, m)
		ch.renameLocked(c, m, nick)
		ch.enterLocked(c, m, name)
	default:
		// Already there: no left and joined, and the page keeps its log.
		old := m.nick
		ch.renameLocked(c, m, nick)
		r := ch.rooms[name]
		send(c, joined(m))
		if replaced != nil {
			// A new connection has missed what the old one did not get.
			send(c, Out{Type: "history", Room: name, Messages: slices.Clone(r.history)})
			send(c, Out{Type: "presence", Room: name, Users: users(r)})
		}
		if old != nick {
			ch.broadcastLocked(r, Out{Type: "notice", Room: name, Text: old + " is now " + nick, Time: now()})
			ch.broadcastLocked(r, Out{Type: "presence", Room: name, Users: users(r)})
		}
	}
	return replaced
}

func joined(m *member) Out {
	return Out{Type: "joined", Room: m.room, Nick: m.nick, Token: m.token}
}

// enterLocked puts c, out of any room, in room name.
func (ch *Chat) enterLocked(c *workerman.Connection, m *member, name string) {
	r := ch.rooms[name]
	if r == nil {
		r = &room{conns: map[*workerman.Connection]*member{}}
		ch.rooms[name] = r
	}
	r.conns[c] = m
	m.room = name
	send(c, joined(m))
	send(c, Out{Type: "history", Room: name, Messages: slices.Clone(r.history)})
	ch.broadcastLocked(r, Out{Type: "notice", Room: name, Text: m.nick + " joined", Time: now()})
	ch.broadcastLocked(r, Out{Type: "presence", Room: name, Users: users(r)})
}

// exitLocked takes c out of its room; it keeps its member and nickname.
func (ch *Chat) exitLocked(c *workerman.Connection, m *member) {
	r := ch.rooms[m.room]
	delete(r.conns, c)
	name := m.room
	m.room = ""
	if len(r.conns) == 0 && len(r.history) == 0 {
		delete(ch.rooms, name)
		return
	}
	ch.broadcastLocked(r, Out{Type: "notice", Room: name, Text: m.nick + " left", Time: now()})
	ch.broadcastLocked(r, Out{Type: "presence", Room: name, Users: users(r)})
}

func (ch *Chat) renameLocked(c *workerman.Connection, m *member, nick string) {
	delete(ch.nicks, nickKey(m.nick))
	m.nick = nick
	ch.nicks[nickKey(nick)] = c
}

func (ch *Chat) refuse(c *workerman.Connection, field, text string) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.refuseLocked(c, field, text)
}

// refuseLocked answers a join that changes nothing, naming the room and
// nickname c still has (none when it is in no room).
func (ch *Chat) refuseLocked(c *workerman.Connection, field, text string) {
	o := Out{Type: "refused", Field: field, Text: text}
	if m := ch.members[c]; m != nil {
		o.Room, o.Nick = m.room, m.nick
	}
	send(c, o)
}

func (ch *Chat) say(c *workerman.Connection, text string) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	m := ch.members[c]
	if m == nil {
		send(c, Out{Type: "error", Text: "join a room first"})
		return
	}
	r := ch.rooms[m.room]
	msg := Out{Type: "message", Room: m.room, Nick: m.nick, Text: text, Time: now()}
	r.history = append(r.history, msg)
	if len(r.history) > HistorySize {
		r.history = slices.Delete(r.history, 0, len(r.history)-HistorySize)
	}
	ch.broadcastLocked(r, msg)
}

// leave takes c out of its room and frees its nickname; it is also OnClose.
func (ch *Chat) leave(c *workerman.Connection) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	m := ch.members[c]
	if m == nil {
		return
	}
	ch.exitLocked(c, m)
	delete(ch.members, c)
	delete(ch.nicks, nickKey(m.nick))
}

func (ch *Chat) broadcastLocked(r *room, o Out) {
	b, _ := json.Marshal(o)
	for c := range r.conns {
		c.Send(b)
	}
}

func users(r *room) []string {
	var u []string
	for _, m := range r.conns {
		u = append(u, m.nick)
	}
	slices.Sort(u)
	return u
}

// nickKey is the same for two nicknames exactly when strings.EqualFold
// holds: every letter becomes the smallest of its case variants.
func nickKey(nick string) string {
	return strings.Map(func(r rune) rune {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return least
	}, nick)
}

func send(c *workerman.Connection, o Out) {
	b, _ := json.Marshal(o)
	c.Send(b)
}

func now() int64 { return time.Now().UnixMilli() }
