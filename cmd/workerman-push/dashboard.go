package main

import (
	"bytes"
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/workerman-go/workerman/gateway"
)

// dashboardHTML is the dashboard: one page, its style and its script, no
// build step. It loads without a key; every figure it shows and every push
// it sends goes through the API with the key it asks for.
//
//go:embed dashboard.html
var dashboardHTML []byte

// serveDashboard serves GET / on the -api address.
func serveDashboard(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// The page talks to its own origin only, and no other site may frame
	// it (it holds the API key).
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "+
		"connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(dashboardHTML))
}

// nodeStatsMethod is the API method the dashboard polls: every live node's
// figures (nodeStats), this node's first. It is the push server's own,
// next to GatewayWorker's methods, and needs the key like them.
const nodeStatsMethod = "getNodeStats"

// nodeStatsQuery is what a node asks the others for their figures through
// the cluster's scatter-gather. It is not JSON, so a node that predates it
// answers with the gateway's "malformed request" and is shown as such.
var nodeStatsQuery = []byte("workerman-push:getNodeStats")

type nodeStatsAnswer struct {
	Nodes []nodeStats `json:"nodes"`
	// Partial says why some nodes are missing ("" when none is).
	Partial string `json:"partial,omitempty"`
}

// nodeStatsHandler serves POST /api/getNodeStats with the API's key,
// status codes and error bodies.
func (s *server) nodeStatsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, answer := s.serveNodeStats(w, r)
		s.observeAPI(nodeStatsMethod, status)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(answer)
	})
}

func (s *server) serveNodeStats(w http.ResponseWriter, r *http.Request) (int, any) {
	fail := func(status int, msg string) (int, any) { return status, map[string]string{"error": msg} }
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="workerman-push"`)
		return fail(http.StatusUnauthorized, "missing or wrong API key (Authorization: Bearer <key>)")
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return fail(http.StatusMethodNotAllowed, "use POST")
	}
	io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 1<<20)) // no parameters
	ans := nodeStatsAnswer{Nodes: []nodeStats{s.nodeStats()}}
	if s.broker != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		others, partial := s.otherNodesStats(ctx)
		ans.Nodes = append(ans.Nodes, others...)
		ans.Partial = partial
	}
	return http.StatusOK, ans
}

// otherNodesStats asks every other live node for its figures, sorted by
// node name, and says which could not be had.
func (s *server) otherNodesStats(ctx context.Context) ([]nodeStats, string) {
	answers, err := s.broker.Gather(ctx, nodeStatsQuery)
	if err != nil {
		return nil, fmt.Sprintf("other nodes not reached: %v", err)
	}
	var out []nodeStats
	unknown := 0
	for _, a := range answers {
		var st nodeStats
		if json.Unmarshal(a, &st) != nil || st.Node == "" {
			unknown++
			continue
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b nodeStats) int { return strings.Compare(a.Node, b.Node) })
	if unknown > 0 {
		return out, fmt.Sprintf("%d node(s) answered without figures (an older workerman-push?)", unknown)
	}
	return out, ""
}

// authorized checks the bearer key as the gateway's API does.
func (s *server) authorized(r *http.Request) bool {
	scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || s.cfg.APIKey == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(key)), []byte(s.cfg.APIKey)) == 1
}

// statsBroker is the cluster's broker with one addition: a node answers
// nodeStatsQuery with its own figures, so that any node's dashboard shows
// every node. Everything else passes through to the gateway.
type statsBroker struct {
	gateway.Broker
	stats func() (nodeStats, bool)
}

func (b *statsBroker) Start(node string, h gateway.Handler) error {
	return b.Broker.Start(node, statsHandler{h, b.stats})
}

type statsHandler struct {
	gateway.Handler
	stats func() (nodeStats, bool)
}

func (h statsHandler) HandleRequest(payload []byte) []byte {
	if !bytes.Equal(payload, nodeStatsQuery) {
		return h.Handler.HandleRequest(payload)
	}
	st, ok := h.stats()
	if !ok {
		return []byte("{}") // still starting
	}
	out, _ := json.Marshal(st)
	return out
}
