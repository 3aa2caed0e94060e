package pushclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/gateway"
	"github.com/workerman-go/workerman/pushclient"
)

// A client of a push service: it prints its welcome and the pushes it
// gets. The service here is a gateway in the same process; in production
// it is cmd/workerman-push, and the push comes from a backend's
// POST /api/sendToUid.
func Example() {
	stop := startPushServer() // ws://127.0.0.1:port/, every client bound to uid alice
	defer stop()

	got := make(chan string)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pushclient.Dial(ctx, []string{pushURL}, pushclient.Options{
		// Token: jwt, or TokenFunc to refresh it before every attempt.
		OnWelcome: func(c *pushclient.Client, w pushclient.Welcome) {
			fmt.Println("welcome, uid", w.UID)
		},
		OnMessage: func(c *pushclient.Client, m pushclient.Message) {
			got <- string(m.Data) // m.Data is only valid until OnMessage returns
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() {
		c.Close()
		<-c.Done()
	}()

	pushServer.SendToUID(ctx, "alice", gateway.Text(`{"text":"hello"}`))
	fmt.Println(<-got)
	// Output:
	// welcome, uid alice
	// {"text":"hello"}
}

var (
	pushServer *gateway.Gateway
	pushURL    string
)

// startPushServer starts what cmd/workerman-push is at its core: a gateway
// on a websocket:// worker that welcomes every client.
func startPushServer() (stop func()) {
	w := workerman.NewWorker("websocket://127.0.0.1:0")
	g, err := gateway.New(w, gateway.Options{Node: "example"})
	if err != nil {
		panic(err)
	}
	g.OnConnect = func(id string) { g.BindUID(context.Background(), id, "alice") }
	g.Welcome = func(c gateway.ClientInfo) gateway.Message {
		b, _ := json.Marshal(map[string]string{"type": "welcome", "client_id": c.ID, "uid": c.UID})
		return gateway.Message{Data: b}
	}
	if err := w.Listen(); err != nil {
		panic(err)
	}
	pushServer, pushURL = g, "ws://"+w.Addr().String()+"/"
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		w.Shutdown(ctx)
		g.Close()
	}
}

// A program that resumes across its own restarts: it saves its position
// in every stream with each push it handled, and gives them back at
// start; the server (with -history-size) replays what came meanwhile, and
// OnResumed says which streams lost pushes for good.
func ExampleOptions_resume() {
	saved := loadPositions() // what Positions returned last time, or nil
	c, err := pushclient.New([]string{"ws://push.example.com:8000/"}, pushclient.Options{
		Resume: saved,
		OnMessage: func(c *pushclient.Client, m pushclient.Message) {
			handle(m.Data)
			if m.Stream != "" { // from a server with history
				savePositions(c.Positions())
			}
		},
		OnResumed: func(c *pushclient.Client, r pushclient.Resumed) {
			for _, stream := range r.Lost() {
				reload(stream) // pushes were lost: read the state afresh
			}
		},
	})
	if err != nil {
		panic(err)
	}
	defer c.Close()
}

func loadPositions() map[string]pushclient.Position { return nil }
func savePositions(map[string]pushclient.Position)  {}
func handle([]byte)                                 {}
func reload(string)                                 {}
