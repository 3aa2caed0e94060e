package protocol

import (
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestWebSocketRequestParts(t *testing.T) {
	r := NewWebSocketRequest([]byte("GET /chat?room=1&uid=a%20b HTTP/1.1\r\n" +
		"Host: example.com\r\n" +
		"origin:  https://example.com \r\n" +
		"Cookie: sid=42; theme=dark\r\n" +
		"Sec-WebSocket-Protocol: chat, superchat\r\n" +
		"Sec-WebSocket-Protocol: v2\r\n" +
		"no colon here\r\n" +
		"\r\n" +
		"X-After: the end of the headers\r\n"))
	cases := []struct {
		name, got, want string
	}{
		{"method", r.Method(), "GET"},
		{"URI", r.URI(), "/chat?room=1&uid=a%20b"},
		{"path", r.Path(), "/chat"},
		{"query room", r.Query().Get("room"), "1"},
		{"query uid, unescaped", r.Query().Get("uid"), "a b"},
		{"host", r.Host(), "example.com"},
		{"origin, trimmed, key canonical", r.Origin(), "https://example.com"},
		{"header after the blank line", r.Header().Get("X-After"), ""},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if v, ok := r.Cookie("theme"); !ok || v != "dark" {
		t.Errorf("cookie theme: %q, %v", v, ok)
	}
	if got, want := r.Protocols(), []string{"chat", "superchat", "v2"}; !slices.Equal(got, want) {
		t.Errorf("protocols %q, want %q", got, want)
	}
	if n := len(r.Header()); n != 4 {
		t.Errorf("%d header keys, want 4: %v", n, r.Header())
	}
}

// A value an application keeps from a handshake (the user ID in the query,
// a header) keeps only its own bytes alive, not the whole request: 2,000
// kept IDs of requests carrying 8 KiB of cookies held 16 MiB when the
// parts were cut from one string of the request.
func TestWebSocketRequestKeptValuesDoNotPinTheRequest(t *testing.T) {
	const n = 2000
	cookie := strings.Repeat("x", 8<<10)
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	kept := make([]string, 0, 3*n)
	before := heap()
	for i := range n {
		r := NewWebSocketRequest([]byte("GET /push?uid=" + strings.Repeat("7", i%10+1) + " HTTP/1.1\r\nHost: example.com\r\nCookie: c=" + cookie + "\r\n\r\n"))
		kept = append(kept, r.Query().Get("uid"), r.Host(), r.Method())
	}
	grown := int64(heap()) - int64(before)
	runtime.KeepAlive(kept)
	if grown > 2<<20 {
		t.Fatalf("%d kept values of %d requests hold %d KiB", len(kept), n, grown>>10)
	}
}
