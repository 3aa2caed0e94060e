package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// hookEvent is one client event as the webhook receives it:
//
//	{"event":"connect","client_id":"…","uid":"alice"}
//	{"event":"message","client_id":"…","uid":"alice","message":"hi"}
//	{"event":"message","client_id":"…","uid":"","message_base64":"AAE="}
//	{"event":"close","client_id":"…","uid":"alice"}
type hookEvent struct {
	Event         string  `json:"event"`
	ClientID      string  `json:"client_id"`
	UID           string  `json:"uid"`
	Message       *string `json:"message,omitempty"`
	MessageBase64 *string `json:"message_base64,omitempty"`
}

func (e *hookEvent) setText(b []byte) {
	s := string(b)
	e.Message = &s
}

func (e *hookEvent) setBinary(b []byte) {
	s := base64.StdEncoding.EncodeToString(b)
	e.MessageBase64 = &s
}

// hookOptions tune the webhook sender; the zero value is the default.
type hookOptions struct {
	// Senders post in parallel; all the events of one client go through
	// the same sender, so they arrive in order. Default 4.
	Senders int
	// QueueSize bounds the events waiting per sender. Default 4096.
	QueueSize int
	// MaxQueuedBytes bounds the bodies waiting in all queues. Default 64 MiB.
	MaxQueuedBytes int64
	// Attempts per event, the first included. Default 5.
	Attempts int
	// Backoff is the delay before the first retry, doubled for each next
	// one up to MaxBackoff, with jitter. Defaults 200 ms and 5 s.
	Backoff, MaxBackoff time.Duration
	// Timeout bounds one POST. Default 10 s.
	Timeout time.Duration
	// LogInterval: dropped and failed events are logged at most once per
	// interval, with their count. Default 10 s.
	LogInterval time.Duration
}

func (o *hookOptions) defaults() {
	if o.Senders <= 0 {
		o.Senders = 4
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 4096
	}
	if o.MaxQueuedBytes <= 0 {
		o.MaxQueuedBytes = 64 << 20
	}
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = 200 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.LogInterval <= 0 {
		o.LogInterval = 10 * time.Second
	}
}

// webhook posts client events to a URL from bounded queues. Enqueueing
// never blocks: when the webhook is slow or down and the queues are full,
// events are dropped and counted, and the clients never wait for it.
type webhook struct {
	url    string
	secret []byte // signs each POST when set (see sign)
	opt    hookOptions
	log    *slog.Logger
	client *http.Client
	tr     *http.Transport

	queues      []chan []byte
	seed        maphash.Seed
	queuedBytes atomic.Int64

	ctx    context.Context // cancelled when stop runs out of time
	cancel context.CancelFunc
	flush  chan struct{} // closed by stop: send what is queued, then return
	wg     sync.WaitGroup

	delivered, dropped, failed atomic.Uint64
	sending                    atomic.Int64 // events taken from a queue, not yet done
	dropLog, failLog           rateLog
}

func newWebhook(url string, secret []byte, opt hookOptions, log *slog.Logger) *webhook {
	opt.defaults()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = opt.Senders
	h := &webhook{
		url:    url,
		secret: secret,
		opt:    opt,
		log:    log,
		tr:     tr,
		client: &http.Client{Transport: tr},
		queues: make([]chan []byte, opt.Senders),
		seed:   maphash.MakeSeed(),
		flush:  make(chan struct{}),
	}
	for i := range h.queues {
		h.queues[i] = make(chan []byte, opt.QueueSize)
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h
}

func (h *webhook) start() {
	for _, q := range h.queues {
		h.wg.Add(1)
		go h.send(q)
	}
}

// enqueue queues ev for the webhook without waiting: a full queue drops it.
// It is called under the gateway's lock (connect), so it must stay quick.
func (h *webhook) enqueue(clientID string, ev hookEvent) {
	body, err := json.Marshal(ev)
	if err != nil {
		return
	}
	n := int64(len(body))
	if h.queuedBytes.Add(n) > h.opt.MaxQueuedBytes {
		h.queuedBytes.Add(-n)
		h.drop()
		return
	}
	q := h.queues[maphash.String(h.seed, clientID)%uint64(len(h.queues))]
	select {
	case q <- body:
	default:
		h.queuedBytes.Add(-n)
		h.drop()
	}
}

func (h *webhook) drop() {
	n := h.dropped.Add(1)
	h.dropLog.note(h.log, h.opt.LogInterval, n, false, "webhook queue full: events dropped", nil)
}

// queued is how many events wait.
func (h *webhook) queued() int {
	n := 0
	for _, q := range h.queues {
		n += len(q)
	}
	return n
}

// send is one sender: it posts its queue's events one at a time, in order.
func (h *webhook) send(q chan []byte) {
	defer h.wg.Done()
	for {
		select {
		case b := <-q:
			h.deliver(b)
		case <-h.flush:
			for {
				select {
				case b := <-q:
					h.deliver(b)
				default:
					return
				}
			}
		}
	}
}

// deliver posts one event, retrying network errors, 408, 429 and 5xx
// with back-off.
func (h *webhook) deliver(body []byte) {
	h.sending.Add(1)
	defer h.sending.Add(-1)
	defer h.queuedBytes.Add(-int64(len(body)))
	for attempt := 1; ; attempt++ {
		retry, err := h.post(body)
		if err == nil {
			h.delivered.Add(1)
			return
		}
		if !retry || attempt >= h.opt.Attempts || h.ctx.Err() != nil {
			h.fail(err)
			return
		}
		d := min(h.opt.Backoff<<(attempt-1), h.opt.MaxBackoff)
		d = d/2 + rand.N(d/2+1)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-h.ctx.Done():
			t.Stop()
			h.fail(err)
			return
		}
	}
}

func (h *webhook) fail(err error) {
	n := h.failed.Add(1)
	h.failLog.note(h.log, h.opt.LogInterval, n, false, "webhook events failed", err)
}

func (h *webhook) post(body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(h.ctx, h.opt.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "workerman-push")
	if h.secret != nil {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req.Header.Set(headerTimestamp, ts)
		req.Header.Set(headerSignature, sign(h.secret, ts, body))
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return true, err
	}
	// Read a little of the answer so that the connection is kept alive.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c >= 500 || c == http.StatusTooManyRequests || c == http.StatusRequestTimeout:
		return true, fmt.Errorf("webhook answered %s", resp.Status)
	default:
		return false, fmt.Errorf("webhook answered %s", resp.Status)
	}
}

// The webhook's signature headers (-webhook-secret). A receiver recomputes
// the signature from the raw body and the timestamp header, compares it in
// constant time and refuses a timestamp far from its clock (a replay).
const (
	headerTimestamp = "Workerman-Push-Timestamp" // Unix seconds when the POST was made
	headerSignature = "Workerman-Push-Signature" // "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body))
)

// sign is the value of the signature header for body posted at ts.
func sign(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// stop sends what is queued within ctx, then gives up on the rest, and
// logs the drops and failures not logged yet.
func (h *webhook) stop(ctx context.Context) error {
	close(h.flush)
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("%d events not sent: %w", h.queued(), ctx.Err())
		h.cancel()
		<-done
	}
	h.cancel()
	h.tr.CloseIdleConnections()
	h.dropLog.note(h.log, h.opt.LogInterval, h.dropped.Load(), true, "webhook queue full: events dropped", nil)
	h.failLog.note(h.log, h.opt.LogInterval, h.failed.Load(), true, "webhook events failed", nil)
	return err
}

// rateLog logs a growing count at most once per interval, so that a dead
// webhook under load writes one line per interval, not one per event.
type rateLog struct {
	mu     sync.Mutex
	last   time.Time
	logged uint64 // the count the last line reported
}

// note logs total when interval passed since the last line (or always,
// with final), unless nothing changed. It never waits for another caller.
func (r *rateLog) note(log *slog.Logger, interval time.Duration, total uint64, final bool, msg string, err error) {
	if final {
		r.mu.Lock()
	} else if !r.mu.TryLock() {
		return
	}
	defer r.mu.Unlock()
	now := time.Now()
	if total <= r.logged || (!final && now.Sub(r.last) < interval) {
		return
	}
	attrs := []any{"count", total - r.logged, "total", total}
	if err != nil {
		attrs = append(attrs, "last_err", err.Error())
	}
	log.Warn(msg, attrs...)
	r.last, r.logged = now, total
}
