package main

import (
	"net/http"

	"github.com/workerman-go/workerman"
)

// serveClientJS serves the JavaScript client.
func (s *server) serveClientJS(c *workerman.Connection, r *workerman.Request) {
	c.SendResponse(workerman.NewResponse(http.StatusNotFound, []byte("the JS client is not built into this binary yet\n")).
		WithHeader("Content-Type", "text/plain; charset=utf-8"))
}
