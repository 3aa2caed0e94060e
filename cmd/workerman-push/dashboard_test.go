package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// GET / on the -api address is the dashboard, with no key; it reads and
// pushes through the API (the browser test drives it: e2e/dashboard_test.go).
func TestDashboardPage(t *testing.T) {
	n := startCfg(t, args(), nil)
	resp, err := httpc.Get(base(n) + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" ||
		!bytes.Equal(body, dashboardHTML) {
		t.Fatalf("GET /: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Fatalf("GET /: Content-Security-Policy %q", csp)
	}
	if !bytes.Contains(body, []byte(`"api/" + method`)) || bytes.Contains(body, []byte(n.key)) {
		t.Fatal("the page does not call the API, or carries the key")
	}
	for path, want := range map[string]int{"/other": http.StatusNotFound, "/index.html": http.StatusNotFound} {
		if got := httpGet(t, base(n)+path); got != want {
			t.Errorf("GET %s: %d, want %d", path, got, want)
		}
	}
}
