package main

import (
	"net/http"
)

// apiHandler is the gateway's HTTP API (POST /api/<method>), keyed with
// -api-key.
//
// Until gateway.APIHandler lands, every call answers 503.
func (s *server) apiHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":"the HTTP API is not built in yet"}` + "\n"))
	})
}
