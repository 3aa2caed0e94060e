//go:build linux

package engine

import (
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// feedAddrEnv makes TestHelperFeed, run in a child process, feed the
// address it names until its standard input closes.
const feedAddrEnv = "WORKERMAN_TEST_FEED_ADDR"

// TestHelperFeed is not a test: run by TestDenseInputLeavesTheNetwork in
// a child process, it writes to the server from 8 connections without
// pause, 64 KiB at a time, so that the loop always finds input.
func TestHelperFeed(t *testing.T) {
	addr := os.Getenv(feedAddrEnv)
	if addr == "" {
		t.Skip("run by TestDenseInputLeavesTheNetwork")
	}
	chunk := make([]byte, 64<<10)
	for range 8 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}()
	}
	io.Copy(io.Discard, os.Stdin) // until the parent is done
}

// sinkHandler consumes what it reads.
type sinkHandler struct{ n *atomic.Int64 }

func (h sinkHandler) OnRead(in []byte) (int, int) { h.n.Add(int64(len(in))); return len(in), 0 }
func (sinkHandler) OnEOF()                        {}
func (sinkHandler) OnDrain()                      {}
func (sinkHandler) OnClose(error)                 {}

// A loop kept busy by dense input (it naps between batches and always
// finds more) leaves the network to the process's other goroutines: with
// GOMAXPROCS=1 the scheduler polls the network only when the P has nothing
// to run, so a loop that never parked would hold up every net.Conn of the
// program until sysmon's poll (10 ms). It parks at least every
// coalesceBusy, waking itself when it has more to do: a ping-pong over a
// net.Conn answers within a few milliseconds meanwhile.
func TestDenseInputLeavesTheNetwork(t *testing.T) {
	engines := []struct {
		name string
		new  func() (Engine, error)
	}{
		{"epoll", func() (Engine, error) { return New(Config{Loops: 1}) }},
		{"io_uring", func() (Engine, error) { return NewUring(Config{Loops: 1}) }},
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			eng, err := e.new()
			if err != nil {
				t.Skip(err)
			}
			t.Cleanup(eng.Stop)
			var got atomic.Int64
			ln := &Listener{Network: "tcp", Address: "127.0.0.1:0"}
			if err := eng.Listen(ln, func(Conn, int) Handler { return sinkHandler{&got} }); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })

			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))

			feeder := exec.Command(os.Args[0], "-test.run=^TestHelperFeed$")
			feeder.Env = append(os.Environ(), feedAddrEnv+"="+ln.Addr().String())
			stdin, err := feeder.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := feeder.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				stdin.Close()
				feeder.Wait()
			}()
			// The loop is busy once megabytes have come.
			deadline := time.Now().Add(10 * time.Second)
			for got.Load() < 4<<20 {
				if time.Now().After(deadline) {
					t.Fatalf("the feeder sent %d bytes in 10 s", got.Load())
				}
				time.Sleep(time.Millisecond)
			}

			pl, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer pl.Close()
			go func() {
				c, err := pl.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				io.Copy(c, c)
			}()
			pc, err := net.Dial("tcp", pl.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			pc.SetDeadline(time.Now().Add(20 * time.Second))
			var rtts []time.Duration
			b := []byte{1}
			before := got.Load()
			for range 100 {
				start := time.Now()
				if _, err := pc.Write(b); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(pc, b); err != nil {
					t.Fatal(err)
				}
				rtts = append(rtts, time.Since(start))
			}
			if got.Load() == before {
				t.Fatal("the loop received nothing during the ping-pong: the test measured nothing")
			}
			slices.Sort(rtts)
			t.Logf("ping-pong round trips while the loop is busy: median %v, max %v", rtts[len(rtts)/2], rtts[len(rtts)-1])
			// A loop that never parks leaves the network to sysmon's poll
			// every 10 ms: medians of 20-40 ms. Parks every coalesceBusy:
			// 1-6 ms (two polls per round trip), -race included.
			if med := rtts[len(rtts)/2]; med > 15*time.Millisecond {
				t.Fatalf("median round trip of another goroutine's net.Conn %v while the loop is busy, want under 15 ms", med)
			}
		})
	}
}
