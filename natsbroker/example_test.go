package natsbroker_test

import (
	"log"
	"time"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/gateway"
	"github.com/workerman-go/workerman/natsbroker"
)

// A node of a three-node cluster with the cluster's history: each node
// embeds a nats-server running JetStream (every node gets the same
// Peers), the history keeps each uid's, group's and everyone's last 200
// pushes for 10 minutes on all three, and a client resumes on any node,
// also after its own node died.
func ExampleBroker_History() {
	b, err := natsbroker.New(natsbroker.Options{
		Cluster: "10.0.0.1:6222",
		Peers:   []string{"10.0.0.1:6222", "10.0.0.2:6222", "10.0.0.3:6222"},
		History: &natsbroker.HistoryOptions{Size: 200, TTL: 10 * time.Minute},
	})
	if err != nil {
		log.Fatal(err)
	}
	w := workerman.NewWorker("websocket://0.0.0.0:8000")
	if _, err := gateway.New(w, gateway.Options{Node: "a", Broker: b, History: b.History()}); err != nil {
		log.Fatal(err)
	}
	workerman.RunAll()
}
