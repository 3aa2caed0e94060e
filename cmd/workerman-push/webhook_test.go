package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/golang-jwt/jwt/v5"
)

// hookSink is a webhook receiver that hands every event to the test.
type hookSink struct {
	*httptest.Server
	events chan map[string]any
}

func newHookSink(t *testing.T) *hookSink {
	t.Helper()
	s := &hookSink{events: make(chan map[string]any, 1000)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &ev) != nil {
			t.Errorf("webhook got %s %q %q", r.Method, r.Header.Get("Content-Type"), body)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.events <- ev
	}))
	t.Cleanup(s.Close)
	return s
}

// next is the next event, which must be want exactly (same keys).
func (s *hookSink) next(t *testing.T, want map[string]any) {
	t.Helper()
	got := recv(t, s.events, "webhook event "+want["event"].(string))
	if len(got) != len(want) {
		t.Fatalf("webhook event %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("webhook event %v, want %v", got, want)
		}
	}
}

// connect, message (text and binary) and close arrive in order, with the
// client's ID and uid; connect only once the client is reachable.
func TestWebhook(t *testing.T) {
	sink := newHookSink(t)
	const secret = "k"
	n := startCfg(t, args("-webhook", sink.URL+"/events", "-jwt-secret", secret), nil)

	c := dial(t, n, q(token(t, secret, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice"})))
	sink.next(t, map[string]any{"event": "connect", "client_id": c.id, "uid": "alice"})
	// The connect event came after the client became reachable: the
	// backend can answer it with a push at once.
	n.mustCall(t, "sendToClient", map[string]any{"client_id": c.id, "message": "hello alice"})
	c.expectText("hello alice")

	c.send(ws.OpText, []byte(`{"say":"hi"}`))
	c.send(ws.OpBinary, []byte{0, 1, 2})
	c.send(ws.OpText, []byte(""))
	sink.next(t, map[string]any{"event": "message", "client_id": c.id, "uid": "alice", "message": `{"say":"hi"}`})
	sink.next(t, map[string]any{"event": "message", "client_id": c.id, "uid": "alice", "message_base64": "AAEC"})
	sink.next(t, map[string]any{"event": "message", "client_id": c.id, "uid": "alice", "message": ""})

	// A uid bound later shows in later events.
	n.mustCall(t, "bindUid", map[string]any{"client_id": c.id, "uid": "alice2"})
	c.send(ws.OpText, []byte("again"))
	sink.next(t, map[string]any{"event": "message", "client_id": c.id, "uid": "alice2", "message": "again"})

	ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))))
	sink.next(t, map[string]any{"event": "close", "client_id": c.id, "uid": "alice2"})

	if n.log.count("webhook") != 1 { // the start line's webhook= only
		t.Fatalf("log lines about the webhook:\n%s", n.log.String())
	}
}

// Without -jwt-secret, events carry the uid the backend bound, "" before.
func TestWebhookAnonymous(t *testing.T) {
	sink := newHookSink(t)
	n := startCfg(t, args("-webhook", sink.URL), nil)
	c := dial(t, n, "")
	sink.next(t, map[string]any{"event": "connect", "client_id": c.id, "uid": ""})
	c.send(ws.OpText, []byte("x"))
	sink.next(t, map[string]any{"event": "message", "client_id": c.id, "uid": "", "message": "x"})
	n.mustCall(t, "closeClient", map[string]any{"client_id": c.id})
	sink.next(t, map[string]any{"event": "close", "client_id": c.id, "uid": ""})
}

// A webhook that hangs, or answers 500, never delays pushes to clients;
// its queue stays bounded, drops are counted and logged once per
// interval, and once it recovers the events still queued arrive.
func TestWebhookDead(t *testing.T) {
	for _, mode := range []string{"hangs", "500"} {
		t.Run(mode, func(t *testing.T) {
			release := make(chan struct{})
			var got atomic.Int64
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				select {
				case <-release:
					got.Add(1)
					return
				default:
				}
				if mode == "500" {
					w.WriteHeader(http.StatusInternalServerError)
					return
				}
				select {
				case <-release:
					got.Add(1)
				case <-r.Context().Done():
				}
			}))
			t.Cleanup(hook.Close)
			var released atomic.Bool
			releaseOnce := func() {
				if !released.Swap(true) {
					close(release)
				}
			}
			t.Cleanup(releaseOnce) // before hook.Close: a hanging handler returns

			const queue = 4
			n := startCfg(t, args("-webhook", hook.URL), func(c *config) {
				c.Hook = hookOptions{Senders: 1, QueueSize: queue, Attempts: 3, Backoff: time.Millisecond,
					MaxBackoff: 2 * time.Millisecond, Timeout: time.Minute, LogInterval: time.Hour}
			})
			h := n.srv.hooks
			c := dial(t, n, "")

			const msgs = 300
			var worst time.Duration
			for i := range msgs {
				c.send(ws.OpText, []byte("event "+strconv.Itoa(i)))
				if i%30 == 0 {
					start := time.Now()
					n.mustCall(t, "sendToClient", map[string]any{"client_id": c.id, "message": "push " + strconv.Itoa(i)})
					c.expectText("push " + strconv.Itoa(i))
					worst = max(worst, time.Since(start))
				}
				if q := h.queued(); q > queue {
					t.Fatalf("%d events queued, bound %d", q, queue)
				}
			}
			t.Logf("slowest push while the webhook was down: %v", worst)
			if worst > 2*time.Second {
				t.Fatalf("a push took %v while the webhook was down", worst)
			}
			// The server reads the client's frames on its own schedule:
			// wait (bounded) until every event was queued or dropped.
			settled := func(want uint64) uint64 {
				deadline := time.Now().Add(10 * time.Second)
				for {
					total := h.delivered.Load() + h.dropped.Load() + h.failed.Load() + uint64(h.queued()) + uint64(h.sending.Load())
					if total >= want || time.Now().After(deadline) {
						return total
					}
					time.Sleep(5 * time.Millisecond) // bounded polling of counters
				}
			}
			settled(msgs + 1)
			if h.dropped.Load() == 0 {
				t.Fatalf("nothing dropped with a queue of %d and %d events", queue, msgs)
			}
			if c := n.log.count("events dropped"); c != 1 {
				t.Fatalf("%d drop lines while down, want 1 (once per interval):\n%s", c, n.log.String())
			}
			if mode == "500" && n.log.count("events failed") != 1 {
				t.Fatalf("failure lines while down, want 1:\n%s", n.log.String())
			}

			// Recovery: what is queued arrives, then the close event.
			releaseOnce()
			n.mustCall(t, "closeClient", map[string]any{"client_id": c.id})
			deadline := time.Now().Add(10 * time.Second)
			for h.queued() > 0 || h.sending.Load() > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("queue not drained after recovery: %d queued", h.queued())
				}
				time.Sleep(5 * time.Millisecond)
			}
			if got.Load() == 0 {
				t.Fatal("nothing delivered after recovery")
			}
			if err := n.stop(); err != nil {
				t.Fatal(err)
			}
			// The accounting adds up: connect, messages, close.
			if sum := h.delivered.Load() + h.dropped.Load() + h.failed.Load(); sum != msgs+2 {
				t.Fatalf("delivered %d + dropped %d + failed %d = %d, want %d", h.delivered.Load(), h.dropped.Load(), h.failed.Load(), sum, msgs+2)
			}
			if uint64(got.Load()) != h.delivered.Load() {
				t.Fatalf("webhook received %d, server counted %d delivered", got.Load(), h.delivered.Load())
			}
			// The lines' counts add up to the drops.
			total := uint64(0)
			for _, m := range regexp.MustCompile(`events dropped" count=(\d+)`).FindAllStringSubmatch(n.log.String(), -1) {
				v, _ := strconv.ParseUint(m[1], 10, 64)
				total += v
			}
			if total != h.dropped.Load() {
				t.Fatalf("drop lines report %d, counted %d:\n%s", total, h.dropped.Load(), n.log.String())
			}
		})
	}
}

// With -webhook-secret every POST carries a timestamp and an HMAC-SHA256 of
// it and the body that a receiver can check; without it, neither header.
func TestWebhookSignature(t *testing.T) {
	type signed struct{ ts, sig, body string }
	for _, secret := range []string{"s3cret", ""} {
		got := make(chan signed, 10)
		sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			got <- signed{r.Header.Get("Workerman-Push-Timestamp"), r.Header.Get("Workerman-Push-Signature"), string(body)}
		}))
		defer sink.Close()
		argv := args("-webhook", sink.URL)
		if secret != "" {
			argv = append(argv, "-webhook-secret", secret)
		}
		n := startCfg(t, argv, nil)
		dial(t, n, "")
		ev := recv(t, got, "the connect event")
		if secret == "" {
			if ev.ts != "" || ev.sig != "" {
				t.Fatalf("unsigned webhook sent %q, %q", ev.ts, ev.sig)
			}
			continue
		}
		ts, err := strconv.ParseInt(ev.ts, 10, 64)
		if err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
			t.Fatalf("timestamp %q", ev.ts)
		}
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(ev.ts + "." + ev.body))
		if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); !hmac.Equal([]byte(ev.sig), []byte(want)) {
			t.Fatalf("signature %q, want %q", ev.sig, want)
		}
	}
	if _, err := parseConfig([]string{"-webhook-secret", "x"}, nil, io.Discard); err == nil {
		t.Error("-webhook-secret without -webhook was accepted")
	}
}
