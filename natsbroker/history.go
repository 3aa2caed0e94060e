package natsbroker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/workerman-go/workerman/gateway"
)

// HistoryOptions turn on the cluster's history (Options.History): the
// recent pushes of every stream, kept in NATS JetStream, so that a client
// resumes on any node, after its own node died too.
//
// The history is one JetStream stream with a subject per push stream
// (<Prefix>.h.u.<uid>, .h.g.<group>, .h.all), limited per subject to Size
// messages and to TTL: one JetStream stream rather than one per push
// stream, because a JetStream stream is a replicated log with its own
// consensus group, and a cluster has a stream per user; subjects are
// cheap, and the per-subject limit keeps every user's last Size
// messages. A message's offset and epoch are its headers: offsets rise by
// one per subject (JetStream's sequence numbers are the whole stream's),
// kept exact across nodes by JetStream's expected-last-subject-sequence
// check (an append that lost a race to another node reads the new last
// message and tries again). A push stream whose messages all expired is
// gone: its next message starts a new epoch.
type HistoryOptions struct {
	// Size is how many messages a push stream keeps. Default 100.
	Size int
	// TTL is how long a message is kept. Default 10 minutes.
	TTL time.Duration
	// Replicas is how many servers keep a copy: with 3, the history
	// survives the loss of one. Default: with an embedded cluster, its
	// number of nodes (this one and Peers) up to 3; with URLs, 1 (set it
	// to the size of the NATS cluster, at most 5). The replicas must be
	// up for the history to take pushes: a majority of them.
	Replicas int
	// File keeps the history on disk (StoreDir) instead of in memory: it
	// then survives the restart of every server at once.
	File bool
	// StoreDir is the embedded server's JetStream directory. Default
	// <temp dir>/workerman-push/<cluster name>/<node>.
	StoreDir string
	// Stream names the JetStream stream. Default from Prefix
	// ("WORKERMAN_HISTORY").
	Stream string
}

// History is the cluster's history, for gateway.Options.History; nil when
// Options.History is not set. It is usable once Start has run.
func (b *Broker) History() gateway.History {
	if b.hist == nil {
		return nil
	}
	return b.hist
}

// HistoryReady reports whether the history takes pushes: its JetStream
// stream exists (a cluster's JetStream has none until a majority of its
// servers is up). True without Options.History.
func (b *Broker) HistoryReady() bool {
	if b.hist == nil {
		return true
	}
	select {
	case <-b.hist.ready:
		return true
	default:
		return false
	}
}

// The headers of a message of the history.
const (
	hdrEpoch   = "Workerman-Epoch"
	hdrOffset  = "Workerman-Offset"
	hdrBinary  = "Workerman-Binary"
	hdrExclude = "Workerman-Exclude"
)

// jsHistory implements gateway.History on a JetStream stream.
type jsHistory struct {
	b      *Broker
	opt    HistoryOptions
	stream string
	ready  chan struct{} // closed when the JetStream stream exists
	js     jetstream.JetStream

	mu   sync.Mutex
	last map[string]subjectLast // subject → its last message, as this node last saw it
}

// subjectLast is where a push stream's last message is.
type subjectLast struct {
	seq    uint64 // its sequence in the JetStream stream; 0: none
	epoch  string
	offset uint64
}

// maxCachedSubjects bounds what a node remembers of the streams it
// appended to; a forgotten one costs a read on its next append.
const maxCachedSubjects = 1 << 16

func newJSHistory(b *Broker, opt HistoryOptions) *jsHistory {
	if opt.Size <= 0 {
		opt.Size = 100
	}
	if opt.TTL <= 0 {
		opt.TTL = 10 * time.Minute
	}
	if opt.Stream == "" {
		opt.Stream = strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z':
				return r - 'a' + 'A'
			case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
				return r
			}
			return '_'
		}, b.opt.Prefix) + "_HISTORY"
	}
	return &jsHistory{b: b, opt: opt, stream: opt.Stream, ready: make(chan struct{}), last: make(map[string]subjectLast)}
}

// start makes the JetStream stream, retrying until JetStream answers (a
// cluster's JetStream has no leader until a majority of its servers is
// up), and marks the history ready.
func (h *jsHistory) start(nc *nats.Conn) {
	defer h.b.done.Done()
	js, err := jetstream.New(nc)
	if err != nil {
		h.b.log.Error("natsbroker: JetStream", "err", err)
		return
	}
	h.js = js
	storage := jetstream.MemoryStorage
	if h.opt.File {
		storage = jetstream.FileStorage
	}
	cfg := jetstream.StreamConfig{
		Name:              h.stream,
		Description:       "workerman-push history: the last messages of every uid, group and all",
		Subjects:          []string{h.b.subject("h", ">")},
		Storage:           storage,
		Replicas:          h.opt.Replicas,
		MaxMsgsPerSubject: int64(h.opt.Size),
		MaxAge:            h.opt.TTL,
		Discard:           jetstream.DiscardOld,
		AllowDirect:       true,
	}
	warned := false
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := js.CreateOrUpdateStream(ctx, cfg)
		cancel()
		if err == nil {
			close(h.ready)
			if warned {
				h.b.log.Info("natsbroker: history ready", "node", h.b.node, "stream", h.stream)
			}
			return
		}
		if !warned {
			h.b.log.Warn("natsbroker: history not ready yet (JetStream needs a majority of its servers); pushes wait or fail with the broker unavailable", "node", h.b.node, "stream", h.stream, "err", err)
			warned = true
		}
		select {
		case <-h.b.stop:
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (h *jsHistory) wait(ctx context.Context) error {
	select {
	case <-h.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: the history (JetStream stream %s) is not ready: %v", gateway.ErrBrokerUnavailable, h.stream, ctx.Err())
	case <-h.b.stop:
		return gateway.ErrClosed
	}
}

func (h *jsHistory) subject(stream string) (string, error) {
	if stream == "all" {
		return h.b.subject("h", "all"), nil
	}
	subj, err := h.b.topicSubject(stream)
	if err != nil {
		return "", err
	}
	// <prefix>.u.<b64> → <prefix>.h.u.<b64>
	return h.b.subject("h", strings.TrimPrefix(subj, h.b.opt.Prefix+".")), nil
}

// Append implements gateway.History.
func (h *jsHistory) Append(ctx context.Context, stream string, m gateway.Message, exclude []string) (gateway.Position, error) {
	if err := h.wait(ctx); err != nil {
		return gateway.Position{}, err
	}
	subj, err := h.subject(stream)
	if err != nil {
		return gateway.Position{}, err
	}
	h.mu.Lock()
	last, known := h.last[subj]
	h.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if !known {
			if last, err = h.readLast(ctx, subj); err != nil {
				return gateway.Position{}, err
			}
		}
		epoch := last.epoch
		if last.seq == 0 {
			epoch = newEpoch() // a new history: the stream has none
		}
		msg := nats.NewMsg(subj)
		msg.Header.Set(hdrEpoch, epoch)
		msg.Header.Set(hdrOffset, strconv.FormatUint(last.offset+1, 10))
		if m.Binary {
			msg.Header.Set(hdrBinary, "1")
		}
		if len(exclude) > 0 {
			msg.Header.Set(hdrExclude, strings.Join(exclude, ","))
		}
		msg.Data = m.Data
		ack, err := h.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(last.seq))
		if err == nil {
			next := subjectLast{seq: ack.Sequence, epoch: epoch, offset: last.offset + 1}
			h.remember(subj, next)
			return gateway.Position{Epoch: epoch, Offset: next.offset}, nil
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) && attempt < 100 {
			// Another node appended (or the messages expired): read the
			// last message again.
			known = false
			continue
		}
		return gateway.Position{}, fmt.Errorf("%w: appending to the history: %v", gateway.ErrBrokerUnavailable, err)
	}
}

func (h *jsHistory) remember(subj string, l subjectLast) {
	h.mu.Lock()
	if len(h.last) >= maxCachedSubjects {
		clear(h.last)
	}
	h.last[subj] = l
	h.mu.Unlock()
}

// Since implements gateway.History. The current position is read from the
// stream's leader, so it includes every append that returned on any
// node; the messages come in one batch from any replica, checked to reach
// that position.
func (h *jsHistory) Since(ctx context.Context, stream string, from gateway.Position) ([]gateway.Entry, gateway.Position, bool, error) {
	if err := h.wait(ctx); err != nil {
		return nil, gateway.Position{}, false, err
	}
	subj, err := h.subject(stream)
	if err != nil {
		return nil, gateway.Position{}, false, err
	}
	last, err := h.readLast(ctx, subj)
	if err != nil {
		return nil, gateway.Position{}, false, err
	}
	// A stream with no message: an empty epoch, which a client resumes as
	// "from the oldest message kept".
	cur := gateway.Position{Epoch: last.epoch, Offset: last.offset}
	switch {
	case from.Offset == math.MaxUint64:
		return nil, cur, false, nil // the current position only
	case from.Epoch == "":
		if last.seq == 0 {
			return nil, cur, true, nil
		}
	case from.Epoch != cur.Epoch || from.Offset > cur.Offset:
		return nil, cur, false, nil
	case from.Offset == cur.Offset:
		return nil, cur, true, nil
	}
	kept, err := h.readAll(ctx, subj, last.seq)
	if err != nil {
		return nil, cur, false, err
	}
	out := kept[:0]
	for _, e := range kept {
		if e.Offset > from.Offset {
			out = append(out, e)
		}
	}
	if from.Epoch != "" && (len(out) == 0 || out[0].Offset != from.Offset+1) {
		return nil, cur, false, nil // older than the oldest message kept
	}
	return out, cur, true, nil
}

// msgGetResponse is JetStream's answer to a message get.
type msgGetResponse struct {
	Message *struct {
		Subject string `json:"subject"`
		Seq     uint64 `json:"seq"`
		Header  []byte `json:"hdrs"`
	} `json:"message"`
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// jsNoMessageFound is JetStream's error code for a get that found none.
const jsNoMessageFound = 10037

// readLast reads subj's last message from the stream's leader (not a
// replica, which may lag behind an append that returned).
func (h *jsHistory) readLast(ctx context.Context, subj string) (subjectLast, error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": subj})
	resp, err := h.b.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+h.stream, req)
	if err != nil {
		return subjectLast{}, fmt.Errorf("%w: reading the history: %v", gateway.ErrBrokerUnavailable, err)
	}
	var r msgGetResponse
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return subjectLast{}, fmt.Errorf("natsbroker: reading the history: %v", err)
	}
	if r.Error != nil {
		if r.Error.ErrCode == jsNoMessageFound {
			l := subjectLast{}
			h.remember(subj, l)
			return l, nil
		}
		return subjectLast{}, fmt.Errorf("%w: reading the history: %s", gateway.ErrBrokerUnavailable, r.Error.Description)
	}
	if r.Message == nil {
		return subjectLast{}, errors.New("natsbroker: reading the history: an empty answer")
	}
	hdr, err := nats.DecodeHeadersMsg(r.Message.Header)
	if err != nil {
		return subjectLast{}, fmt.Errorf("natsbroker: a message of the history without its headers: %v", err)
	}
	off, err := strconv.ParseUint(hdr.Get(hdrOffset), 10, 64)
	if err != nil || hdr.Get(hdrEpoch) == "" {
		return subjectLast{}, fmt.Errorf("natsbroker: a message of the history (sequence %d) has no offset or epoch", r.Message.Seq)
	}
	l := subjectLast{seq: r.Message.Seq, epoch: hdr.Get(hdrEpoch), offset: off}
	h.remember(subj, l)
	return l, nil
}

// readAll reads every message of subj kept up to the stream sequence upTo
// (its last one), oldest first, in batches from any replica; a replica
// that has not got upTo yet is asked again.
func (h *jsHistory) readAll(ctx context.Context, subj string, upTo uint64) ([]gateway.Entry, error) {
	var out []gateway.Entry
	start := uint64(1)
	for attempt := 0; ; {
		got, err := h.directBatch(ctx, subj, start)
		if err != nil {
			return nil, err
		}
		for _, m := range got {
			if m.seq <= upTo {
				out = append(out, m.Entry)
			}
		}
		if n := len(got); n > 0 {
			if got[n-1].seq >= upTo {
				return out, nil
			}
			start = got[n-1].seq + 1 // a batch cut short by its size: the rest
			continue
		}
		if attempt++; attempt == 50 {
			return nil, fmt.Errorf("%w: reading the history: the replicas do not have sequence %d", gateway.ErrBrokerUnavailable, upTo)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: reading the history: %v", gateway.ErrBrokerUnavailable, ctx.Err())
		case <-time.After(time.Duration(attempt) * time.Millisecond):
		}
	}
}

type seqEntry struct {
	gateway.Entry
	seq uint64
}

// directBatch is one batched direct get of subj's messages from the stream
// sequence start on.
func (h *jsHistory) directBatch(ctx context.Context, subj string, start uint64) ([]seqEntry, error) {
	nc := h.b.nc
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("%w: reading the history: %v", gateway.ErrBrokerUnavailable, err)
	}
	defer sub.Unsubscribe()
	req, _ := json.Marshal(map[string]any{"seq": start, "next_by_subj": subj, "batch": h.opt.Size})
	if err := nc.PublishRequest("$JS.API.DIRECT.GET."+h.stream, inbox, req); err != nil {
		return nil, fmt.Errorf("%w: reading the history: %v", gateway.ErrBrokerUnavailable, err)
	}
	var out []seqEntry
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: reading the history: %v", gateway.ErrBrokerUnavailable, err)
		}
		if status := m.Header.Get("Status"); status != "" {
			switch status {
			case "204", "404": // the end of the batch; none (left)
				return out, nil
			}
			return nil, fmt.Errorf("%w: reading the history: status %s %s", gateway.ErrBrokerUnavailable, status, m.Header.Get("Description"))
		}
		seq, _ := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
		off, err := strconv.ParseUint(m.Header.Get(hdrOffset), 10, 64)
		if err != nil || seq == 0 {
			return nil, fmt.Errorf("natsbroker: a message of the history (sequence %q) has no offset", m.Header.Get("Nats-Sequence"))
		}
		e := seqEntry{seq: seq, Entry: gateway.Entry{Offset: off, Message: gateway.Message{Data: m.Data, Binary: m.Header.Get(hdrBinary) == "1"}}}
		if x := m.Header.Get(hdrExclude); x != "" {
			e.Exclude = strings.Split(x, ",")
		}
		out = append(out, e)
	}
}

func newEpoch() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
