package workerman_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The quick start: examples/server and examples/client, built and run as a
// user would, reproduce the seed's exchange.
func TestExamplesServerAndClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the example binaries")
	}
	dir := t.TempDir()
	for _, name := range []string{"server", "client", "echo"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./examples/"+name).CombinedOutput()
		if err != nil {
			t.Fatalf("building examples/%s: %v\n%s", name, err, out)
		}
	}
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	server := exec.CommandContext(ctx, filepath.Join(dir, "server"), "-listen", "websocket://127.0.0.1:"+port)
	serverOut, _ := server.StdoutPipe()
	server.Stderr = os.Stderr
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(serverOut)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case l := <-lines:
		if !strings.HasPrefix(l, "Server listening on websocket://127.0.0.1:"+port) {
			t.Fatalf("server started with %q", l)
		}
	case <-ctx.Done():
		t.Fatal("server never started")
	}

	out, err := exec.CommandContext(ctx, filepath.Join(dir, "client"), "-connect", "ws://127.0.0.1:"+port, "-n", "1").Output()
	if err != nil {
		t.Fatalf("client: %v\n%s", err, out)
	}
	want := "Connected to server\nMessage received from server: Message received: Hello, server!\nConnection closed\n"
	if string(out) != want {
		t.Fatalf("client printed:\n%s\nwant:\n%s", out, want)
	}
	for _, w := range []string{"New connection established", "Message received from client: Hello, server!", "Connection closed"} {
		select {
		case l := <-lines:
			if l != w {
				t.Fatalf("server printed %q, want %q", l, w)
			}
		case <-ctx.Done():
			t.Fatalf("server did not print %q", w)
		}
	}
	server.Process.Signal(os.Interrupt)
	if err := server.Wait(); err != nil {
		t.Fatalf("server did not stop cleanly on SIGINT: %v", err)
	}

	// examples/echo over text://.
	port = freePort(t)
	echo := exec.CommandContext(ctx, filepath.Join(dir, "echo"), "-listen", "text://127.0.0.1:"+port)
	echoErr, _ := echo.StderrPipe()
	if err := echo.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { echo.Process.Signal(os.Interrupt); echo.Wait() }()
	started := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(echoErr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				started <- sc.Text()
			}
		}
	}()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("echo never started")
	}
	c, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping\n"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, _ := bufio.NewReader(c).ReadString('\n'); got != "ping\n" {
		t.Fatalf("echo: %q", got)
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}
