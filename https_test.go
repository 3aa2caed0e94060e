package workerman

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/leakcheck"

	"github.com/workerman-go/workerman/internal/testcert"
)

// An http:// worker over TLS (https): keep-alive requests on one connection,
// concurrent clients, and 1 MiB responses, on both engines (on Linux's
// loops, TLS runs in the event loop).
func TestHTTPS(t *testing.T) {
	leakcheck.Check(t)
	cert, pool := testcert.Pair(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	engines(t, func(t *testing.T, goroutines bool) {
		w := &Worker{URI: "http://127.0.0.1:0", goroutines: goroutines, Transport: "ssl",
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
		w.OnRequest = func(c *Connection, r *Request) {
			if r.Path() == "/big" {
				c.SendResponse(NewResponse(200, big))
				return
			}
			c.SendResponse(NewResponse(200, []byte("hello "+r.Get("n", ""))))
		}
		addr := serve(t, w)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 8}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		get := func(path string) ([]byte, bool) {
			var reused bool
			req, _ := http.NewRequest(http.MethodGet, "https://"+addr+path, nil)
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
				GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
			}))
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("GET %s: %v", path, err)
				return nil, false
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != 200 {
				t.Errorf("GET %s: %d, %v", path, resp.StatusCode, err)
			}
			return b, reused
		}
		for i := range 5 {
			b, reused := get(fmt.Sprintf("/?n=%d", i))
			if string(b) != fmt.Sprintf("hello %d", i) {
				t.Fatalf("request %d: %q", i, b)
			}
			if i > 0 && !reused {
				t.Fatalf("request %d did not reuse the keep-alive connection", i)
			}
		}
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if b, _ := get("/big"); !bytes.Equal(b, big) {
					t.Errorf("a 1 MiB response came back as %d bytes", len(b))
				}
			}()
		}
		wg.Wait()
	})
}
