// Command clients holds many workerman AsyncConnections in one process and
// reports what they cost: goroutines and resident memory per connection.
// The server runs in another process (benchserver).
//
//	cd bench && go run ./cmd/clients -n 10000
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/bench/internal/procstat"
)

func main() {
	n := flag.Int("n", 10000, "client connections")
	flag.Parse()

	dir, _ := os.MkdirTemp("", "clients")
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "benchserver")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/benchserver").CombinedOutput(); err != nil {
		log.Fatalf("build: %v\n%s", err, out)
	}
	srv := exec.Command(bin, "-impl", "workerman", "-proto", "websocket")
	stdin, _ := srv.StdinPipe()
	defer stdin.Close()
	stdout, _ := srv.StdoutPipe()
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Process.Kill()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	addr := strings.TrimSpace(strings.TrimPrefix(line, "READY "))

	gc := func() { runtime.GC(); debug.FreeOSMemory() }
	gc()
	baseRSS, baseG := procstat.RSS(os.Getpid()), runtime.NumGoroutine()

	var ready, failed atomic.Int64
	var wg sync.WaitGroup
	conns := make([]*workerman.AsyncConnection, *n)
	start := time.Now()
	for i := range conns {
		wg.Add(1)
		var once sync.Once
		done := func() { once.Do(wg.Done) }
		c := workerman.NewAsyncConnection("ws://" + addr + "/")
		c.OnWebSocketConnect = func(*workerman.AsyncConnection, *workerman.WebSocketResponse) { ready.Add(1); done() }
		c.OnError = func(_ *workerman.AsyncConnection, err error) { failed.Add(1); done() }
		c.WebSocket.NoCompression = true
		conns[i] = c
		if err := c.Connect(); err != nil {
			log.Fatal(err)
		}
	}
	wg.Wait()
	took := time.Since(start)
	time.Sleep(2200 * time.Millisecond) // idle: let the callback pool release its workers
	gc()
	perConn := float64(procstat.RSS(os.Getpid())-baseRSS) / float64(*n)
	fmt.Printf("%d AsyncConnections (%d failed) connected in %v\n", ready.Load(), failed.Load(), took.Round(time.Millisecond))
	fmt.Printf("goroutines: %d before, %d with them connected and idle\n", baseG, runtime.NumGoroutine())
	fmt.Printf("resident memory per idle client connection: %.0f B\n", perConn)
	for _, c := range conns {
		c.Destroy()
	}
}
