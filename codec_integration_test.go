package workerman

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Each codec must reassemble packets split byte by byte and split many
// packets arriving in one write, on both engines.
func TestCodecsSplitAndCoalesced(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		t.Run("text", func(t *testing.T) {
			addr := serve(t, echoWorker("text", goroutines))
			c := dial(t, addr)
			r := bufio.NewReader(c)
			for _, b := range []byte("split byte by byte\r\n") {
				if _, err := c.Write([]byte{b}); err != nil {
					t.Fatal(err)
				}
			}
			if got := readLine(t, r, c); got != "split byte by byte\n" {
				t.Fatalf("got %q, want the line without \\r", got)
			}
			var batch strings.Builder
			for i := range 500 {
				fmt.Fprintf(&batch, "line %d\n", i)
			}
			c.Write([]byte(batch.String()))
			for i := range 500 {
				if got, want := readLine(t, r, c), fmt.Sprintf("line %d\n", i); got != want {
					t.Fatalf("message %d: got %q, want %q", i, got, want)
				}
			}
		})
		t.Run("frame", func(t *testing.T) {
			addr := serve(t, echoWorker("frame", goroutines))
			c := dial(t, addr)
			for _, b := range frameOf("byte by byte") {
				c.Write([]byte{b})
			}
			if got := readN(t, c, 16); !bytes.Equal(got, frameOf("byte by byte")) {
				t.Fatalf("got % x", got)
			}
			var batch []byte
			for i := range 500 {
				batch = append(batch, frameOf(fmt.Sprintf("frame %03d", i))...)
			}
			c.Write(batch)
			if got := readN(t, c, len(batch)); !bytes.Equal(got, batch) {
				t.Fatal("pipelined frames came back different")
			}
			// An empty payload is a valid 4-byte frame.
			c.Write(frameOf(""))
			if got := readN(t, c, 4); !bytes.Equal(got, frameOf("")) {
				t.Fatalf("empty frame: got % x", got)
			}
		})
		t.Run("tcp", func(t *testing.T) {
			addr := serve(t, echoWorker("tcp", goroutines))
			c := dial(t, addr)
			payload := bytes.Repeat([]byte("0123456789"), 100_000) // 1 MB over many reads
			go c.Write(payload)
			if got := readN(t, c, len(payload)); !bytes.Equal(got, payload) {
				t.Fatal("raw echo differs")
			}
		})
		t.Run("unix", func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "echo.sock")
			w := echoWorker("text", goroutines)
			w.URI = "unix://" + path
			w.Protocol = "text"
			serve(t, w)
			c := dial(t, path)
			r := bufio.NewReader(c)
			c.Write([]byte("over unix\n"))
			if got := readLine(t, r, c); got != "over unix\n" {
				t.Fatalf("got %q", got)
			}
			var conn *Connection
			for _, x := range w.Connections() {
				conn = x
			}
			if conn == nil || conn.Transport() != "unix" || conn.RemoteIP() != "" {
				t.Fatalf("unix connection: %+v", conn)
			}
		})
	})
}

// A Workerman Frame peer computes the length over header and payload.
func TestFrameIsWorkermanCompatible(t *testing.T) {
	w := &Worker{URI: "frame://127.0.0.1:0"}
	got := make(chan string, 1)
	w.OnMessage = func(c *Connection, data []byte) {
		got <- string(data)
		c.Send([]byte("pong"))
	}
	c := dial(t, serve(t, w))
	// pack('N', 4 + strlen('ping')) . 'ping'
	c.Write([]byte{0, 0, 0, 8, 'p', 'i', 'n', 'g'})
	if s := wait(t, got, "message"); s != "ping" {
		t.Fatalf("decoded %q", s)
	}
	if b := readN(t, c, 8); !bytes.Equal(b, []byte{0, 0, 0, 8, 'p', 'o', 'n', 'g'}) {
		t.Fatalf("encoded % x", b)
	}
}

func TestOversizeAndMalformedInput(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		cases := []struct {
			name   string
			scheme string
			send   []byte
			want   error
		}{
			{name: "text line over MaxPackageSize", scheme: "text", send: bytes.Repeat([]byte("x"), 2000), want: ErrPackageTooLarge},
			{name: "text line with newline over MaxPackageSize", scheme: "text", send: append(bytes.Repeat([]byte("y"), 1500), '\n'), want: ErrPackageTooLarge},
			{name: "frame announcing more than MaxPackageSize", scheme: "frame", send: []byte{0, 0, 0x10, 0, 'a'}, want: ErrPackageTooLarge},
			{name: "frame shorter than its header", scheme: "frame", send: []byte{0, 0, 0, 3}, want: ErrBadPacket},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				w := echoWorker(tc.scheme, goroutines)
				w.MaxPackageSize = 1024
				ev := newEvents()
				ev.attach(w) // echoWorker already echoes
				addr := serve(t, w)

				good := dial(t, addr)
				bad := dial(t, addr)
				bad.Write(tc.send)
				err := wait(t, ev.errCh, "OnError")
				if !errors.Is(err, tc.want) {
					t.Fatalf("OnError(%v), want %v", err, tc.want)
				}
				expectEOF(t, bad)
				bad.Close()
				wait(t, ev.closed, "OnClose")

				// The other connection is still served.
				msg := []byte("still here\n")
				if tc.scheme == "frame" {
					msg = frameOf("still here")
				}
				good.Write(msg)
				if got := readN(t, good, len(msg)); !bytes.Equal(got, msg) {
					t.Fatalf("good connection got %q", got)
				}
			})
		}
	})
}

// Packets that precede bad bytes in the same read are delivered and answered
// before the connection closes: nothing accepted is lost.
func TestPacketsBeforeBadInputAreServed(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := echoWorker("frame", goroutines)
		ev := newEvents()
		ev.attach(w) // echoWorker already echoes
		c := dial(t, serve(t, w))
		in := append(append(frameOf("one"), frameOf("two")...), 0, 0, 0, 1)
		c.Write(in)
		rest := expectEOF(t, c)
		if want := append(frameOf("one"), frameOf("two")...); !bytes.Equal(rest, want) {
			t.Fatalf("before the close got % x, want % x", rest, want)
		}
		if err := wait(t, ev.errCh, "OnError"); !errors.Is(err, ErrBadPacket) {
			t.Fatalf("OnError(%v)", err)
		}
	})
}

func TestIdleTimeout(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		w := echoWorker("text", goroutines)
		w.IdleTimeout = 200 * time.Millisecond
		ev := newEvents()
		ev.attach(w) // echoWorker already echoes
		addr := serve(t, w)
		idle := dial(t, addr)
		busy := dial(t, addr)
		r := bufio.NewReader(busy)
		start := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			expectEOF(t, idle)
		}()
		// Keep the busy one alive past the timeout.
		for time.Since(start) < 600*time.Millisecond {
			busy.Write([]byte("ping\n"))
			readLine(t, r, busy)
			select {
			case <-done:
			case <-time.After(50 * time.Millisecond):
			}
		}
		wait(t, done, "idle connection closed")
		if el := time.Since(start); el < 200*time.Millisecond {
			t.Fatalf("closed after %v, before the timeout", el)
		}
		if err := wait(t, ev.errCh, "OnError"); !errors.Is(err, ErrIdleTimeout) {
			t.Fatalf("OnError(%v)", err)
		}
		busy.Write([]byte("alive\n"))
		if got := readLine(t, r, busy); got != "alive\n" {
			t.Fatalf("busy connection: %q", got)
		}
	})
}
