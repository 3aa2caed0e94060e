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
	"strconv"
	"strings"
	"unicode/utf8"

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
			scheme, _, _ := strings.Cut(*listen, "://")
			fmt.Printf("Server listening on %s://%s (%d instances)\n", scheme, w.Addr(), w.Count)
		}
	}
	ws.OnConnect = func(c *workerman.Connection) {
		fmt.Println("New connection established")
	}
	ws.OnMessage = func(c *workerman.Connection, data []byte) {
		fmt.Printf("Message received from client: %s\n", preview(data))
		// Answer in the type the message came with: a binary message's
		// bytes need not be UTF-8, and a text frame must be (Send sends
		// text, and refuses bytes that are not UTF-8).
		reply := append([]byte("Message received: "), data...)
		if err := c.SendMessage(c.MessageType(), reply); err != nil {
			fmt.Println("Reply not sent:", err)
		}
	}
	ws.OnClose = func(c *workerman.Connection) {
		fmt.Println("Connection closed")
	}
	if err := workerman.RunAll(); err != nil {
		log.Fatal(err)
	}
}

// preview is what the terminal shows of a message: at most its first 200
// bytes, quoted when they are not printable text, so that a large or
// binary message does not flood or garble the terminal.
func preview(data []byte) string {
	const max = 200
	p, more := data, ""
	if len(p) > max {
		cut := max
		for cut > max-utf8.UTFMax && !utf8.RuneStart(p[cut]) {
			cut-- // end on a whole character
		}
		p, more = p[:cut], fmt.Sprintf("... (%d bytes)", len(data))
	}
	s := string(p)
	if !printable(s) {
		s = strconv.Quote(s)
	}
	return s + more
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !strconv.IsPrint(r) && r != ' ' && r != '\t' {
			return false
		}
	}
	return true
}
