package main

import (
	"net/http"

	"github.com/workerman-go/workerman/gateway"
)

// apiHandler is the gateway's HTTP API (POST /api/<method>), keyed with
// -api-key.
func (s *server) apiHandler() http.Handler {
	return s.g.APIHandler(gateway.APIOptions{Key: s.cfg.APIKey, Observe: s.observeAPI})
}
