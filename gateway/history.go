package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Position names a message in a stream: the history it belongs to (Epoch)
// and its place in it (Offset, 1 for a history's first message). A
// client's position in a stream is the position of the last message it
// received; Offset 0 is "before the first".
type Position struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// Entry is one message of a stream's history.
type Entry struct {
	Offset uint64
	Message
	// Exclude are the client IDs the push was not for (the exclude of
	// SendToGroup and SendToAll): a node that catches its members up
	// from the history skips them, as the push itself did.
	Exclude []string
}

// History keeps the recent messages of every stream ("uid:<uid>",
// "group:<group>", "all"), so that a client that was away gets what it
// missed. Options.History turns it on; NewMemoryHistory is a history of one
// node, in memory. Its methods are called from many goroutines at once,
// and, by the Gateway, while it holds the stream's lock: they must not
// call back into the Gateway.
type History interface {
	// Append adds m, sent to every member of stream but exclude, and
	// returns its position: the stream's epoch and an offset exactly one
	// more than the previous message's (1 for a history's first). It
	// keeps its own copy of m.Data and exclude. In a cluster, every node
	// appends to the same history, and the offsets must be the same for
	// all of them (natsbroker's JetStream history).
	Append(ctx context.Context, stream string, m Message, exclude []string) (Position, error)
	// Since returns the messages of stream after from, oldest first, and
	// the stream's current position (its newest message's, or the offset
	// its next message follows). An empty from.Epoch means "from the
	// oldest message kept": everything kept is returned. recovered is
	// false, and nothing is returned, when the history does not cover
	// from: another epoch, or an offset older than the oldest message kept
	// (or newer than the newest). A stream with no history yet gets one
	// (a new epoch, offset 0), so that the answer names the epoch its
	// next messages will have, or answers an empty epoch at offset 0 (a
	// client resumes that as "from the oldest message kept"). The
	// Gateway reads a stream's current position with a from it cannot
	// cover (Offset math.MaxUint64), which must be cheap: no message is
	// read. In a cluster, Since must see every Append that has returned on
	// any node.
	Since(ctx context.Context, stream string, from Position) (msgs []Entry, cur Position, recovered bool, err error)
}

// MemoryHistoryOptions configure NewMemoryHistory.
type MemoryHistoryOptions struct {
	// Size is how many messages a stream keeps, its newest. Default 100.
	Size int
	// TTL is how long a message is kept. A stream whose newest message
	// is older than TTL (or that got none for TTL) is forgotten: its
	// next message starts a new history, with a new epoch. Default 10
	// minutes.
	TTL time.Duration
	// Now is the clock; default time.Now. Tests set their own.
	Now func() time.Time
}

// MemoryHistory is a History in this process's memory: it serves one
// node, and is lost (every epoch changes) when the process ends.
//
// Memory: a stream costs about 200 bytes and its name, plus 40 bytes and
// the message's own bytes per message kept (and its exclude list, if any) (its ring grows up to Size
// entries), so at most streams × (200 + Size × (40 + average message))
// bytes. A stream is forgotten TTL after its last
// message; the sweep that forgets them runs from Append and Since, at most
// once every TTL/4, so an idle history keeps what it had (and grows no
// more).
type MemoryHistory struct {
	size int
	ttl  time.Duration
	now  func() time.Time

	mu        sync.Mutex
	streams   map[string]*memStream
	lastSweep time.Time
	bytes     int
}

// memStream is one stream's history: a ring of its newest messages.
type memStream struct {
	epoch   string
	last    uint64 // the newest message's offset; 0: none yet
	ring    []memEntry
	head, n int       // the oldest entry is ring[head]; n are kept
	touched time.Time // the newest message's time, or the stream's creation
}

type memEntry struct {
	stamp   int64 // the time it was kept (UnixNano) << 1 | 1 when binary: an entry is 40 bytes
	data    []byte
	exclude *[]string // nil: none (most pushes)
}

func (e *memEntry) at() int64    { return e.stamp >> 1 }
func (e *memEntry) binary() bool { return e.stamp&1 == 1 }
func stamp(at int64, binary bool) int64 {
	s := at << 1
	if binary {
		s |= 1
	}
	return s
}

// NewMemoryHistory makes an empty history in memory.
func NewMemoryHistory(opt MemoryHistoryOptions) *MemoryHistory {
	h := &MemoryHistory{size: opt.Size, ttl: opt.TTL, now: opt.Now, streams: make(map[string]*memStream)}
	if h.size <= 0 {
		h.size = 100
	}
	if h.ttl <= 0 {
		h.ttl = 10 * time.Minute
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h
}

// MemoryHistoryStats is what a MemoryHistory holds.
type MemoryHistoryStats struct {
	Streams  int // streams with a history
	Messages int // messages kept, over every stream
	Bytes    int // the messages' bytes
}

// Stats says what the history holds now, after forgetting what expired.
func (h *MemoryHistory) Stats() MemoryHistoryStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sweepLocked(h.now(), true)
	s := MemoryHistoryStats{Streams: len(h.streams), Bytes: h.bytes}
	for _, st := range h.streams {
		s.Messages += st.n
	}
	return s
}

// Append implements History.
func (h *MemoryHistory) Append(_ context.Context, stream string, m Message, exclude []string) (Position, error) {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sweepLocked(now, false)
	st := h.streamLocked(stream, now)
	e := memEntry{stamp: stamp(now.UnixNano(), m.Binary), data: append([]byte(nil), m.Data...)}
	if len(exclude) > 0 {
		x := slices.Clone(exclude)
		e.exclude = &x
	}
	switch {
	case st.n < len(st.ring):
		st.ring[(st.head+st.n)%len(st.ring)] = e
		st.n++
	case len(st.ring) < h.size:
		// Grow, oldest first, up to Size entries: a stream of a few
		// messages does not pay for Size.
		ring := make([]memEntry, 0, min(h.size, max(4, 2*st.n)))
		ring = append(ring, st.ring[st.head:]...)
		ring = append(ring, st.ring[:st.head]...)
		st.ring, st.head = append(ring, e), 0
		st.n++
	default:
		old := &st.ring[st.head]
		h.bytes -= len(old.data)
		*old = e
		st.head = (st.head + 1) % len(st.ring)
	}
	h.bytes += len(e.data)
	st.last++
	st.touched = now
	return Position{Epoch: st.epoch, Offset: st.last}, nil
}

// Since implements History.
func (h *MemoryHistory) Since(_ context.Context, stream string, from Position) ([]Entry, Position, bool, error) {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sweepLocked(now, false)
	if from.Offset == math.MaxUint64 && h.streams[stream] == nil {
		// Only the current position (a node's first member of a stream):
		// a stream with no history yet is "before the first message",
		// and is not made, so that every uid bound costs nothing here
		// until it gets a message.
		return nil, Position{}, false, nil
	}
	st := h.streamLocked(stream, now)
	cur := Position{Epoch: st.epoch, Offset: st.last}
	oldest := st.last - uint64(st.n) + 1 // offset of ring[head]
	var skip int
	switch {
	case from.Epoch == "":
		skip = 0
	case from.Epoch != st.epoch || from.Offset > st.last || from.Offset+1 < oldest:
		return nil, cur, false, nil
	default:
		skip = int(from.Offset + 1 - oldest)
	}
	if skip >= st.n {
		return nil, cur, true, nil
	}
	out := make([]Entry, 0, st.n-skip)
	for i := skip; i < st.n; i++ {
		e := st.ring[(st.head+i)%len(st.ring)]
		en := Entry{Offset: oldest + uint64(i), Message: Message{Data: e.data, Binary: e.binary()}}
		if e.exclude != nil {
			en.Exclude = *e.exclude
		}
		out = append(out, en)
	}
	return out, cur, true, nil
}

// streamLocked is stream's history, made (empty, with a new epoch) when it
// has none.
func (h *MemoryHistory) streamLocked(stream string, now time.Time) *memStream {
	st := h.streams[stream]
	if st == nil {
		st = &memStream{epoch: newEpoch(), touched: now}
		h.streams[stream] = st
	} else {
		h.expireLocked(st, now)
	}
	return st
}

// expireLocked drops st's messages older than the TTL.
func (h *MemoryHistory) expireLocked(st *memStream, now time.Time) {
	for st.n > 0 {
		e := &st.ring[st.head]
		if now.UnixNano()-e.at() < int64(h.ttl) {
			return
		}
		h.bytes -= len(e.data)
		*e = memEntry{}
		st.head = (st.head + 1) % len(st.ring)
		st.n--
	}
	st.head = 0
	st.ring = st.ring[:0]
}

// sweepLocked expires every stream and forgets those idle for the TTL, at
// most once every TTL/4 unless forced.
func (h *MemoryHistory) sweepLocked(now time.Time, force bool) {
	if !force && now.Sub(h.lastSweep) < h.ttl/4 {
		return
	}
	h.lastSweep = now
	for name, st := range h.streams {
		h.expireLocked(st, now)
		if st.n == 0 && now.Sub(st.touched) >= h.ttl {
			delete(h.streams, name)
		}
	}
}

// newEpoch names a new history: random, so that a restarted process never
// repeats one.
func newEpoch() string { return randomHex(8) }

// ---- the wire of history mode ----

// appendEnvelope encodes a push of history mode:
// {"type":"message","stream":…,"offset":…,"epoch":…,"data":…}, or
// "data_base64" for binary; without a stream (SendToClient), only type and
// data.
func appendEnvelope(b []byte, stream string, pos Position, m Message) []byte {
	b = append(b, `{"type":"message"`...)
	if stream != "" {
		b = append(b, `,"stream":`...)
		b = appendJSONString(b, stream)
		b = append(b, `,"offset":`...)
		b = strconv.AppendUint(b, pos.Offset, 10)
		b = append(b, `,"epoch":`...)
		b = appendJSONString(b, pos.Epoch)
	}
	if m.Binary {
		b = append(b, `,"data_base64":"`...)
		b = base64.StdEncoding.AppendEncode(b, m.Data)
		b = append(b, `"}`...)
	} else {
		b = append(b, `,"data":`...)
		b = appendJSONString(b, string(m.Data))
		b = append(b, '}')
	}
	return b
}

func envelope(stream string, pos Position, m Message) Message {
	return Message{Data: appendEnvelope(make([]byte, 0, len(m.Data)+len(stream)+80), stream, pos, m)}
}

// appendJSONString appends s as a JSON string (s is valid UTF-8: keys and
// text messages are checked before they get here).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			b = append(b, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// resumedFrame is {"type":"resumed","streams":{…}}.
type resumedFrame struct {
	Type    string                   `json:"type"`
	Streams map[string]resumedStream `json:"streams"`
}

type resumedStream struct {
	Recovered bool   `json:"recovered"`
	Epoch     string `json:"epoch"`
	Offset    uint64 `json:"offset"`
}

// MaxResumeStreams bounds the streams of one resume parameter; a client
// reads its uid, its groups and "all", and nobody is in ten thousand
// groups.
const MaxResumeStreams = 10000

// MaxPendingStreams bounds the streams of one client's resume parameter
// that it cannot read at connect and that wait for the backend to bind or
// join it (the rest are ignored).
const MaxPendingStreams = 256

// ErrMalformedResume: a resume parameter that is not a JSON object of
// {"epoch": string, "offset": integer ≥ 0} objects. The handshake is
// refused with 400.
var ErrMalformedResume = errors.New("gateway: malformed resume parameter")

// ParseResume reads a resume parameter (its value, URL-decoded): a JSON
// object mapping streams to positions, such as
// {"uid:alice":{"epoch":"e1","offset":7}}. A missing epoch is "" (from
// the oldest message kept), a missing offset 0. Stream names are not
// checked here: a client resumes only the streams it may read, and the
// others are ignored.
func ParseResume(s string) (map[string]Position, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedResume, err)
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: want a JSON object", ErrMalformedResume)
	}
	if len(raw) > MaxResumeStreams {
		return nil, fmt.Errorf("%w: more than %d streams", ErrMalformedResume, MaxResumeStreams)
	}
	out := make(map[string]Position, len(raw))
	for stream, v := range raw {
		var p struct {
			Epoch  *string          `json:"epoch"`
			Offset *json.RawMessage `json:"offset"`
		}
		if err := json.Unmarshal(v, &p); err != nil || string(v) == "null" {
			return nil, fmt.Errorf("%w: stream %q: want {\"epoch\": string, \"offset\": integer}", ErrMalformedResume, stream)
		}
		var pos Position
		if p.Epoch != nil {
			pos.Epoch = *p.Epoch
		}
		if p.Offset != nil {
			n, err := strconv.ParseUint(string(*p.Offset), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: stream %q: offset %s is not an integer ≥ 0", ErrMalformedResume, stream, *p.Offset)
			}
			pos.Offset = n
		}
		out[stream] = pos
	}
	return out, nil
}
