package workerman

import (
	"runtime"
	"strings"
	"testing"

	"github.com/workerman-go/workerman/internal/engine"
)

// WORKERMAN_ENGINE picks the engine: a worker started with "goroutine"
// serves on the goroutine engine, one started with "io_uring" on the
// io_uring engine (on Linux; the epoll engine where io_uring is refused,
// the goroutine engine elsewhere); an unknown value fails Listen with an
// error that names the variable.
func TestEngineEnv(t *testing.T) {
	t.Setenv(EngineEnv, "bogus")
	w := NewWorker("tcp://127.0.0.1:0")
	if err := w.Listen(); err == nil || !strings.Contains(err.Error(), EngineEnv) {
		t.Fatalf("Listen with %s=bogus: %v", EngineEnv, err)
	}
	t.Setenv(EngineEnv, "goroutine")
	w = &Worker{URI: "text://127.0.0.1:0"}
	w.OnMessage = func(c *Connection, data []byte) { c.Send(data) }
	addr := serve(t, w)
	c := newClient(t, "text://"+addr)
	c.connect(t)
	c.SendString("hello")
	c.expect(t, "hello")
	if got := w.reactor().eng.Name(); got != "goroutine" {
		t.Fatalf("%s=goroutine: the worker runs on %s", EngineEnv, got)
	}

	t.Setenv(EngineEnv, "io_uring")
	w = &Worker{URI: "text://127.0.0.1:0"}
	w.OnMessage = func(c *Connection, data []byte) { c.Send(data) }
	addr = serve(t, w)
	c = newClient(t, "text://"+addr)
	c.connect(t)
	c.SendString("hello")
	c.expect(t, "hello")
	want := "goroutine"
	if runtime.GOOS == "linux" {
		want = "io_uring"
		if eng, err := engine.NewUring(engine.Config{}); err != nil {
			want = "epoll" // refused here: the fallback
		} else {
			eng.Stop()
		}
	}
	if got := w.reactor().eng.Name(); got != want {
		t.Fatalf("%s=io_uring: the worker runs on %s, want %s", EngineEnv, got, want)
	}
}
