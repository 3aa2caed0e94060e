// Command benchserver runs one echo server for the benchmark runner. It
// prints "READY <addr>" once listening. On SIGUSR1 it collects garbage,
// returns free memory to the OS (and, with BENCH_HEAPPROFILE set, writes a
// heap profile there; with BENCH_HEAPDUMP, a heap dump) and prints "GC", so that the runner reads a resident
// size that holds live memory only; with BENCH_MEMSTATS set it prints a
// line "MEMSTATS ..." first, the runtime's own account of that memory. A line "BROADCAST <n>" on
// stdin sends an n-byte message to every client and prints "SENT <count>".
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/workerman-go/workerman/bench/servers"
)

func main() {
	impl := flag.String("impl", "workerman", "server: "+strings.Join(servers.Names(), ", "))
	proto := flag.String("proto", "tcp", "tcp or websocket")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()

	if path := os.Getenv("BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if os.Getenv("BENCH_HEAPPROFILE") != "" {
		runtime.MemProfileRate = 1 // every allocation: exact sizes per connection
	}
	s, err := servers.Start(*impl, *proto, *addr)
	if err != nil {
		log.Fatal(err)
	}
	out := bufio.NewWriter(os.Stdout)
	say := func(format string, args ...any) {
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	say("READY %s", s.Addr())
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for {
		select {
		case sg := <-sig:
			if sg != syscall.SIGUSR1 {
				s.Close()
				return
			}
			runtime.GC()
			debug.FreeOSMemory()
			if path := os.Getenv("BENCH_HEAPPROFILE"); path != "" {
				// "%s" in the path is the server's name: the runner
				// starts several, one after the other.
				if strings.Contains(path, "%s") {
					path = fmt.Sprintf(path, *impl)
				}
				if f, err := os.Create(path); err == nil {
					pprof.WriteHeapProfile(f)
					f.Close()
				}
			}
			if path := os.Getenv("BENCH_HEAPDUMP"); path != "" {
				// Every object with its address and size (a span's
				// element size): what fills the pages in use.
				if strings.Contains(path, "%s") {
					path = fmt.Sprintf(path, *impl)
				}
				if f, err := os.Create(path); err == nil {
					debug.WriteHeapDump(f.Fd())
					f.Close()
				}
			}
			if os.Getenv("BENCH_MEMSTATS") != "" {
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				line := fmt.Sprintf("MEMSTATS heapalloc=%d heapinuse=%d heapobjects=%d mspan=%d gcsys=%d othersys=%d stack=%d sys=%d released=%d goroutines=%d",
					m.HeapAlloc, m.HeapInuse, m.HeapObjects, m.MSpanInuse, m.GCSys, m.OtherSys, m.StackInuse, m.Sys, m.HeapReleased, runtime.NumGoroutine())
				say("%s", line)
				line += fmt.Sprintf(" mspansys=%d mcachesys=%d buckhash=%d stacksys=%d heapidle-released=%d",
					m.MSpanSys, m.MCacheSys, m.BuckHashSys, m.StackSys, m.HeapIdle-m.HeapReleased)
				// The runner reads stdout for its own lines only: the
				// account goes to stderr too, for whoever runs it.
				fmt.Fprintf(os.Stderr, "%s %s %s\n", *impl, line, residentParts())
				if os.Getenv("BENCH_MEMSTATS") == "maps" {
					fmt.Fprint(os.Stderr, residentMaps())
				}
			}
			say("GC")
		case l, ok := <-lines:
			if !ok {
				s.Close()
				return
			}
			if n, ok := strings.CutPrefix(l, "BROADCAST "); ok {
				size, _ := strconv.Atoi(n)
				say("SENT %d", s.Broadcast(bytes.Repeat([]byte("b"), size)))
			}
		}
	}
}

// residentParts is the kernel's split of the resident set (RssAnon, RssFile:
// code pages count too), for the MEMSTATS line on stderr.
func residentParts() string {
	b, _ := os.ReadFile("/proc/self/status")
	var parts []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Rss") || strings.HasPrefix(l, "Threads") {
			parts = append(parts, strings.Join(strings.Fields(l), ""))
		}
	}
	return strings.Join(parts, " ")
}

// residentMaps lists the mappings with 256 KiB or more resident
// (BENCH_MEMSTATS=maps): which of them grows with the connections.
func residentMaps() string {
	b, _ := os.ReadFile("/proc/self/smaps")
	var out strings.Builder
	var head string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 0 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			head = l
		case len(f) == 3 && f[0] == "Rss:":
			if kb, _ := strconv.Atoi(f[1]); kb >= 256 {
				fmt.Fprintf(&out, "  map %s Rss %d kB\n", head, kb)
			}
		}
	}
	return out.String()
}
