package gateway_test

import (
	"fmt"
	"log"
	"time"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/gateway"
)

// A gateway with a history: each uid's, group's and everyone's last 200
// pushes are kept for 10 minutes, pushes go out as JSON envelopes
// ({"type":"message","stream":"uid:alice","offset":7,"epoch":"…","data":"…"}),
// and a client that reconnects with
// ws://host:8000/?resume={"uid:alice":{"epoch":"…","offset":7}} gets what
// it missed, then {"type":"resumed",…}, then the live pushes.
func ExampleNewMemoryHistory() {
	w := workerman.NewWorker("websocket://0.0.0.0:8000")
	g, err := gateway.New(w, gateway.Options{
		History: gateway.NewMemoryHistory(gateway.MemoryHistoryOptions{Size: 200, TTL: 10 * time.Minute}),
	})
	if err != nil {
		log.Fatal(err)
	}
	g.OnConnect = func(id string) {
		// Bind and join here (the client resumes them right after its
		// welcome) or later, from the backend (a bind or join then
		// replays that stream, with a resumed frame of its own).
	}
	workerman.RunAll()
}

func ExampleParseResume() {
	r, err := gateway.ParseResume(`{"uid:alice":{"epoch":"e1","offset":7},"all":{"epoch":""}}`)
	fmt.Println(r["uid:alice"], r["all"], err)
	_, err = gateway.ParseResume(`{"uid:alice":7}`)
	fmt.Println(err != nil)
	// Output:
	// {e1 7} { 0} <nil>
	// true
}
