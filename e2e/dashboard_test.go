package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
)

// The push server's dashboard in Chromium: it loads without a key, asks
// for it once (a wrong one is refused), shows a client connecting, and its
// form pushes to that client's uid.
func TestDashboard(t *testing.T) {
	b := browser(t)
	srv := startPushServer(t, "dashboard-key")
	u := newUser(t, b, "operator")

	u.do("open the dashboard", chromedp.Navigate(srv.api+"/"))
	u.until("be asked for the key", `document.body.dataset.state === "key" && !document.querySelector("#login").hidden`)
	if u.eval(`!document.querySelector("#dashboard").hidden`) {
		t.Fatal("the figures show before the key was given")
	}
	u.act("give a wrong key", `
		document.querySelector("#key").value = "not-the-key";
		document.querySelector("#key-submit").click()`)
	u.until("be told the key is wrong", `document.querySelector("#key-error").textContent === "wrong API key"`)
	u.act("give the key", fmt.Sprintf(`
		document.querySelector("#key").value = %q;
		document.querySelector("#key-submit").click()`, srv.key))
	u.until("see the dashboard", `document.body.dataset.state === "open"`)
	u.until("see no client", `document.querySelector("#clients").textContent === "0"`)

	// A client connects; the backend binds it to a uid.
	c, _ := gorillaDial(t, srv.clients, websocket.DefaultDialer)
	var welcome struct {
		ClientID string `json:"client_id"`
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if err := c.ReadJSON(&welcome); err != nil || welcome.ClientID == "" {
		t.Fatalf("welcome: %+v %v", welcome, err)
	}
	srv.call(t, "bindUid", map[string]any{"client_id": welcome.ClientID, "uid": "alice"})
	u.until("see the client", `document.querySelector("#clients").textContent === "1" &&
		document.querySelector("#uids").textContent === "1"`)
	u.until("see the node's row", `(() => {
		const rows = document.querySelectorAll("#nodes tr");
		return rows.length === 1 && rows[0].dataset.node === "dash" && rows[0].cells[2].textContent === "1";
	})()`)

	// The form pushes to alice.
	u.act("push to alice", `
		document.querySelector("#push-to").value = "uid";
		document.querySelector("#push-to").dispatchEvent(new Event("change"));
		document.querySelector("#push-target").value = "alice";
		document.querySelector("#push-message").value = "hello from the dashboard";
		document.querySelector("#push-send").click()`)
	typ, msg, err := c.ReadMessage()
	if err != nil || typ != websocket.TextMessage || string(msg) != "hello from the dashboard" {
		t.Fatalf("the client got %d %q %v, want the dashboard's push", typ, msg, err)
	}
	u.until("see the push answered", `document.querySelector("#push-result").dataset.state === "sent"`)
	u.until("see the delivery", `document.querySelector("#nodes tr").cells[8].textContent === "1"`)

	// A push that fails says why.
	u.act("push to a client that does not exist", `
		document.querySelector("#push-to").value = "client";
		document.querySelector("#push-target").value = "dash.nobody.1";
		document.querySelector("#push-send").click()`)
	u.until("be told it failed", `document.querySelector("#push-result").dataset.state === "failed" &&
		document.querySelector("#push-result").textContent.startsWith("sendToClient failed: ")`)

	// The key is asked once: a reload opens the dashboard at once.
	u.do("reload", chromedp.Reload())
	u.until("see the dashboard again", `document.body.dataset.state === "open" && document.querySelector("#clients").textContent === "1"`)
}

// pushServer is cmd/workerman-push running as a process.
type pushServer struct {
	clients string // ws://127.0.0.1:port/
	api     string // http://127.0.0.1:port
	key     string
}

var pushStarted = regexp.MustCompile(`msg="workerman-push started" clients=(\S+) js=\S+ api=(\S+)/api/ `)

// startPushServer builds cmd/workerman-push and runs it on loopback ports
// with key; it is stopped with SIGTERM when the test ends.
func startPushServer(t *testing.T, key string) *pushServer {
	t.Helper()
	return runPush(t, buildPush(t), "-listen", "websocket://127.0.0.1:0", "-api", "http://127.0.0.1:0",
		"-api-key", key, "-node-id", "dash", "-count", "1").pushServer
}

// buildPush builds cmd/workerman-push into a temporary directory.
func buildPush(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "workerman-push")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-C", "../cmd/workerman-push", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building workerman-push: %v\n%s", err, out)
	}
	return bin
}

// pushProc is a running workerman-push process.
type pushProc struct {
	*pushServer
	js     string // http://127.0.0.1:port/workerman-push.js
	stop   func() // SIGTERM, and the wait for a clean exit
	output *procOutput
}

var pushJS = regexp.MustCompile(`msg="workerman-push started" clients=\S+ js=(\S+) `)

// runPush runs bin with argv (which must give -api-key) until stop or the
// end of the test.
func runPush(t *testing.T, bin string, argv ...string) *pushProc {
	t.Helper()
	key := ""
	for i, a := range argv {
		if a == "-api-key" && i+1 < len(argv) {
			key = argv[i+1]
		}
	}
	cmd := exec.Command(bin, argv...)
	out := &procOutput{changed: make(chan struct{}, 1)}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() {
		exitErr = cmd.Wait()
		close(exited)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
				if exitErr != nil {
					t.Errorf("workerman-push: %v\n%s", exitErr, out.String())
				}
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				<-exited
				t.Errorf("workerman-push still running 30 s after SIGTERM")
			}
		})
	}
	t.Cleanup(stop)
	deadline := time.After(30 * time.Second)
	for {
		if m := pushStarted.FindStringSubmatch(out.String()); m != nil {
			js := pushJS.FindStringSubmatch(out.String())
			return &pushProc{pushServer: &pushServer{clients: m[1], api: m[2], key: key}, js: js[1], stop: stop, output: out}
		}
		select {
		case <-out.changed:
		case <-exited:
			t.Fatalf("workerman-push exited: %v\n%s", exitErr, out.String())
		case <-deadline:
			t.Fatalf("workerman-push did not start:\n%s", out.String())
		}
	}
}

// call is the backend: one API call with the key, which must answer 200.
func (s *pushServer) call(t *testing.T, method string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, s.api+"/api/"+method, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+s.key)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", method, resp.StatusCode, answer)
	}
}

// procOutput is a process's output, safe to read while it writes.
type procOutput struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func (l *procOutput) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf.Write(p)
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (l *procOutput) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
