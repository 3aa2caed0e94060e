package workerman

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/workerman-go/workerman/internal/leakcheck"
)

// httpWorker answers every request with a JSON summary of what it parsed.
func httpWorker(goroutines bool) *Worker {
	w := &Worker{URI: "http://127.0.0.1:0", goroutines: goroutines, MaxPackageSize: 1 << 20}
	w.OnRequest = func(c *Connection, r *Request) {
		var j map[string]any
		r.JSON(&j)
		summary := map[string]any{
			"method": r.Method, "path": r.Path(), "q": r.Get("q", "none"), "form": r.Post("name"),
			"cookie": r.CookieValue("sid"), "agent": r.HeaderValue("X-Agent"), "body": string(r.RawBody()), "json": j["k"],
		}
		b, _ := json.Marshal(summary)
		resp := NewResponse(200, b).WithHeader("Content-Type", "application/json")
		if sid := r.CookieValue("sid"); sid != "" {
			resp.SetCookie(&http.Cookie{Name: "seen", Value: sid, HttpOnly: true})
		}
		c.SendResponse(resp)
	}
	return w
}

func readHTTP(t *testing.T, r *bufio.Reader, c net.Conn) (*http.Response, map[string]any) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(body, &m)
	return resp, m
}

func TestHTTPRequestParsing(t *testing.T) {
	leakcheck.Check(t)
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	mw.WriteField("name", "multi")
	mw.Close()
	cases := []struct {
		name string
		req  string
		want map[string]any
	}{
		{name: "GET with query", req: "GET /a/b?q=42 HTTP/1.1\r\nHost: x\r\nX-Agent: test\r\nCookie: sid=abc; x=1\r\n\r\n",
			want: map[string]any{"method": "GET", "path": "/a/b", "q": "42", "agent": "test", "cookie": "abc"}},
		{name: "POST urlencoded", req: "POST /f HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10\r\n\r\nname=alice",
			want: map[string]any{"method": "POST", "form": "alice", "body": "name=alice", "q": "none"}},
		{name: "POST JSON", req: "POST /j HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{\"k\":\"v\"}\n",
			want: map[string]any{"json": "v"}},
		{name: "multipart", req: "POST /m HTTP/1.1\r\nHost: x\r\nContent-Type: " + mw.FormDataContentType() + "\r\nContent-Length: " + strconv.Itoa(mp.Len()) + "\r\n\r\n" + mp.String(),
			want: map[string]any{"form": "multi"}},
		{name: "chunked body", req: "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n",
			want: map[string]any{"body": "hello, world"}},
		{name: "PUT DELETE PATCH OPTIONS", req: "PATCH /p HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", want: map[string]any{"method": "PATCH"}},
	}
	engines(t, func(t *testing.T, goroutines bool) {
		addr := serve(t, httpWorker(goroutines))
		for _, tc := range cases {
			for _, split := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/split=%v", tc.name, split), func(t *testing.T) {
					c := dial(t, addr)
					if split {
						for i := range len(tc.req) {
							c.Write([]byte{tc.req[i]})
						}
					} else {
						c.Write([]byte(tc.req))
					}
					resp, got := readHTTP(t, bufio.NewReader(c), c)
					if resp.StatusCode != 200 {
						t.Fatalf("status %d", resp.StatusCode)
					}
					for k, v := range tc.want {
						if got[k] != v {
							t.Fatalf("%s = %v, want %v (all: %v)", k, got[k], v, got)
						}
					}
					if sid, ok := tc.want["cookie"]; ok {
						if set := resp.Header.Get("Set-Cookie"); set != "seen="+sid.(string)+"; HttpOnly" {
							t.Fatalf("Set-Cookie: %q", set)
						}
					}
				})
			}
		}
		t.Run("pipelined", func(t *testing.T) {
			c := dial(t, addr)
			var all string
			for i := range 20 {
				all += fmt.Sprintf("GET /p?q=%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
			}
			c.Write([]byte(all))
			r := bufio.NewReader(c)
			for i := range 20 {
				_, got := readHTTP(t, r, c)
				if got["q"] != strconv.Itoa(i) {
					t.Fatalf("response %d answers %v", i, got["q"])
				}
			}
		})
	})
}

func TestHTTPLimitsAndErrors(t *testing.T) {
	leakcheck.Check(t)
	cases := []struct {
		name   string
		req    string
		status int
	}{
		{name: "header block over 16 KiB", status: 431, req: "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 17<<10)},
		{name: "header block over 16 KiB, complete", status: 431, req: "GET / HTTP/1.1\r\nX-Big: " + strings.Repeat("a", 17<<10) + "\r\n\r\n"},
		{name: "malformed request line", status: 400, req: "GET /\r\n\r\n"},
		{name: "unknown method", status: 400, req: "BREW /pot HTTP/1.1\r\n\r\n"},
		{name: "garbage", status: 400, req: "\x00\x01\x02 hello\r\n\r\n"},
		{name: "HTTP/2.0", status: 505, req: "GET / HTTP/2.0\r\nHost: x\r\n\r\n"},
		{name: "malformed header", status: 400, req: "GET / HTTP/1.1\r\nNoColonHere\r\n\r\n"},
		{name: "both lengths", status: 400, req: "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{name: "bad Content-Length", status: 400, req: "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"},
		{name: "bad chunk size", status: 400, req: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
		{name: "body over MaxPackageSize", status: 413, req: "POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n"},
		{name: "chunked body over MaxPackageSize", status: 413, req: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("10000\r\n"+strings.Repeat("z", 0x10000)+"\r\n", 17)},
	}
	engines(t, func(t *testing.T, goroutines bool) {
		w := httpWorker(goroutines)
		errs := make(chan error, 32)
		w.OnError = func(c *Connection, err error) { errs <- err }
		addr := serve(t, w)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c := dial(t, addr)
				go c.Write([]byte(tc.req))
				resp, _ := readHTTP(t, bufio.NewReader(c), c)
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
				}
				if !resp.Close {
					t.Fatal("error response without Connection: close")
				}
				expectEOF(t, c)
				var he *HTTPError
				err := wait(t, errs, "OnError")
				if errors.As(err, &he) && he.Status != tc.status {
					t.Fatalf("OnError(%v)", err)
				}
			})
		}
		// Still serving.
		c := dial(t, addr)
		c.Write([]byte("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"))
		if resp, got := readHTTP(t, bufio.NewReader(c), c); resp.StatusCode != 200 || got["path"] != "/ok" {
			t.Fatalf("after the bad ones: %d %v", resp.StatusCode, got)
		}
	})
}

func TestHTTPKeepAlive(t *testing.T) {
	engines(t, func(t *testing.T, goroutines bool) {
		addr := serve(t, httpWorker(goroutines))
		cases := []struct {
			name  string
			req   string
			alive bool
		}{
			{name: "1.1 default", req: "GET / HTTP/1.1\r\nHost: x\r\n\r\n", alive: true},
			{name: "1.1 close", req: "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", alive: false},
			{name: "1.0 default", req: "GET / HTTP/1.0\r\n\r\n", alive: false},
			{name: "1.0 keep-alive", req: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", alive: true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c := dial(t, addr)
				r := bufio.NewReader(c)
				c.Write([]byte(tc.req))
				resp, _ := readHTTP(t, r, c)
				if resp.Close == tc.alive {
					t.Fatalf("response says close=%v, want keep-alive=%v", resp.Close, tc.alive)
				}
				if !tc.alive {
					expectEOF(t, c)
					return
				}
				c.Write([]byte(tc.req))
				if resp, _ := readHTTP(t, r, c); resp.StatusCode != 200 {
					t.Fatal("second request on a kept-alive connection failed")
				}
			})
		}
		// Go's own client reuses the connection.
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		defer client.CloseIdleConnections()
		for range 3 {
			resp, err := client.Get("http://" + addr + "/x?q=1")
			if err != nil {
				t.Fatal(err)
			}
			io.ReadAll(resp.Body)
			resp.Body.Close()
		}
	})
}

func TestHTTPFilesAndRanges(t *testing.T) {
	leakcheck.Check(t)
	dir := t.TempDir()
	content := make([]byte, 5<<20)
	rand.Read(content)
	path := filepath.Join(dir, "big.bin")
	os.WriteFile(path, content, 0o644)
	os.WriteFile(filepath.Join(dir, "page.html"), []byte("<h1>hi</h1>"), 0o644)
	engines(t, func(t *testing.T, goroutines bool) {
		w := &Worker{URI: "http://127.0.0.1:0", goroutines: goroutines, MaxSendBufferSize: 256 << 10}
		w.OnRequest = func(c *Connection, r *Request) {
			c.SendResponse(NewFileResponse(filepath.Join(dir, filepath.Base(r.Path()))))
		}
		addr := serve(t, w)
		get := func(path string, h http.Header) (*http.Response, []byte) {
			req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
			for k, v := range h {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			return resp, b
		}
		resp, b := get("/big.bin", nil)
		if resp.StatusCode != 200 || !bytes.Equal(b, content) || resp.Header.Get("Accept-Ranges") != "bytes" {
			t.Fatalf("whole file: %d, %d bytes", resp.StatusCode, len(b))
		}
		for _, rc := range []struct {
			rng        string
			start, end int
		}{{"bytes=0-99", 0, 99}, {"bytes=1000-", 1000, len(content) - 1}, {"bytes=-500", len(content) - 500, len(content) - 1}, {"bytes=100-99999999", 100, len(content) - 1}} {
			resp, b := get("/big.bin", http.Header{"Range": {rc.rng}})
			want := fmt.Sprintf("bytes %d-%d/%d", rc.start, rc.end, len(content))
			if resp.StatusCode != 206 || resp.Header.Get("Content-Range") != want || !bytes.Equal(b, content[rc.start:rc.end+1]) {
				t.Fatalf("%s: %d %q, %d bytes", rc.rng, resp.StatusCode, resp.Header.Get("Content-Range"), len(b))
			}
		}
		if resp, _ := get("/big.bin", http.Header{"Range": {"bytes=999999999-"}}); resp.StatusCode != 416 {
			t.Fatalf("unsatisfiable range: %d", resp.StatusCode)
		}
		if resp, b := get("/page.html", nil); resp.Header.Get("Content-Type") != "text/html; charset=utf-8" || string(b) != "<h1>hi</h1>" {
			t.Fatalf("page: %q %q", resp.Header.Get("Content-Type"), b)
		}
		if resp, _ := get("/missing", nil); resp.StatusCode != 404 {
			t.Fatalf("missing file: %d", resp.StatusCode)
		}
		req, _ := http.NewRequest("HEAD", "http://"+addr+"/big.bin", nil)
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.ContentLength != int64(len(content)) {
			t.Fatalf("HEAD: %v %v", resp, err)
		}
		// Pipelined behind a streaming file, a second request waits its turn.
		c := dial(t, addr)
		c.Write([]byte("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /page.html HTTP/1.1\r\nHost: x\r\n\r\n"))
		r := bufio.NewReader(c)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		first, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(first.Body); !bytes.Equal(b, content) {
			t.Fatalf("first pipelined response: %d bytes", len(b))
		}
		second, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(second.Body); string(b) != "<h1>hi</h1>" {
			t.Fatalf("second pipelined response %q", b)
		}
	})
}

func TestHTTPStreaming(t *testing.T) {
	leakcheck.Check(t)
	w := &Worker{URI: "http://127.0.0.1:0"}
	w.OnRequest = func(c *Connection, r *Request) {
		switch r.Path() {
		case "/events":
			c.SendResponse(NewResponse(200, nil).WithHeader("Content-Type", "text/event-stream").WithHeader("Cache-Control", "no-cache"))
			for i := range 3 {
				c.SendEvent(ServerSentEvent{Event: "tick", ID: strconv.Itoa(i), Data: fmt.Sprintf("line %d\nsecond line", i)})
			}
			c.Close()
		case "/chunked":
			c.SendResponse(NewResponse(200, nil).WithHeader("Transfer-Encoding", "chunked"))
			for _, part := range []string{"alpha ", "beta ", "gamma"} {
				c.SendChunk([]byte(part))
			}
			c.SendChunk(nil)
		}
	}
	addr := serve(t, w)
	resp, err := http.Get("http://" + addr + "/events")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	want := "id: 0\nevent: tick\ndata: line 0\ndata: second line\n\nid: 1\nevent: tick\ndata: line 1\ndata: second line\n\nid: 2\nevent: tick\ndata: line 2\ndata: second line\n\n"
	if resp.Header.Get("Content-Type") != "text/event-stream" || string(b) != want {
		t.Fatalf("SSE %q:\n%s", resp.Header.Get("Content-Type"), b)
	}
	resp, err = http.Get("http://" + addr + "/chunked")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	if string(b) != "alpha beta gamma" || len(resp.TransferEncoding) != 1 {
		t.Fatalf("chunked: %q %v", b, resp.TransferEncoding)
	}
}

// One port for a page and its socket.
func TestHTTPAndWebSocketOnOnePort(t *testing.T) {
	leakcheck.Check(t)
	w := &Worker{URI: "http://127.0.0.1:0", WebSocket: WebSocketOptions{Path: "/ws"}}
	w.OnRequest = func(c *Connection, r *Request) { c.Send([]byte("page at " + r.Path())) }
	w.OnMessage = func(c *Connection, data []byte) { c.SendMessage(c.MessageType(), append([]byte("ws: "), data...)) }
	connected := make(chan string, 1)
	w.OnWebSocketConnected = func(c *Connection, r *WebSocketRequest) { connected <- r.Path() }
	addr := serve(t, w)
	resp, err := http.Get("http://" + addr + "/index.html")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "page at /index.html" || resp.Header.Get("Content-Type") != "text/html;charset=utf-8" {
		t.Fatalf("page: %q %q", b, resp.Header.Get("Content-Type"))
	}
	c := newClient(t, "ws://"+addr+"/ws")
	c.connect(t)
	if r := wait(t, c.wsConn, "OnWebSocketConnect"); r.Status != 101 || !r.Compressed {
		t.Fatalf("response %+v: want 101 with compression", r)
	}
	if p := wait(t, connected, "OnWebSocketConnected"); p != "/ws" {
		t.Fatalf("path %q", p)
	}
	c.SendString("hello")
	c.expect(t, "ws: hello")
	// An upgrade for another path is an ordinary request.
	var other *http.Response
	var otherBody []byte
	d := ws.Dialer{
		Timeout: 10 * time.Second,
		OnStatusError: func(_ int, _ []byte, r io.Reader) {
			resp, err := http.ReadResponse(bufio.NewReader(r), nil)
			if err != nil {
				t.Errorf("reading the response: %v", err)
				return
			}
			other = resp
			otherBody, _ = io.ReadAll(resp.Body)
		},
	}
	_, _, _, err = d.Dial(context.Background(), "ws://"+addr+"/other")
	var se ws.StatusError
	if !errors.As(err, &se) || se != 200 || other == nil || string(otherBody) != "page at /other" {
		t.Fatalf("upgrade elsewhere: %v %q %v", other, otherBody, err)
	}
}

// A HEAD request is answered with the Content-Length a GET would carry and
// no body (RFC 9110 9.3.2), also when the handler, like http.ServeContent
// behind a recorder (how workerman-push serves /workerman-push.js), sets
// the header and writes nothing; the keep-alive connection stays framed:
// a GET pipelined behind the HEAD gets its whole body.
func TestHTTPHeadContentLength(t *testing.T) {
	content := bytes.Repeat([]byte("console.log('workerman');\n"), 100)
	engines(t, func(t *testing.T, goroutines bool) {
		w := &Worker{URI: "http://127.0.0.1:0", goroutines: goroutines}
		w.OnRequest = func(c *Connection, r *Request) {
			rec := &headRecorder{header: http.Header{}}
			http.ServeContent(rec, r.Request, "workerman-push.js", time.Time{}, bytes.NewReader(content))
			c.SendResponse(&Response{Status: rec.status, Header: rec.header, Body: rec.body.Bytes()})
		}
		addr := serve(t, w)
		c := dial(t, addr)
		c.Write([]byte("HEAD /workerman-push.js HTTP/1.1\r\nHost: x\r\n\r\nGET /workerman-push.js HTTP/1.1\r\nHost: x\r\n\r\n"))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		head, err := http.ReadResponse(r, &http.Request{Method: http.MethodHead})
		if err != nil {
			t.Fatal(err)
		}
		if head.StatusCode != 200 || head.ContentLength != int64(len(content)) {
			t.Fatalf("HEAD: %d, Content-Length %d; want 200, %d", head.StatusCode, head.ContentLength, len(content))
		}
		get, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("the GET behind the HEAD: %v", err)
		}
		if b, err := io.ReadAll(get.Body); err != nil || !bytes.Equal(b, content) || get.ContentLength != int64(len(content)) {
			t.Fatalf("GET: %d bytes (Content-Length %d), %v; want %d", len(b), get.ContentLength, err, len(content))
		}
	})
}

// headRecorder buffers an http.Handler's answer.
type headRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *headRecorder) Header() http.Header { return w.header }

func (w *headRecorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *headRecorder) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

// A request head that does not arrive within ReadHeaderTimeout is answered
// with 408 and closed, however often its bytes reset the idle clock
// (slowloris); on a WebSocket path, WebSocket.HandshakeTimeout bounds it
// when shorter. A kept-alive connection waiting for its next request is
// not late: the clock runs from that request's first byte.
func TestHTTPReadHeaderTimeout(t *testing.T) {
	leakcheck.Check(t)
	const limit = 300 * time.Millisecond
	// trickle sends head a byte every 20 ms until the server answers (or
	// the head is out) and returns the answer and when it came.
	trickle := func(t *testing.T, c net.Conn, head string) (*http.Response, time.Duration) {
		t.Helper()
		start := time.Now()
		answered := make(chan struct{})
		go func() {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for i := 0; i < len(head); i++ {
				select {
				case <-answered:
					return
				case <-tick.C:
				}
				if _, err := c.Write([]byte{head[i]}); err != nil {
					return
				}
			}
		}()
		defer close(answered)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no answer to a slow head: %v", err)
		}
		return resp, time.Since(start)
	}
	slowHead := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + strings.Repeat("X-Pad: slowloris\r\n", 40) + "\r\n"
	cases := []struct {
		name  string
		w     func(goroutines bool) *Worker
		bound time.Duration
	}{
		{name: "ReadHeaderTimeout", bound: limit, w: func(g bool) *Worker {
			w := httpWorker(g)
			w.ReadHeaderTimeout, w.IdleTimeout = limit, time.Minute
			return w
		}},
		{name: "WebSocket.HandshakeTimeout on an upgrade path", bound: limit, w: func(g bool) *Worker {
			w := httpWorker(g)
			w.WebSocket = WebSocketOptions{Path: "/ws", HandshakeTimeout: limit}
			return w
		}},
	}
	engines(t, func(t *testing.T, goroutines bool) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				w := tc.w(goroutines)
				errs := make(chan error, 8)
				w.OnError = func(c *Connection, err error) { errs <- err }
				addr := serve(t, w)

				c := dial(t, addr)
				resp, took := trickle(t, c, slowHead)
				if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
					t.Fatalf("slow head answered %d (close %v), want 408 and close", resp.StatusCode, resp.Close)
				}
				if took < tc.bound || took > tc.bound+2*time.Second {
					t.Fatalf("cut after %v, want %v (+ a tick)", took, tc.bound)
				}
				expectEOF(t, c)
				var he *HTTPError
				if err := wait(t, errs, "OnError"); !errors.As(err, &he) || he.Status != http.StatusRequestTimeout {
					t.Fatalf("OnError(%v), want an *HTTPError with 408", err)
				}

				// Kept alive: a quiet wait longer than the limit is fine,
				// and a head split in two parts, in time, is served.
				c = dial(t, addr)
				r := bufio.NewReader(c)
				c.Write([]byte("GET /one HTTP/1.1\r\nHost: x\r\n\r\n"))
				if resp, got := readHTTP(t, r, c); resp.StatusCode != 200 || got["path"] != "/one" {
					t.Fatalf("first request: %d %v", resp.StatusCode, got)
				}
				c.SetReadDeadline(time.Now().Add(2 * limit))
				if n, err := r.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("a kept-alive connection was answered (%d bytes, %v) while it sent nothing", n, err)
				}
				c.SetReadDeadline(time.Time{})
				c.Write([]byte("GET /two HTTP/1.1\r\n"))
				c.Write([]byte("Host: x\r\n\r\n"))
				if resp, got := readHTTP(t, r, c); resp.StatusCode != 200 || got["path"] != "/two" {
					t.Fatalf("second request: %d %v", resp.StatusCode, got)
				}
				select {
				case err := <-errs:
					t.Fatalf("OnError(%v) for a well-behaved client", err)
				default:
				}
			})
		}
	})
}
