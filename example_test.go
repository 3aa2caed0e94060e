package workerman_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/workerman-go/workerman"
)

// A text:// echo server, the first program of Workerman's manual.
func Example() {
	w := &workerman.Worker{URI: "text://127.0.0.1:0"}
	w.OnMessage = func(c *workerman.Connection, data []byte) {
		c.Send([]byte("you said: " + string(data)))
	}
	if err := w.Listen(); err != nil {
		panic(err)
	}
	defer w.Close()

	conn, _ := net.Dial("tcp", w.Addr().String())
	defer conn.Close()
	fmt.Fprintf(conn, "hello\n")
	reply, _ := bufio.NewReader(conn).ReadString('\n')
	fmt.Print(reply)
	// Output: you said: hello
}

// The push pattern: users connect to one worker, and a backend pushes to
// them through an inner text:// worker started from OnWorkerStart.
func ExampleWorker_Listen() {
	var users sync.Map // uid -> *workerman.Connection

	front := &workerman.Worker{URI: "text://127.0.0.1:0"}
	inner := &workerman.Worker{URI: "text://127.0.0.1:0"}
	front.OnWorkerStart = func(w *workerman.Worker, id int) {
		inner.OnMessage = func(c *workerman.Connection, data []byte) {
			uid, msg, _ := strings.Cut(string(data), " ")
			if v, ok := users.Load(uid); ok {
				v.(*workerman.Connection).SendString(msg)
			}
		}
		inner.Listen() // start another worker at run time
	}
	loggedIn := make(chan struct{})
	front.OnMessage = func(c *workerman.Connection, uid []byte) {
		c.SetValue(string(uid))
		users.Store(string(uid), c)
		close(loggedIn)
	}
	front.OnClose = func(c *workerman.Connection) {
		users.Delete(c.Value())
	}
	front.Listen()
	defer front.Close()
	defer inner.Close()

	user, _ := net.Dial("tcp", front.Addr().String())
	defer user.Close()
	fmt.Fprintf(user, "42\n")
	<-loggedIn

	backend, _ := net.Dial("tcp", inner.Addr().String())
	defer backend.Close()
	fmt.Fprintf(backend, "42 you have mail\n")

	msg, _ := bufio.NewReader(user).ReadString('\n')
	fmt.Print(msg)
	// Output: you have mail
}

// Run serves until the context is cancelled, then stops gracefully: the way
// to embed a worker in a program that manages its own lifecycle.
func ExampleWorker_Run() {
	w := &workerman.Worker{URI: "text://127.0.0.1:0"}
	w.OnMessage = func(c *workerman.Connection, data []byte) { c.Send(data) }
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := w.Run(ctx)
	fmt.Println("stopped:", err)
	// Output: stopped: <nil>
}

// A heartbeat timer, Workerman's Timer::add. The callback runs on a
// goroutine of its own: share state with atomics, locks or channels.
func ExampleTimerSet_Add() {
	var ticks atomic.Int32
	third := make(chan struct{})
	id := workerman.Timer.Add(10*time.Millisecond, func() {
		if ticks.Add(1) == 3 {
			close(third)
		}
	}, true)
	<-third
	workerman.Timer.Del(id)
	fmt.Println("three ticks, then deleted")
	// Output: three ticks, then deleted
}

// Back-pressure: forward one connection to another without dropping data;
// while the destination cannot keep up, the source is not read.
func ExampleConnection_Pipe() {
	w := &workerman.Worker{URI: "tcp://127.0.0.1:0"}
	accepted := make(chan *workerman.Connection, 2)
	w.OnConnect = func(c *workerman.Connection) { accepted <- c }
	w.Listen()
	defer w.Close()

	src, _ := net.Dial("tcp", w.Addr().String())
	defer src.Close()
	from := <-accepted
	dst, _ := net.Dial("tcp", w.Addr().String())
	defer dst.Close()
	to := <-accepted
	from.Pipe(to) // whatever the first client sends goes to the second

	fmt.Fprintf(src, "through the pipe\n")
	line, _ := bufio.NewReader(dst).ReadString('\n')
	fmt.Print(line)
	// Output: through the pipe
}

// A server program with Workerman's command line: `./server start -d`,
// `./server status`, `./server stop -g`. Main returns when `start` ends.
func ExampleMain() {
	workerman.PidFile = "/var/run/chat.pid"
	workerman.StdoutFile = "/var/log/chat.log"
	w := workerman.NewWorker("websocket://0.0.0.0:8000")
	w.Count = 4
	w.OnMessage = func(c *workerman.Connection, data []byte) { c.Send(data) }
	workerman.Main()
}

// Many clients with the same settings share one AsyncOptions: what the
// first Connect builds is built once, and each client costs about a
// kilobyte. Callbacks get the connection they are for.
func ExampleNewAsyncConnectionWith() {
	w := &workerman.Worker{URI: "websocket://127.0.0.1:0"}
	w.OnMessage = func(c *workerman.Connection, data []byte) { c.Send(data) }
	if err := w.Listen(); err != nil {
		panic(err)
	}
	defer w.Close()

	const n = 3
	echoes := make(chan string, n)
	opts := &workerman.AsyncOptions{
		OnWebSocketConnect: func(c *workerman.AsyncConnection, _ *workerman.WebSocketResponse) {
			c.SendString(fmt.Sprint("client ", c.Value()))
		},
		OnMessage: func(c *workerman.AsyncConnection, data []byte) {
			echoes <- string(data)
			c.Close()
		},
	}
	for i := range n {
		c := workerman.NewAsyncConnectionWith("ws://"+w.Addr().String()+"/", opts)
		c.SetValue(i)
		c.Connect()
	}
	got := make([]string, 0, n)
	for range n {
		got = append(got, <-echoes)
	}
	slices.Sort(got)
	fmt.Println(strings.Join(got, ", "))
	// Output: client 0, client 1, client 2
}
