package workerman_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/workerman-go/workerman/internal/testcert"
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
	expectLines := func(want ...string) {
		t.Helper()
		for _, w := range want {
			select {
			case l := <-lines:
				if l != w {
					t.Fatalf("server printed %q, want %q", l, w)
				}
			case <-ctx.Done():
				t.Fatalf("server did not print %q", w)
			}
		}
	}
	expectLines("New connection established", "Message received from client: Hello, server!", "Connection closed")

	// A binary message that is not UTF-8 is answered in binary (a text
	// answer would be an invalid frame, and strict clients drop it), and
	// the terminal gets a quoted preview of at most 200 bytes.
	conn, _, _, err := ws.Dial(ctx, "ws://127.0.0.1:"+port+"/")
	if err != nil {
		t.Fatal(err)
	}
	bin := []byte{0xff, 0xfe, 0x00, 0x80}
	big := strings.Repeat("x", 1000)
	wsutil.WriteClientBinary(conn, bin)
	wsutil.WriteClientText(conn, []byte(big))
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for _, want := range []struct {
		op   ws.OpCode
		data string
	}{{ws.OpBinary, "Message received: " + string(bin)}, {ws.OpText, "Message received: " + big}} {
		data, op, err := wsutil.ReadServerData(conn)
		if err != nil || op != want.op || string(data) != want.data {
			t.Fatalf("reply op %v, %d bytes, err %v; want op %v, %d bytes", op, len(data), err, want.op, len(want.data))
		}
	}
	conn.Close()
	expectLines("New connection established", `Message received from client: "\xff\xfe\x00\x80"`,
		"Message received from client: "+strings.Repeat("x", 200)+"... (1000 bytes)", "Connection closed")
	server.Process.Signal(os.Interrupt)
	if err := server.Wait(); err != nil {
		t.Fatalf("server did not stop cleanly on SIGINT: %v", err)
	}

	// examples/echo over text://.
	port = freePort(t)
	startEcho(ctx, t, filepath.Join(dir, "echo"), "-listen", "text://127.0.0.1:"+port)
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

// examples/echo -cert -key serves WebSocket over TLS (wss://).
func TestExampleEchoOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the example binary")
	}
	dir := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "echo"), "./examples/echo").CombinedOutput(); err != nil {
		t.Fatalf("building examples/echo: %v\n%s", err, out)
	}
	certFile, keyFile, pool := testcert.Files(t, dir)
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if l := startEcho(ctx, t, filepath.Join(dir, "echo"), "-listen", "websocket://127.0.0.1:"+port, "-cert", certFile, "-key", keyFile); !strings.Contains(l, "over TLS") {
		t.Fatalf("echo started with %q", l)
	}
	d := ws.Dialer{TLSConfig: &tls.Config{RootCAs: pool}, Timeout: 10 * time.Second}
	c, _, _, err := d.Dial(ctx, "wss://127.0.0.1:"+port+"/")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for _, msg := range []string{"ping", strings.Repeat("x", 100<<10)} {
		if err := wsutil.WriteClientText(c, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		got, op, err := wsutil.ReadServerData(c)
		if err != nil || op != ws.OpText || string(got) != msg {
			t.Fatalf("echo of %d bytes: %d bytes, op %v, %v", len(msg), len(got), op, err)
		}
	}
}

// startEcho runs the built examples/echo with args until the test ends
// (SIGINT) and returns its start line.
func startEcho(ctx context.Context, t *testing.T, bin string, args ...string) string {
	t.Helper()
	echo := exec.CommandContext(ctx, bin, args...)
	echoErr, _ := echo.StderrPipe()
	if err := echo.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Process.Signal(os.Interrupt); echo.Wait() })
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
	case l := <-started:
		return l
	case <-ctx.Done():
		t.Fatal("echo never started")
		return ""
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
