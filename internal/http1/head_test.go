package http1

import (
	"net/http"
	"strings"
	"testing"

	"github.com/workerman-go/workerman/internal/codectest"
	"github.com/workerman-go/workerman/protocol"
)

// answerTo decodes request with a fresh codec, then encodes r as its
// answer, returning the bytes that would go out.
func answerTo(t *testing.T, request string, r *protocol.Response) string {
	t.Helper()
	codec := New(Config{}).NewCodec().(*Codec)
	conn := codectest.Conn{Max: 1 << 16}
	if _, err := codec.Decode(conn, []byte(request)); err != nil {
		t.Fatal(err)
	}
	out, err := codec.Encode(conn, nil, protocol.Message{Value: r})
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// A HEAD response announces the Content-Length a GET would carry (RFC 9110
// 9.3.2): the handler's own header when it answers without a body (as
// http.ServeContent does), the body's length otherwise; and never a body.
// Other requests keep announcing the length of the body they get.
func TestHeadKeepsContentLength(t *testing.T) {
	const head = "HEAD /workerman-push.js HTTP/1.1\r\nHost: x\r\n\r\n"
	const get = "GET /workerman-push.js HTTP/1.1\r\nHost: x\r\n\r\n"
	resp := func(body string, cl ...string) *protocol.Response {
		h := http.Header{"Content-Type": {"text/javascript; charset=utf-8"}}
		if len(cl) > 0 {
			h["Content-Length"] = cl
		}
		var b []byte
		if body != "" {
			b = []byte(body)
		}
		return &protocol.Response{Status: http.StatusOK, Header: h, Body: b}
	}
	cases := []struct {
		name, request string
		r             *protocol.Response
		length        string
		body          string
	}{
		{"HEAD, the handler's length, no body", head, resp("", "12345"), "12345", ""},
		{"HEAD, a body", head, resp("console.log(1)"), "14", ""},
		{"HEAD, a body and a header", head, resp("console.log(1)", "99"), "14", ""},
		{"HEAD, nothing", head, resp(""), "0", ""},
		{"HEAD, a bad header", head, resp("", "12x"), "0", ""},
		{"HEAD, a negative header", head, resp("", "-1"), "0", ""},
		{"GET, the header is not the body", get, resp("console.log(1)", "12345"), "14", "console.log(1)"},
		{"GET, a header and no body", get, resp("", "12345"), "0", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := answerTo(t, tc.request, tc.r)
			hdr, body, ok := strings.Cut(out, "\r\n\r\n")
			if !ok {
				t.Fatalf("no end of head in %q", out)
			}
			if n := strings.Count(hdr, "Content-Length:"); n != 1 {
				t.Fatalf("%d Content-Length headers in %q", n, hdr)
			}
			if !strings.Contains(hdr, "\r\nContent-Length: "+tc.length+"\r\n") {
				t.Fatalf("want Content-Length %s in %q", tc.length, hdr)
			}
			if body != tc.body {
				t.Fatalf("body %q, want %q", body, tc.body)
			}
		})
	}
}

// 204 and 304 have no body: no default Content-Type (a 304's headers
// replace the cached response's: a script's type would become text/html,
// and a browser with nosniff refuses it), no Content-Length, no body bytes
// even when the handler gave some.
func TestNoBodyStatuses(t *testing.T) {
	const get = "GET /workerman-push.js HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, status := range []int{http.StatusNotModified, http.StatusNoContent} {
		out := answerTo(t, get, &protocol.Response{Status: status,
			Header: http.Header{"Etag": {`"abc"`}, "Content-Length": {"22809"}}, Body: []byte("stray")})
		hdr, body, ok := strings.Cut(out, "\r\n\r\n")
		if !ok || body != "" {
			t.Fatalf("%d: %q", status, out)
		}
		if strings.Contains(hdr, "Content-Type") || strings.Contains(hdr, "Content-Length") || !strings.Contains(hdr, "Etag: \"abc\"") {
			t.Fatalf("%d: head %q", status, hdr)
		}
	}
	// A 200 keeps its default type and length.
	out := answerTo(t, get, &protocol.Response{Status: http.StatusOK, Body: []byte("hi")})
	if !strings.Contains(out, "Content-Type: text/html;charset=utf-8\r\n") || !strings.Contains(out, "Content-Length: 2\r\n") {
		t.Fatalf("200: %q", out)
	}
}
