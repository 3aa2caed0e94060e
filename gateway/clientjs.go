package gateway

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
	"time"
)

// clientJS is client.js, the browser client of the push layer.
//
//go:embed client.js
var clientJS []byte

// clientJSETag is a strong validator: a hash of the file, so that it
// changes exactly when the file does, across builds and nodes alike.
var clientJSETag = func() string {
	sum := sha256.Sum256(clientJS)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
}()

// ClientJS returns workerman-push.js, the browser client of the push layer:
// plain JavaScript with no dependencies that defines the global
// WorkermanPush (connect to a list of URLs with a token, the welcome with
// the client ID, pushes as strings or ArrayBuffers, reconnecting with
// back-off). Its API is documented at the top of the file. The slice is a
// copy: the caller may keep or change it.
func ClientJS() []byte { return bytes.Clone(clientJS) }

// ClientJSHandler serves workerman-push.js (see ClientJS) to GET and HEAD
// requests, whatever their path: mount it where pages load it from, as
// the push server does at /workerman-push.js. It sends
// "Content-Type: text/javascript; charset=utf-8", a strong ETag and
// "Cache-Control: no-cache" (browsers keep the file and revalidate it on
// each use, so a page never runs a client older than its server, at the
// cost of a 304), answers If-None-Match with 304 Not Modified and Range
// requests with 206, and allows cross-origin use (the file is public, and
// <script crossorigin integrity=...> needs CORS). Other methods get 405.
// The handler is safe for concurrent use.
func ClientJSHandler() http.Handler { return clientJSHandler{} }

type clientJSHandler struct{}

func (clientJSHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("ETag", clientJSETag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Access-Control-Allow-Origin", "*")
	// ServeContent answers If-None-Match, If-Match, Range and HEAD; no
	// modification time: the ETag is the only validator.
	http.ServeContent(w, r, "workerman-push.js", time.Time{}, bytes.NewReader(clientJS))
}
