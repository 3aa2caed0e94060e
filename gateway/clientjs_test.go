package gateway

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func serveClientJS(t *testing.T, method string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "/workerman-push.js", nil)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	ClientJSHandler().ServeHTTP(w, r)
	return w
}

func TestClientJSHandler(t *testing.T) {
	get := serveClientJS(t, http.MethodGet, nil)
	etag := get.Header().Get("ETag")
	if get.Code != http.StatusOK {
		t.Fatalf("GET: %d", get.Code)
	}
	if !bytes.Equal(get.Body.Bytes(), ClientJS()) || !bytes.Contains(get.Body.Bytes(), []byte("WorkermanPush")) {
		t.Fatalf("GET: the body is not client.js (%d bytes)", get.Body.Len())
	}
	if len(etag) < 3 || !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) {
		t.Fatalf("ETag %q is not a strong validator", etag)
	}

	for _, tc := range []struct {
		name, method string
		header       map[string]string
		status       int
		body         bool // the whole file
	}{
		{"GET", http.MethodGet, nil, http.StatusOK, true},
		{"HEAD", http.MethodHead, nil, http.StatusOK, false},
		{"If-None-Match", http.MethodGet, map[string]string{"If-None-Match": etag}, http.StatusNotModified, false},
		{"If-None-Match, HEAD", http.MethodHead, map[string]string{"If-None-Match": etag}, http.StatusNotModified, false},
		{"If-None-Match in a list", http.MethodGet, map[string]string{"If-None-Match": `"old", ` + etag}, http.StatusNotModified, false},
		{"If-None-Match weak", http.MethodGet, map[string]string{"If-None-Match": "W/" + etag}, http.StatusNotModified, false},
		{"If-None-Match *", http.MethodGet, map[string]string{"If-None-Match": "*"}, http.StatusNotModified, false},
		{"If-None-Match another version", http.MethodGet, map[string]string{"If-None-Match": `"old"`}, http.StatusOK, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serveClientJS(t, tc.method, tc.header)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			h := w.Header()
			if got := h.Get("ETag"); got != etag {
				t.Errorf("ETag %q, want %q", got, etag)
			}
			if got := h.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control %q", got)
			}
			if tc.status == http.StatusOK {
				if got := h.Get("Content-Type"); got != "text/javascript; charset=utf-8" {
					t.Errorf("Content-Type %q", got)
				}
				if got, want := h.Get("Content-Length"), len(clientJS); got != strconv.Itoa(want) {
					t.Errorf("Content-Length %q, want %d", got, want)
				}
			}
			if tc.body != (w.Body.Len() > 0) {
				t.Errorf("body of %d bytes", w.Body.Len())
			}
		})
	}
}

func TestClientJSHandlerRefusesOtherMethods(t *testing.T) {
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		w := serveClientJS(t, m, nil)
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: %d, want 405", m, w.Code)
		}
		if got := w.Header().Get("Allow"); got != "GET, HEAD" {
			t.Errorf("%s: Allow %q", m, got)
		}
		if w.Header().Get("ETag") != "" || bytes.Contains(w.Body.Bytes(), []byte("WorkermanPush")) {
			t.Errorf("%s: served the file", m)
		}
	}
}

func TestClientJSIsACopy(t *testing.T) {
	b := ClientJS()
	b[0] ^= 0xff
	if bytes.Equal(b, ClientJS()) {
		t.Fatal("changing what ClientJS returned changed the file")
	}
}
