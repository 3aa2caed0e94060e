package workerman

import (
	"fmt"
	"strings"
	"testing"
)

// WORKERMAN_ENGINE picks the engine: a worker started with "goroutine"
// serves on the goroutine engine; an
// unknown value fails Listen with an error that names the variable.
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
	if got := fmt.Sprintf("%T", w.reactor().eng); got != "*engine.goEngine" {
		t.Fatalf("%s=goroutine: the worker runs on %s", EngineEnv, got)
	}
}
