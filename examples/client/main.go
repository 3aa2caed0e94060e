// Command client is the WebSocket client of the quick start: it connects to
// the server, says hello and prints what comes back.
//
//	go run ./examples/server          # in one terminal
//	go run ./examples/client          # in another
//	go run ./examples/client -n 1     # exit after the first reply (scripts)
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/workerman-go/workerman"
)

func main() {
	addr := flag.String("connect", "ws://127.0.0.1:8000", "server URI (ws://, wss://, text://, ...)")
	send := flag.String("send", "Hello, server!", "message sent once connected")
	n := flag.Int("n", 0, "exit after this many replies (0: run until interrupted)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan struct{})
	var replies atomic.Int64

	c := workerman.NewAsyncConnection(*addr)
	c.OnConnect = func(c *workerman.AsyncConnection) {
		fmt.Println("Connected to server")
		c.SendString(*send)
	}
	c.OnMessage = func(c *workerman.AsyncConnection, data []byte) {
		fmt.Printf("Message received from server: %s\n", data)
		if r := replies.Add(1); *n > 0 && r == int64(*n) {
			c.Close()
		}
	}
	c.OnError = func(c *workerman.AsyncConnection, err error) {
		fmt.Fprintln(os.Stderr, "error:", err)
	}
	c.OnClose = func(c *workerman.AsyncConnection) {
		fmt.Println("Connection closed")
		close(done)
	}
	if err := c.Connect(); err != nil {
		log.Fatal(err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		c.Close()
		<-done
	}
	if *n > 0 && replies.Load() < int64(*n) {
		os.Exit(1)
	}
}
