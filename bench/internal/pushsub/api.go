// Package pushsub is the client side of the push benchmarks: WebSocket
// subscribers of one group (workerman-push) or channel (Centrifugo) held in
// separate subscriber processes, which count every group push and report
// when the last of their clients has it; and the HTTP API calls that set
// them up and push to them.
//
// A subscriber process is the benchmark's own binary run with a flag that
// calls RunSubscriber; the orchestrator starts it with StartSubscriber and
// talks to it over stdin/stdout (see RunSubscriber).
package pushsub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Kinds of server.
const (
	Ours       = "ours"       // cmd/workerman-push: the push layer's HTTP API
	Centrifugo = "centrifugo" // Centrifugo v6: its server API and client protocol (JSON)
)

// NewHTTPClient keeps up to conns connections alive to one host.
func NewHTTPClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// Call calls method of a server's HTTP API: ours speaks the push layer's
// API (POST /api/<method>, bearer key); Centrifugo's server API is POST
// /api/<method> with X-API-Key, and a failed command answers 200 with
// {"error":...}.
func Call(hc *http.Client, api, key, kind, method string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, api+"/api/"+method, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if kind == Centrifugo {
		req.Header.Set("X-API-Key", key)
	} else {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", method, resp.Status, bytes.TrimSpace(rb))
	}
	if kind == Centrifugo && bytes.Contains(rb, []byte(`"error"`)) {
		return fmt.Errorf("%s: %s", method, bytes.TrimSpace(rb))
	}
	return nil
}

// Message is the text of group push k, size bytes on the wire: it starts
// with the marker P#nnnnnn that subscriber processes count; k < 0 is a uid
// push, marked U#. Centrifugo's data is JSON, so its message is a JSON
// string of size bytes with the quotes.
func Message(kind string, k, size int) string {
	var s string
	if k >= 0 {
		s = fmt.Sprintf("P#%06d ", k)
	} else {
		s = "U# "
	}
	n := size
	if kind == Centrifugo {
		n -= 2
	}
	return s + strings.Repeat("x", max(0, n-len(s)))
}

// GroupPush is the API method and body of a push of msg to group: ours'
// sendToGroup, Centrifugo's publish to the channel of that name.
func GroupPush(kind, group, msg string) (string, any) {
	if kind == Centrifugo {
		return "publish", map[string]any{"channel": group, "data": msg}
	}
	return "sendToGroup", map[string]any{"group": group, "message": msg}
}

// UIDPush is the API method and body of a push of msg to uid: ours'
// sendToUid, Centrifugo's publish to the channel of that name.
func UIDPush(kind, uid, msg string) (string, any) {
	if kind == Centrifugo {
		return "publish", map[string]any{"channel": uid, "data": msg}
	}
	return "sendToUid", map[string]any{"uid": uid, "message": msg}
}
