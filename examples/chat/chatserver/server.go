// Package chatserver is the chat of examples/chat: one http:// worker that
// serves the page and, on /ws of the same port, the WebSocket it talks to.
// Rooms, nicknames, a who-is-online list and the last 50 messages of each
// room for late joiners.
//
// The protocol is JSON over WebSocket. The page sends
//
//	{"type":"join","room":"lobby","nick":"alice"}
//	{"type":"say","text":"hello"}
//	{"type":"leave"}
//
// and receives "joined", "history", "message", "presence", "notice" and
// "error" messages (see the Out type).
package chatserver

import (
	"embed"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/workerman-go/workerman"
)

//go:embed static
var static embed.FS

// HistorySize is how many messages of a room late joiners receive.
const HistorySize = 50

// In is what the page sends.
type In struct {
	Type string `json:"type"`
	Room string `json:"room,omitempty"`
	Nick string `json:"nick,omitempty"`
	Text string `json:"text,omitempty"`
}

// Out is what the server sends.
type Out struct {
	Type     string   `json:"type"`
	Room     string   `json:"room,omitempty"`
	Nick     string   `json:"nick,omitempty"`
	Text     string   `json:"text,omitempty"`
	Time     int64    `json:"ts,omitempty"` // Unix milliseconds
	Users    []string `json:"users,omitempty"`
	Messages []Out    `json:"messages,omitempty"`
}

type member struct {
	nick, room string
}

type room struct {
	conns   map[*workerman.Connection]string // connection → nick
	history []Out
}

// Chat holds the rooms. Its methods run in connection callbacks, on many
// goroutines at once: one mutex guards everything, and sends happen under it
// so that every member sees the messages of a room in the same order
// (Send never blocks).
type Chat struct {
	mu      sync.Mutex
	rooms   map[string]*room
	members map[*workerman.Connection]*member
}

// New returns a worker that serves the chat on listen (an http:// URI).
func New(listen string) *workerman.Worker {
	ch := &Chat{rooms: map[string]*room{}, members: map[*workerman.Connection]*member{}}
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
			send(c, Out{Type: "error", Text: "a nickname has 1 to 24 characters"})
			return
		}
		if !roomName.MatchString(in.Room) {
			send(c, Out{Type: "error", Text: "a room name has 1 to 32 letters, digits, - or _"})
			return
		}
		ch.join(c, in.Room, nick)
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

func (ch *Chat) join(c *workerman.Connection, name, nick string) {
	ch.leave(c)
	ch.mu.Lock()
	defer ch.mu.Unlock()
	r := ch.rooms[name]
	if r == nil {
		r = &room{conns: map[*workerman.Connection]string{}}
		ch.rooms[name] = r
	}
	r.conns[c] = nick
	ch.members[c] = &member{nick: nick, room: name}
	send(c, Out{Type: "joined", Room: name, Nick: nick})
	send(c, Out{Type: "history", Room: name, Messages: slices.Clone(r.history)})
	ch.broadcastLocked(r, Out{Type: "notice", Room: name, Text: nick + " joined", Time: now()})
	ch.broadcastLocked(r, Out{Type: "presence", Room: name, Users: users(r)})
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

// leave takes c out of its room; it is also OnClose.
func (ch *Chat) leave(c *workerman.Connection) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	m := ch.members[c]
	if m == nil {
		return
	}
	delete(ch.members, c)
	r := ch.rooms[m.room]
	delete(r.conns, c)
	if len(r.conns) == 0 && len(r.history) == 0 {
		delete(ch.rooms, m.room)
		return
	}
	ch.broadcastLocked(r, Out{Type: "notice", Room: m.room, Text: m.nick + " left", Time: now()})
	ch.broadcastLocked(r, Out{Type: "presence", Room: m.room, Users: users(r)})
}

func (ch *Chat) broadcastLocked(r *room, o Out) {
	b, _ := json.Marshal(o)
	for c := range r.conns {
		c.Send(b)
	}
}

func users(r *room) []string {
	var u []string
	for _, nick := range r.conns {
		u = append(u, nick)
	}
	slices.Sort(u)
	return u
}

func send(c *workerman.Connection, o Out) {
	b, _ := json.Marshal(o)
	c.Send(b)
}

func now() int64 { return time.Now().UnixMilli() }
