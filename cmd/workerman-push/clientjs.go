package main

import (
	"bytes"
	"net/http"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/gateway"
)

// clientJS serves workerman-push.js (ETag, 304, Range, CORS: the gateway's
// handler decides).
var clientJS = gateway.ClientJSHandler()

// serveClientJS serves the JavaScript client on the client port.
func (s *server) serveClientJS(c *workerman.Connection, r *workerman.Request) {
	serveHandler(c, r, clientJS)
}

// serveHandler answers a request of the worker with an http.Handler. The
// handler's answer is buffered: it suits small responses such as the
// client script.
func serveHandler(c *workerman.Connection, r *workerman.Request, h http.Handler) {
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, r.Request)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	c.SendResponse(&workerman.Response{Status: rec.status, Header: rec.header, Body: rec.body.Bytes()})
}

// recorder is the http.ResponseWriter serveHandler gives the handler.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *recorder) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}
