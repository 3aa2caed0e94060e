package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The gorilla-hub baseline: gorilla/websocket's chat example grown into a
// push server, the way one is commonly written by hand. A reading and a
// writing goroutine per connection (the writer drains a buffered channel),
// a hub of maps under a lock, and a tiny HTTP API with the push layer's
// method names and bodies (welcome frame, joinGroup, bindUid, sendToGroup,
// sendToUid) so that the load generator drives it exactly like ours.

const (
	hubWriteWait  = 10 * time.Second
	hubPongWait   = 60 * time.Second
	hubPingPeriod = hubPongWait * 9 / 10
	hubSendBuffer = 256
)

type hubClient struct {
	id    string
	conn  *websocket.Conn
	send  chan []byte
	uid   string
	group map[string]struct{}
}

type hubServer struct {
	key string

	mu      sync.RWMutex
	clients map[string]*hubClient
	groups  map[string]map[*hubClient]struct{}
	uids    map[string]map[*hubClient]struct{}

	nextID  atomic.Uint64
	dropped atomic.Int64
}

var hubUpgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 1024,
	CheckOrigin:     func(*http.Request) bool { return true },
}

func runHub(listen, api, key string) {
	h := &hubServer{key: key, clients: map[string]*hubClient{},
		groups: map[string]map[*hubClient]struct{}{}, uids: map[string]map[*hubClient]struct{}{}}
	wsLn, err := net.Listen("tcp", listen)
	if err != nil {
		log.Fatal(err)
	}
	apiLn, err := net.Listen("tcp", api)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", h.api)
	go func() { log.Fatal(http.Serve(apiLn, mux)) }()
	fmt.Printf("READY %s %s\n", wsLn.Addr(), apiLn.Addr())
	log.Fatal(http.Serve(wsLn, http.HandlerFunc(h.serveWS)))
}

func (h *hubServer) serveWS(w http.ResponseWriter, r *http.Request) {
	conn, err := hubUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &hubClient{id: strconv.FormatUint(h.nextID.Add(1), 10), conn: conn,
		send: make(chan []byte, hubSendBuffer), group: map[string]struct{}{}}
	welcome, _ := json.Marshal(map[string]string{"type": "welcome", "client_id": c.id, "uid": ""})
	c.send <- welcome
	h.mu.Lock()
	h.clients[c.id] = c
	h.mu.Unlock()
	go c.writePump()
	c.readPump(h)
}

// readPump reads (and drops) what the client sends until it goes, then
// takes it out of the hub.
func (c *hubClient) readPump(h *hubServer) {
	defer func() {
		h.mu.Lock()
		delete(h.clients, c.id)
		for g := range c.group {
			delete(h.groups[g], c)
			if len(h.groups[g]) == 0 {
				delete(h.groups, g)
			}
		}
		if c.uid != "" {
			delete(h.uids[c.uid], c)
			if len(h.uids[c.uid]) == 0 {
				delete(h.uids, c.uid)
			}
		}
		h.mu.Unlock()
		close(c.send)
		c.conn.Close()
	}()
	c.conn.SetReadLimit(64 << 10)
	c.conn.SetReadDeadline(time.Now().Add(hubPongWait))
	c.conn.SetPongHandler(func(string) error { c.conn.SetReadDeadline(time.Now().Add(hubPongWait)); return nil })
	for {
		if _, _, err := c.conn.ReadMessage(); err != nil {
			return
		}
		c.conn.SetReadDeadline(time.Now().Add(hubPongWait))
	}
}

// writePump writes each queued message as its own frame, and pings.
func (c *hubClient) writePump() {
	ticker := time.NewTicker(hubPingPeriod)
	defer func() {
		ticker.Stop()
		c.conn.Close()
	}()
	for {
		select {
		case msg, ok := <-c.send:
			c.conn.SetWriteDeadline(time.Now().Add(hubWriteWait))
			if !ok {
				c.conn.WriteMessage(websocket.CloseMessage, []byte{})
				return
			}
			if err := c.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
				return
			}
		case <-ticker.C:
			c.conn.SetWriteDeadline(time.Now().Add(hubWriteWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

// deliver queues msg for c, dropping it when c's buffer is full.
func (h *hubServer) deliver(c *hubClient, msg []byte) {
	select {
	case c.send <- msg:
	default:
		h.dropped.Add(1)
	}
}

func (h *hubServer) api(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, `{"error":"POST only"}`, http.StatusMethodNotAllowed)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+h.key {
		http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
		return
	}
	var b struct {
		ClientID string `json:"client_id"`
		Group    string `json:"group"`
		UID      string `json:"uid"`
		Message  string `json:"message"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || json.Unmarshal(body, &b) != nil {
		http.Error(w, `{"error":"bad body"}`, http.StatusBadRequest)
		return
	}
	notFound := func() { http.Error(w, `{"error":"no such client"}`, http.StatusNotFound) }
	switch r.URL.Path {
	case "/api/joinGroup":
		h.mu.Lock()
		c := h.clients[b.ClientID]
		if c != nil {
			if h.groups[b.Group] == nil {
				h.groups[b.Group] = map[*hubClient]struct{}{}
			}
			h.groups[b.Group][c] = struct{}{}
			c.group[b.Group] = struct{}{}
		}
		h.mu.Unlock()
		if c == nil {
			notFound()
			return
		}
	case "/api/bindUid":
		h.mu.Lock()
		c := h.clients[b.ClientID]
		if c != nil {
			if c.uid != "" {
				delete(h.uids[c.uid], c)
			}
			if h.uids[b.UID] == nil {
				h.uids[b.UID] = map[*hubClient]struct{}{}
			}
			h.uids[b.UID][c] = struct{}{}
			c.uid = b.UID
		}
		h.mu.Unlock()
		if c == nil {
			notFound()
			return
		}
	case "/api/sendToGroup", "/api/sendToUid":
		msg := []byte(b.Message)
		h.mu.RLock()
		set := h.groups[b.Group]
		if r.URL.Path == "/api/sendToUid" {
			set = h.uids[b.UID]
		}
		for c := range set {
			h.deliver(c, msg)
		}
		h.mu.RUnlock()
	default:
		http.Error(w, `{"error":"unknown method"}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte("{}\n"))
}
