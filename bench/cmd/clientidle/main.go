// Command clientidle measures what idle WebSocket clients cost in one
// process: N workerman AsyncConnections (ws://) connected to an echo
// server in another process, doing nothing, against the same number of
// gorilla/websocket client connections (each with the reader goroutine a
// gorilla client needs), each kind in a fresh process of its own. It
// reports the Go heap, the resident size and the goroutines per client,
// after a GC that returns free memory to the OS. The kinds: workerman-shared
// (NewAsyncConnectionWith, one *AsyncOptions for all), workerman (each with
// options of its own), gorilla.
//
//	cd bench && go run ./cmd/clientidle                # 10,000 clients of each kind
//	cd bench && go run ./cmd/clientidle -n 1000
//	cd bench && go run ./cmd/clientidle -proto wss     # over TLS 1.3
//	cd bench && go run ./cmd/clientidle -memstats      # and the runtime's account, on stderr
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/bench/internal/procstat"
)

func main() {
	n := flag.Int("n", 10000, "clients")
	kind := flag.String("kind", "", "internal: run the clients of one kind (workerman, gorilla) against -addr")
	addr := flag.String("addr", "", "internal: the server")
	heapProfile := flag.String("heapprofile", "", "write a heap profile of the clients, every allocation sampled (with -kind; the figures then include the profiler's own records)")
	hold := flag.Duration("hold", 0, "with -kind: keep the clients connected this long after measuring (to profile the server meanwhile)")
	proto := flag.String("proto", "websocket", "websocket (ws://) or wss (WebSocket over TLS 1.3)")
	memStats := flag.Bool("memstats", false, "also print, on stderr, where the memory per client is by the runtime's account (heap, stacks, span and GC metadata)")
	flag.Parse()
	if *kind != "" {
		runClients(*kind, *proto, *addr, *n, *heapProfile, *hold, *memStats)
		return
	}
	srv := exec.Command("go", "run", "./cmd/benchserver", "-impl", "workerman", "-proto", *proto)
	srv.Stderr = os.Stderr
	out, _ := srv.StdoutPipe()
	stdin, _ := srv.StdinPipe() // the server runs until its stdin closes
	defer stdin.Close()
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Process.Kill()
	sc := bufio.NewScanner(out)
	var serverAddr string
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
			serverAddr = a
			break
		}
	}
	if serverAddr == "" {
		log.Fatal("the server did not start")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	self, _ := os.Executable()
	what := "WebSocket"
	if *proto == "wss" {
		what = "wss://"
	}
	fmt.Printf("| %d idle %s clients in one process | Go heap per client | RSS per client | goroutines per client |\n|---|---:|---:|---:|\n", *n, what)
	for _, k := range []string{"workerman-shared", "workerman", "gorilla"} {
		c := exec.Command(self, "-kind", k, "-proto", *proto, "-addr", serverAddr, "-n", fmt.Sprint(*n), fmt.Sprintf("-memstats=%v", *memStats))
		c.Stderr = os.Stderr
		b, err := c.Output()
		if err != nil {
			log.Fatalf("%s: %v", k, err)
		}
		fmt.Print(string(b))
	}
}

func runClients(kind, proto, addr string, n int, heapProfile string, hold time.Duration, memStats bool) {
	if heapProfile != "" {
		runtime.MemProfileRate = 1 // every allocation: exact sizes per client
	}
	scheme := "ws"
	var tlsCfg *tls.Config
	if proto == "wss" {
		// The bench server's certificate is self-signed, made at its start:
		// the clients do the whole TLS 1.3 handshake but do not verify it.
		scheme, tlsCfg = "wss", &tls.Config{InsecureSkipVerify: true}
	}
	u := &url.URL{Scheme: scheme, Host: addr, Path: "/"}
	uri := u.String() // one string for all: a client keeps its URI
	var ms0, ms1 runtime.MemStats
	measure := func(ms *runtime.MemStats) (heap, rss int64) {
		runtime.GC()
		debug.FreeOSMemory()
		runtime.ReadMemStats(ms)
		return int64(ms.HeapInuse), procstat.RSS(os.Getpid())
	}
	// The library's shared client side up before the baseline.
	warm := workerman.NewAsyncConnection(uri)
	warm.TLSConfig = tlsCfg
	warmed := make(chan struct{})
	warm.OnWebSocketConnect = func(*workerman.AsyncConnection, *workerman.WebSocketResponse) { close(warmed) }
	warm.OnError = func(_ *workerman.AsyncConnection, err error) { log.Fatalf("warm-up: %v", err) }
	if err := warm.Connect(); err != nil {
		log.Fatal(err)
	}
	<-warmed
	time.Sleep(200 * time.Millisecond)
	// workerman-shared: the clients share one AsyncOptions (and so what it
	// builds: address, WebSocket settings, callbacks' wiring); each hands
	// itself over on connect, so that nothing per client is made here.
	upCh := make(chan *workerman.AsyncConnection, n)
	shared := &workerman.AsyncOptions{
		OnWebSocketConnect: func(a *workerman.AsyncConnection, _ *workerman.WebSocketResponse) { upCh <- a },
		OnError:            func(_ *workerman.AsyncConnection, err error) { log.Fatalf("client: %v", err) },
		TLSConfig:          tlsCfg,
	}
	heap0, rss0 := measure(&ms0)
	g0 := runtime.NumGoroutine()
	keep := make([]any, 0, n) // the program holds its clients: 16 bytes each, for every kind
	var wg sync.WaitGroup
	sem := make(chan struct{}, 200)
	var mu sync.Mutex
	for i := range n {
		if kind == "workerman-shared" {
			// Connect returns at once: no goroutine of the benchmark's
			// own (whose memory the runtime keeps) stands beside them.
			c := workerman.NewAsyncConnectionWith(uri, shared)
			if err := c.Connect(); err != nil {
				log.Fatal(err)
			}
			keep = append(keep, c)
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		switch kind {
		case "workerman":
			c := workerman.NewAsyncConnection(uri)
			c.TLSConfig = tlsCfg
			done := make(chan struct{})
			var once sync.Once
			c.OnWebSocketConnect = func(*workerman.AsyncConnection, *workerman.WebSocketResponse) { once.Do(func() { close(done) }) }
			c.OnError = func(_ *workerman.AsyncConnection, err error) { log.Fatalf("client %d: %v", i, err) }
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if err := c.Connect(); err != nil {
					log.Fatal(err)
				}
				<-done
			}()
			mu.Lock()
			keep = append(keep, c)
			mu.Unlock()
		case "gorilla":
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				d := *websocket.DefaultDialer
				d.TLSClientConfig = tlsCfg
				conn, _, err := d.Dial(u.String(), nil)
				if err != nil {
					log.Fatal(err)
				}
				go func() { // a reader, as a gorilla client must have to see pings and closes
					for {
						if _, _, err := conn.ReadMessage(); err != nil {
							return
						}
					}
				}()
				mu.Lock()
				keep = append(keep, conn)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	if kind == "workerman-shared" {
		for range n {
			<-upCh
		}
	}
	time.Sleep(time.Second)
	time.Sleep(2200 * time.Millisecond) // idle: the callback pool lets its workers go
	heap1, rss1 := measure(&ms1)
	g1 := runtime.NumGoroutine()
	if heapProfile != "" {
		f, _ := os.Create(heapProfile)
		pprof.WriteHeapProfile(f)
		f.Close()
	}
	if memStats {
		per := func(a, b uint64) int64 { return (int64(b) - int64(a)) / int64(n) }
		fmt.Fprintf(os.Stderr, "%s per client: heap in use %d, stacks %d, spans %d, GC %d, other %d, heap objects %d\n", kind,
			per(ms0.HeapInuse, ms1.HeapInuse), per(ms0.StackInuse, ms1.StackInuse), per(ms0.MSpanInuse, ms1.MSpanInuse),
			per(ms0.GCSys, ms1.GCSys), per(ms0.OtherSys, ms1.OtherSys), per(ms0.HeapObjects, ms1.HeapObjects))
	}
	fmt.Printf("| %s | %d B | %d B | %.2f |\n", kind, (heap1-heap0)/int64(n), (rss1-rss0)/int64(n), float64(g1-g0)/float64(n))
	time.Sleep(hold)
	runtime.KeepAlive(keep)
}
