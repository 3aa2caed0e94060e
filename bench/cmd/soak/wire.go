package main

import (
	"encoding/json"
	"math"
	"math/bits"
	"strconv"
	"sync/atomic"
	"time"
)

// The application protocol between the soak server and its clients. Every
// message is one WebSocket text frame of space-separated fields:
//
//	server → client
//	u <seq> <sent-unix-ns> [padding]   unicast: this connection's seq-th message
//	b <bseq> <sent-unix-ns>            broadcast number bseq (one counter for the server)
//	w <bstart>                         welcome: the connection is registered; every
//	                                   broadcast after bstart is sent to it
//	f <n> <blast> <drops>              answer to bye: unicast 1..n and broadcasts
//	                                   bstart+1..blast were sent, drops were dropped
//	client → server
//	bye                                the client is about to close: send f
//
// "Sent" means accepted by Connection.Send (or, for a broadcast, the
// connection was registered when Worker.Broadcast ran): the server counts a
// unicast only when Send returned nil, so n is exact; see README.md.

// Connection kinds, told to the server in the handshake's query
// (?cid=...&kind=...) so that it can count by kind.
const (
	kindSteady    = "steady"    // long-lived, reads everything, reconnects
	kindChurn     = "churn"     // short-lived, ends with bye and a close frame
	kindReset     = "reset"     // short-lived, ends with an RST (SO_LINGER 0)
	kindNonreader = "nonreader" // never reads after the handshake
	kindHalfOpen  = "halfopen"  // behind the proxy, then vanishes
	kindBadFrame  = "badframe"  // sends an invalid frame after the handshake
)

var kinds = []string{kindSteady, kindChurn, kindReset, kindNonreader, kindHalfOpen, kindBadFrame}

// wellBehaved kinds read everything and must lose nothing.
func wellBehaved(kind string) bool {
	return kind == kindSteady || kind == kindChurn || kind == kindReset
}

func kindIndex(k string) int {
	for i, x := range kinds {
		if x == k {
			return i
		}
	}
	return len(kinds) // "other"
}

func kindName(i int) string {
	if i < len(kinds) {
		return kinds[i]
	}
	return "other"
}

// fields splits a message into at most 4 space-separated numbers after its
// one-letter tag; ok is false when a field is not a number.
func fields(p []byte) (tag byte, v [4]uint64, n int, ok bool) {
	if len(p) == 0 {
		return 0, v, 0, false
	}
	tag = p[0]
	i := 1
	for n < len(v) {
		for i < len(p) && p[i] == ' ' {
			i++
		}
		if i == len(p) || p[i] < '0' || p[i] > '9' {
			break
		}
		var x uint64
		for i < len(p) && p[i] >= '0' && p[i] <= '9' {
			x = x*10 + uint64(p[i]-'0')
			i++
		}
		v[n] = x
		n++
	}
	return tag, v, n, true
}

func appendMsg(dst []byte, tag byte, vals ...uint64) []byte {
	dst = append(dst, tag)
	for _, v := range vals {
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, v, 10)
	}
	return dst
}

// Phases of a run; latency is kept per phase.
const (
	phaseWarmup = iota
	phaseFaults
	phaseRecovery
	phaseMeasuring // the server is forced to collect garbage: kept apart
	nPhases
)

var phaseNames = [nPhases]string{"warm-up", "faults", "recovery", "measuring"}

func phaseIndex(s string) int {
	for i, n := range phaseNames {
		if n == s {
			return i
		}
	}
	return phaseWarmup
}

// hist is a latency histogram with 16 logarithmic buckets per doubling from
// 1 µs (each about 4.4% wide), cheap to fill from many goroutines and to
// merge across processes.
type hist struct {
	Counts []uint64
	N      uint64
	MaxNs  int64
}

// histJSON is a hist on the side channel: only the buckets in use.
type histJSON struct {
	Buckets map[int]uint64 `json:"buckets"`
	MaxNs   int64          `json:"max_ns"`
}

func (h hist) MarshalJSON() ([]byte, error) {
	j := histJSON{Buckets: map[int]uint64{}, MaxNs: h.MaxNs}
	for i, c := range h.Counts {
		if c != 0 {
			j.Buckets[i] = c
		}
	}
	return json.Marshal(j)
}

func (h *hist) UnmarshalJSON(b []byte) error {
	var j histJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*h = hist{Counts: make([]uint64, histBuckets), MaxNs: j.MaxNs}
	for i, c := range j.Buckets {
		if i >= 0 && i < histBuckets {
			h.Counts[i] += c
			h.N += c
		}
	}
	return nil
}

const histBuckets = 16*27 + 2 // up to about 2^27 µs (134 s)

func bucketOf(d time.Duration) int {
	us := d.Microseconds()
	if us < 1 {
		return 0
	}
	// 16 sub-buckets per power of two: the top 4 bits after the leading one.
	e := bits.Len64(uint64(us)) - 1
	var frac uint64
	if e >= 4 {
		frac = (uint64(us) >> (e - 4)) & 15
	} else {
		frac = (uint64(us) << (4 - e)) & 15
	}
	return min(1+e*16+int(frac), histBuckets-1)
}

// bucketTop is the upper edge of bucket i.
func bucketTop(i int) time.Duration {
	if i == 0 {
		return time.Microsecond
	}
	e, frac := (i-1)/16, (i-1)%16
	us := math.Ldexp(1+float64(frac+1)/16, e)
	return time.Duration(us * float64(time.Microsecond))
}

// liveHist is a hist filled concurrently.
type liveHist struct {
	counts [histBuckets]atomic.Uint64
	max    atomic.Int64
}

func (h *liveHist) add(d time.Duration) {
	h.counts[bucketOf(d)].Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

func (h *liveHist) snapshot() hist {
	out := hist{Counts: make([]uint64, histBuckets), MaxNs: h.max.Load()}
	for i := range h.counts {
		out.Counts[i] = h.counts[i].Load()
		out.N += out.Counts[i]
	}
	return out
}

func (h *hist) merge(o hist) {
	if h.Counts == nil {
		h.Counts = make([]uint64, histBuckets)
	}
	for i, c := range o.Counts {
		h.Counts[i] += c
	}
	h.N += o.N
	h.MaxNs = max(h.MaxNs, o.MaxNs)
}

// quantile is the upper edge of the bucket holding quantile q (0 when empty).
func (h *hist) quantile(q float64) time.Duration {
	if h.N == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.N)))
	var seen uint64
	for i, c := range h.Counts {
		seen += c
		if seen >= rank {
			return min(bucketTop(i), time.Duration(h.MaxNs))
		}
	}
	return time.Duration(h.MaxNs)
}
