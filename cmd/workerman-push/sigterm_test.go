package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// The binary, stopped by SIGTERM while a client has not yet read what was
// pushed to it: /healthz and /readyz say 503 while it drains, the client
// then reads every push that was queued for it, in order, then a close
// frame with 1001; the process exits 0 once the client answered the close.
func TestSIGTERM(t *testing.T) {
	bin := sigtermBinary(t)
	cmd := exec.Command(bin, "-listen", "websocket://127.0.0.1:0", "-api", "http://127.0.0.1:0",
		"-api-key", "k", "-ping-interval", "0", "-count", "2")
	out := newLogBuf()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		io.Copy(out, stdout)
	}()
	exited := make(chan struct{})
	var exitErr error
	go func() {
		<-copied // Wait closes the pipe: read it all first
		exitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	m := out.waitLine(t, startedLine)
	n := &node{clients: m[1], api: m[2], key: "k", log: out}

	c := dial(t, n, "")
	// Push numbered messages to c, which does not read, until its queue is
	// full and one is dropped: then the server holds output that only the
	// client's reading can drain, and the stop has to wait for it.
	pad := strings.Repeat("x", 16<<10)
	pushed := 0
	for dropped := 0.0; dropped == 0; dropped = value(t, scrape(t, n), "workerman_push_dropped_total") {
		for range 16 {
			pushed++
			n.mustCall(t, "sendToClient", map[string]any{"client_id": c.id, "message": fmt.Sprintf("%d:%s", pushed, pad)})
		}
		if pushed > 4096 {
			t.Fatal("64 MiB pushed to a client that does not read, and nothing dropped")
		}
	}
	queued := int(value(t, scrape(t, n), "workerman_push_deliveries_total"))
	if queued == 0 || queued >= pushed {
		t.Fatalf("%d of %d pushes queued", queued, pushed)
	}

	t.Logf("%d of %d pushes queued for the client when SIGTERM comes", queued, pushed)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	out.waitLine(t, regexp.MustCompile(`msg="workerman-push stopping" connections=1 timeout=10s`))
	for _, path := range []string{"/healthz", "/readyz"} {
		if got := httpGet(t, base(n)+path); got != http.StatusServiceUnavailable {
			t.Fatalf("GET %s while draining: %d, want 503", path, got)
		}
	}

	// Now c reads: every queued push, in order, then the close.
	c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, last := 0, 0
	for {
		h, err := ws.ReadHeader(c.r)
		if err != nil {
			t.Fatalf("after %d pushes: %v", got, err)
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(c.r, payload); err != nil {
			t.Fatalf("after %d pushes: %v", got, err)
		}
		if h.OpCode == ws.OpClose {
			code, _ := ws.ParseCloseFrameData(payload)
			if code != ws.StatusGoingAway {
				t.Fatalf("close code %d, want 1001", code)
			}
			// Answer it, as a client completing the closing handshake.
			ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(code, ""))))
			break
		}
		seq, _, _ := strings.Cut(string(payload), ":")
		i, err := strconv.Atoi(seq)
		if h.OpCode != ws.OpText || err != nil || i <= last {
			t.Fatalf("after push %d: %v frame %.20q", last, h.OpCode, payload)
		}
		got++
		last = i
	}
	if got != queued {
		t.Fatalf("the client read %d pushes, %d were queued before SIGTERM", got, queued)
	}
	// What follows the close frame is the end of the stream.
	if n, err := c.r.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("after the close frame: %d bytes, %v", n, err)
	}

	select {
	case <-exited:
		if exitErr != nil {
			t.Fatalf("exit: %v\n%s", exitErr, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("still running 20 s after SIGTERM:\n%s", out.String())
	}
	if !regexp.MustCompile(`msg="workerman-push stopped" took=\S+\n`).MatchString(out.String()) {
		t.Fatalf("no clean stop line:\n%s", out.String())
	}
}

// sigtermBinary builds the command into the test's directory.
func sigtermBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "workerman-push")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return bin
}
