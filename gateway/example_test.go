package gateway_test

import (
	"context"
	"encoding/json"
	"log"
	"net/http"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/gateway"
)

// A chat room service: a browser connects to ws://host:8000/?uid=alice&room=7,
// is bound to its uid and joins its room; what it sends goes to the rest of
// its room; a backend pushes with POST http://127.0.0.1:8001/api/sendToUid.
func Example() {
	w := workerman.NewWorker("websocket://0.0.0.0:8000")
	g, err := gateway.New(w, gateway.Options{})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	g.OnConnect = func(id string) {
		// The handshake is still there during OnConnect.
		q := g.Connection(id).WebSocketRequest().Query()
		if uid := q.Get("uid"); uid != "" { // check a token here, in real life
			g.BindUID(ctx, id, uid)
		}
		if room := q.Get("room"); room != "" {
			g.JoinGroup(ctx, id, "room:"+room)
			g.SetSession(ctx, id, map[string]any{"room": room})
		}
	}
	g.Welcome = func(c gateway.ClientInfo) gateway.Message {
		b, _ := json.Marshal(map[string]string{"type": "welcome", "client_id": c.ID, "uid": c.UID})
		return gateway.Message{Data: b}
	}
	g.OnMessage = func(id string, m gateway.Message) {
		s, _ := g.Session(ctx, id)
		if room, ok := s["room"].(string); ok {
			g.SendToGroup(ctx, "room:"+room, m, id) // everyone else in the room
		}
	}
	go http.ListenAndServe("127.0.0.1:8001", g.APIHandler(gateway.APIOptions{Key: "change me"}))
	workerman.RunAll()
}
