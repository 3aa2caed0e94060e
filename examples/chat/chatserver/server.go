// Package chatserver is the chat of examples/chat: one http:// worker that
// serves the page and, on /ws of the same port, the WebSocket it talks to.
// Rooms, nicknames, a who-is-online list and the last 50 messages of each
// room for late joiners.
//
// It is built on package gateway, GatewayWorker's model: every WebSocket
// connection is a client, a room is a group and a nickname is the client's
// uid. Who is in a room is the gateway's answer (GroupUIDs), and what is
// said in a room is one SendToGroup. The chat itself keeps only what the
// gateway has no notion of: the history of each room, and who holds each
// nickname, because a nickname is one person's in any case ("Alice" and
// "ALICE" are the same name) while uids are compared as written.
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
	"context"
	"crypto/rand"
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/gateway"
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

// A member holds a nickname: the person, from the first join to leaving or
// closing, across room changes, renames and a move to a new connection.
// Its client is bound to the nickname as uid and is in the group of its
// room; room is kept here too because it must outlive the client: when a
// connection has gone from the gateway but its OnClose has not run yet, a
// page coming back with the token takes the member over, room and all.
type member struct {
	client, nick, room, token string
}

// Chat holds the nicknames and the rooms' histories; the zero value is an
// empty chat. Its methods run in the gateway's callbacks, on many
// goroutines at once: one mutex guards the chat, and every message to a
// room is sent under it, so that every member sees the messages of a room
// in the same order and a joiner's history is exactly what preceded its
// "joined" (the gateway's sends never block).
type Chat struct {
	mu      sync.Mutex
	hub     *gateway.Hub       // the gateways of ch's workers, one per worker
	nodes   int                // gateways made, to name the next one
	nicks   map[string]*member // nickKey → holder
	history map[string][]Out   // room → its last HistorySize messages
}

// New returns a worker that serves a new, empty chat on listen (an http://
// URI).
func New(listen string) *workerman.Worker {
	return new(Chat).Worker(listen)
}

// Worker returns a worker that serves ch on listen (an http:// URI). The
// workers of one Chat share it: their gateways are the nodes of one
// cluster, so their people talk to each other.
func (ch *Chat) Worker(listen string) *workerman.Worker {
	ch.mu.Lock()
	if ch.hub == nil {
		ch.hub = gateway.NewHub()
		ch.nicks = map[string]*member{}
		ch.history = map[string][]Out{}
	}
	ch.nodes++
	node := fmt.Sprintf("chat-%d", ch.nodes)
	ch.mu.Unlock()

	w := workerman.NewWorker(listen)
	w.Name = "chat"
	w.WebSocket.Path = "/ws"
	w.WebSocket.PingInterval = 25 * time.Second
	w.WebSocket.PingNotResponseLimit = 2
	w.OnRequest = serveStatic
	g, err := gateway.New(w, gateway.Options{Node: node, Broker: ch.hub.Broker()})
	if err != nil {
		// A valid name, unique in a hub of ch's own: New has no reason
		// to fail.
		panic("chatserver: " + err.Error())
	}
	s := &session{ch: ch, g: g}
	g.OnMessage = s.onMessage
	g.OnClose = s.onClose
	return w
}

// RoomOf returns the room of the person called nick (in any case), or ""
// when nobody of that name is in a room. It is safe from any goroutine.
func (ch *Chat) RoomOf(nick string) string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if m := ch.nicks[nickKey(nick)]; m != nil {
		return m.room
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

// session is the chat as one worker's gateway serves it. The gateway is
// in-process (a hub), so its calls do not wait on a network: they take
// the background context, and the only error they return, for a client
// that has gone meanwhile, changes nothing here (its OnClose follows).
type session struct {
	ch *Chat
	g  *gateway.Gateway
}

var bg = context.Background()

var roomName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

func (s *session) onMessage(id string, msg gateway.Message) {
	var in In
	if err := json.Unmarshal(msg.Data, &in); err != nil {
		s.send(id, Out{Type: "error", Text: "messages are JSON objects"})
		return
	}
	switch in.Type {
	case "join":
		nick := strings.TrimSpace(in.Nick)
		if nick == "" || utf8.RuneCountInString(nick) > 24 {
			s.refuse(id, "nick", "a nickname has 1 to 24 characters")
			return
		}
		if !roomName.MatchString(in.Room) {
			s.refuse(id, "room", "a room name has 1 to 32 letters, digits, - or _")
			return
		}
		s.join(id, in.Room, nick, in.Token)
	case "say":
		text := strings.TrimSpace(in.Text)
		if text == "" {
			return
		}
		if utf8.RuneCountInString(text) > 2000 {
			s.send(id, Out{Type: "error", Text: "messages have at most 2000 characters"})
			return
		}
		s.say(id, text)
	case "leave":
		s.leave(id)
	default:
		s.send(id, Out{Type: "error", Text: "unknown message type " + in.Type})
	}
}

func (s *session) join(id, name, nick, token string) {
	s.ch.mu.Lock()
	replaced := s.joinLocked(id, name, nick, token)
	s.ch.mu.Unlock()
	if replaced != "" {
		// Outside the lock: its OnClose takes it. Having no nickname
		// any more, it says nothing, as the person never left.
		s.g.CloseClient(bg, replaced)
	}
}

// joinLocked answers a join of client id. It returns the client whose
// place id took, to be closed.
func (s *session) joinLocked(id, name, nick, token string) (replaced string) {
	ch, g := s.ch, s.g
	m := s.memberLocked(id)
	if holder := ch.nicks[nickKey(nick)]; holder != nil && holder != m {
		if token == "" || token != holder.token || m != nil {
			s.refuseLocked(id, "nick", "the nickname "+nick+" is in use: pick another")
			return ""
		}
		// The old client leaves the room and its name now, so that it
		// hears nothing more and its close says nothing.
		replaced = holder.client
		g.LeaveGroup(bg, replaced, holder.room)
		g.UnbindUID(bg, replaced, holder.nick)
		holder.client = id
		g.BindUID(bg, id, holder.nick)
		g.JoinGroup(bg, id, holder.room)
		m = holder
	}

	switch {
	case m == nil:
		m = &member{client: id, nick: nick, token: rand.Text()}
		ch.nicks[nickKey(nick)] = m
		g.BindUID(bg, id, nick)
		s.enterLocked(m, name)
	case m.room != name:
		s.exitLocked(m)
		s.renameLocked(m, nick)
		s.enterLocked(m, name)
	default:
		// Already there: no left and joined, and the page keeps its log.
		old := m.nick
		s.renameLocked(m, nick)
		s.send(id, joined(m))
		if replaced != "" {
			// A new connection has missed what the old one did not get.
			s.send(id, Out{Type: "history", Room: name, Messages: ch.history[name]})
			s.send(id, s.presence(name))
		}
		if old != nick {
			s.broadcast(name, Out{Type: "notice", Room: name, Text: old + " is now " + nick, Time: now()})
			s.broadcast(name, s.presence(name))
		}
	}
	return replaced
}

// memberLocked is the member whose client id is, nil when id holds no
// nickname: the gateway knows id's uid, the chat who holds that name.
func (s *session) memberLocked(id string) *member {
	uid, _ := s.g.UIDByClientID(bg, id)
	if m := s.ch.nicks[nickKey(uid)]; uid != "" && m != nil && m.client == id {
		return m
	}
	return nil
}

func joined(m *member) Out {
	return Out{Type: "joined", Room: m.room, Nick: m.nick, Token: m.token}
}

// enterLocked puts m, out of any room, in room name.
func (s *session) enterLocked(m *member, name string) {
	s.g.JoinGroup(bg, m.client, name)
	m.room = name
	s.send(m.client, joined(m))
	s.send(m.client, Out{Type: "history", Room: name, Messages: s.ch.history[name]})
	s.broadcast(name, Out{Type: "notice", Room: name, Text: m.nick + " joined", Time: now()})
	s.broadcast(name, s.presence(name))
}

// exitLocked takes m out of its room; it keeps its nickname. m's client
// may be gone from the gateway already (in OnClose), out of every group.
func (s *session) exitLocked(m *member) {
	name := m.room
	s.g.LeaveGroup(bg, m.client, name)
	m.room = ""
	s.broadcast(name, Out{Type: "notice", Room: name, Text: m.nick + " left", Time: now()})
	s.broadcast(name, s.presence(name))
}

func (s *session) renameLocked(m *member, nick string) {
	delete(s.ch.nicks, nickKey(m.nick))
	m.nick = nick
	s.ch.nicks[nickKey(nick)] = m
	s.g.BindUID(bg, m.client, nick)
}

func (s *session) refuse(id, field, text string) {
	s.ch.mu.Lock()
	defer s.ch.mu.Unlock()
	s.refuseLocked(id, field, text)
}

// refuseLocked answers a join that changes nothing, naming the room and
// nickname id still has (none when it is in no room).
func (s *session) refuseLocked(id, field, text string) {
	o := Out{Type: "refused", Field: field, Text: text}
	if m := s.memberLocked(id); m != nil {
		o.Room, o.Nick = m.room, m.nick
	}
	s.send(id, o)
}

func (s *session) say(id, text string) {
	s.ch.mu.Lock()
	defer s.ch.mu.Unlock()
	m := s.memberLocked(id)
	if m == nil {
		s.send(id, Out{Type: "error", Text: "join a room first"})
		return
	}
	msg := Out{Type: "message", Room: m.room, Nick: m.nick, Text: text, Time: now()}
	h := append(s.ch.history[m.room], msg)
	s.ch.history[m.room] = slices.Delete(h, 0, max(0, len(h)-HistorySize))
	s.broadcast(m.room, msg)
}

// leave takes id out of its room and frees its nickname.
func (s *session) leave(id string) {
	s.ch.mu.Lock()
	defer s.ch.mu.Unlock()
	if m := s.memberLocked(id); m != nil {
		s.exitLocked(m)
		delete(s.ch.nicks, nickKey(m.nick))
		s.g.UnbindUID(bg, id, m.nick)
	}
}

// onClose is leave for a client that has gone: the gateway has taken it
// out of its group and unbound it already, and says which uid it had.
func (s *session) onClose(id string, last gateway.ClientInfo) {
	if last.UID == "" {
		return
	}
	s.ch.mu.Lock()
	defer s.ch.mu.Unlock()
	key := nickKey(last.UID)
	if m := s.ch.nicks[key]; m != nil && m.client == id {
		s.exitLocked(m)
		delete(s.ch.nicks, key)
	}
}

// presence is the who-is-online list of a room: its members' uids, which
// are their nicknames, sorted.
func (s *session) presence(room string) Out {
	users, _ := s.g.GroupUIDs(bg, room)
	return Out{Type: "presence", Room: room, Users: users}
}

func (s *session) broadcast(room string, o Out) {
	b, _ := json.Marshal(o)
	s.g.SendToGroup(bg, room, gateway.Message{Data: b})
}

func (s *session) send(id string, o Out) {
	b, _ := json.Marshal(o)
	s.g.SendToClient(bg, id, gateway.Message{Data: b})
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

func now() int64 { return time.Now().UnixMilli() }
