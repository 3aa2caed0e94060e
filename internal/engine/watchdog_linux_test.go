//go:build linux

package engine

import (
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/leakcheck"
)

// Work that blocks on the loop does not hold the loop up: the watchdog
// moves the loop to a new goroutine within a tick or two, the Work's rest
// goes elsewhere (Abandon), other connections are served meanwhile, and
// once the blocked Run returns its goroutine leaves (nothing leaks). While
// the loops are idle the watchdog parks.
func TestAfterPassBlockedWorkIsHandedOff(t *testing.T) {
	engines := append(corkEngines[:len(corkEngines):len(corkEngines)], struct {
		name string
		new  func(Config) (Engine, error)
	}{"epoll-plain", newPlainEngine})
	for _, en := range engines {
		t.Run(en.name, func(t *testing.T) {
			leakcheck.Check(t)
			release := make(chan struct{})
			var eng Engine
			newEngine := func(cfg Config) (Engine, error) {
				e, err := en.new(cfg)
				eng = e
				return e, err
			}
			// The script echoes at once, and blocks on "block" until
			// released.
			addr, _ := scriptServer(t, newEngine, func(c Conn, _ *scriptConn, in string, t Turn) {
				if in == "block" {
					<-release
					if !t.HandedOff() {
						panic("the loop waited for a blocked Run")
					}
				}
				c.Write([]byte(in), 1<<20, false)
			})
			echo := func(c net.Conn, msg string) {
				t.Helper()
				if _, err := c.Write([]byte(msg)); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
					t.Fatalf("echo %q: %q, %v", msg, got, err)
				}
			}
			slow, quick := dialScript(t, addr), dialScript(t, addr)
			echo(quick, "x") // connected and served on the loop
			fds := openFDs(t)
			slow.Write([]byte("block"))
			for range 20 {
				echo(quick, "x") // while the slow one's Run blocks
			}
			if n := openFDs(t); n != fds {
				t.Errorf("%d descriptors open while a Run blocks, %d before: a hand-off costs none", n, fds)
			}
			close(release)
			got := make([]byte, 5)
			if _, err := io.ReadFull(slow, got); err != nil || string(got) != "block" {
				t.Fatalf("the blocked one: %q, %v", got, err)
			}

			// Idle: the watchdog parks.
			e := eng.(*loopEngine)
			deadline := time.Now().Add(5 * time.Second)
			for !e.wdParked.Load() {
				if time.Now().After(deadline) {
					t.Fatal("the watchdog did not park while the loops were idle")
				}
				time.Sleep(10 * time.Millisecond)
			}
			echo(quick, "x") // and a pass wakes it
		})
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
