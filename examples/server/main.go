// Command server is the WebSocket server of the quick start: four
// event-loop instances on websocket://0.0.0.0:8000 that answer every message.
//
//	go run ./examples/server
//	go run ./examples/client      # in another terminal
package main

import (
	"flag"
	"fmt"
	"log"

	"github.com/workerman-go/workerman"
)

func main() {
	listen := flag.String("listen", "websocket://0.0.0.0:8000", "listen URI")
	count := flag.Int("count", 4, "event-loop instances")
	flag.Parse()

	ws := workerman.NewWorker(*listen)
	ws.Count = *count
	ws.OnWorkerStart = func(w *workerman.Worker, id int) {
		if id == 0 {
			fmt.Printf("Server listening on %s (%d instances)\n", *listen, w.Count)
		}
	}
	ws.OnConnect = func(c *workerman.Connection) {
		fmt.Println("New connection established")
	}
	ws.OnMessage = func(c *workerman.Connection, data []byte) {
		fmt.Printf("Message received from client: %s\n", data)
		c.Send([]byte("Message received: " + string(data)))
	}
	ws.OnClose = func(c *workerman.Connection) {
		fmt.Println("Connection closed")
	}
	if err := workerman.RunAll(); err != nil {
		log.Fatal(err)
	}
}
