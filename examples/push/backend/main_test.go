package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/gateway"
	"github.com/workerman-go/workerman/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

const wait = 10 * time.Second

// The backend, run against a gateway's HTTP API, binds a WebSocket client
// to a uid and a group and pushes to the uid, the group and everyone: the
// client receives all three, in order, after the welcome that named it. A
// second client, in no group and with no uid, gets only the push
// to everyone.
func TestBackendPushes(t *testing.T) {
	w := workerman.NewWorker("websocket://127.0.0.1:0")
	g, err := gateway.New(w, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g.Welcome = func(c gateway.ClientInfo) gateway.Message {
		b, _ := json.Marshal(map[string]string{"type": "welcome", "client_id": c.ID, "uid": c.UID})
		return gateway.Message{Data: b}
	}
	if err := w.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := w.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		g.Close()
	})
	api := httptest.NewServer(g.APIHandler(gateway.APIOptions{Key: "secret"}))
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		api.Close()
	})

	alice := dial(t, "ws://"+w.Addr().String()+"/")
	other := dial(t, "ws://"+w.Addr().String()+"/")
	var welcome struct {
		Type     string
		ClientID string `json:"client_id"`
	}
	if err := json.Unmarshal([]byte(alice.next(t)), &welcome); err != nil || welcome.Type != "welcome" || welcome.ClientID == "" {
		t.Fatalf("first frame: %+v (%v)", welcome, err)
	}
	other.next(t)

	var out strings.Builder
	t.Setenv("WORKERMAN_PUSH_API_KEY", "secret")
	if err := run([]string{"-api", api.URL, "-client", welcome.ClientID}, &out); err != nil {
		t.Fatalf("backend: %v\n%s", err, out.String())
	}
	for _, want := range []string{"hello alice", "hello news", "hello everyone"} {
		if got := alice.next(t); got != want {
			t.Fatalf("alice got %q, want %q", got, want)
		}
	}
	if got := other.next(t); got != "hello everyone" {
		t.Fatalf("the other client got %q, want only the push to everyone", got)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	methods := []string{"bindUid", "joinGroup", "sendToUid", "sendToGroup", "sendToAll"}
	if len(lines) != len(methods) {
		t.Fatalf("backend printed\n%s\nwant one line per call", out.String())
	}
	for i, m := range methods {
		if !strings.HasPrefix(lines[i], m+" {") || !strings.HasSuffix(lines[i], ": 200 {}") {
			t.Fatalf("backend printed %q, want the answer 200 {} to %s", lines[i], m)
		}
	}

	// push.sh does the same with curl.
	if _, err := exec.LookPath("curl"); err != nil {
		t.Log("no curl: push.sh not run")
	} else {
		cmd := exec.Command("sh", "../push.sh", welcome.ClientID)
		cmd.Env = append(os.Environ(), "API="+api.URL, "PUSH_UID=bob", "GROUP=room-7")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("push.sh: %v\n%s", err, b)
		}
		for _, want := range []string{"hello bob", "hello room-7", "hello everyone"} {
			if got := alice.next(t); got != want {
				t.Fatalf("alice got %q from push.sh, want %q", got, want)
			}
		}
		if got := other.next(t); got != "hello everyone" {
			t.Fatalf("the other client got %q from push.sh, want only the push to everyone", got)
		}
	}

	// A wrong key is an error that names the call and prints the answer.
	out.Reset()
	if err := run([]string{"-api", api.URL, "-key", "wrong"}, &out); err == nil || !strings.Contains(out.String(), "sendToUid") || !strings.Contains(out.String(), ": 401 ") {
		t.Fatalf("with a wrong key: %v\n%s", err, out.String())
	}
}

type client struct {
	in     chan string
	closed chan struct{}
}

func dial(t *testing.T, url string) *client {
	t.Helper()
	c := &client{in: make(chan string, 16), closed: make(chan struct{})}
	a := workerman.NewAsyncConnection(url)
	a.OnMessage = func(_ *workerman.AsyncConnection, data []byte) { c.in <- string(data) }
	a.OnClose = func(*workerman.AsyncConnection) { close(c.closed) }
	if err := a.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Close()
		select {
		case <-c.closed:
		case <-time.After(wait):
			t.Errorf("%s: never closed", url)
		}
	})
	return c
}

func (c *client) next(t *testing.T) string {
	t.Helper()
	select {
	case m := <-c.in:
		return m
	case <-c.closed:
		t.Fatal("the connection closed")
	case <-time.After(wait):
		t.Fatal("no message")
	}
	return ""
}
