// Command chat is a browser chat: open http://127.0.0.1:8080 in two tabs,
// pick nicknames and a room, and talk.
//
//	go run ./examples/chat [-listen http://127.0.0.1:8080]
//
// The flag:
//
//	-listen URI   where to serve the page and its WebSocket (/ws), an
//	              http://host:port URI; 127.0.0.1:8080 by default, so only
//	              this machine can reach it. http://0.0.0.0:8080 opens it
//	              to the network.
//
// Rooms, a who-is-online list, the last 50 messages of a room for late
// joiners, one person per nickname (in any case), and pages that reconnect
// on their own (with back-off) when the server restarts, rejoining the room
// the server last accepted. It is built on package gateway (a room is a
// group, a nickname a uid); the protocol is described in package
// chatserver.
package main

import (
	"flag"
	"log"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/examples/chat/chatserver"
)

func main() {
	listen := flag.String("listen", "http://127.0.0.1:8080", "listen URI (http://host:port)")
	flag.Parse()
	w := chatserver.New(*listen)
	w.OnWorkerStart = func(w *workerman.Worker, id int) {
		log.Printf("chat: open http://%s in your browser", w.Addr())
	}
	if err := workerman.RunAll(); err != nil {
		log.Fatal(err)
	}
}
