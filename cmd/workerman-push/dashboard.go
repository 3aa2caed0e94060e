package main

import (
	"bytes"
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/workerman-go/workerman/gateway"
)

// dashboardHTML is the dashboard: one page, its style and its script, no
// build step. It loads without a key; every figure it shows and every push
// it sends goes through the API with the key it asks for.
//
//go:embed dashboard.html
var dashboardHTML []byte

// serveDashboard serves GET / on the -api address.
func serveDashboard(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// The page talks to its own origin only, and no other site may frame
	// it (it holds the API key).
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "+
		"connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(dashboardHTML))
}

// nodeStatsMethod is the API method the dashboard polls: every live node's
// figures (nodeStats), this node's first, and the cluster's (clusterStats).
// It is the push server's own,
// next to GatewayWorker's methods, and needs the key like them.
const nodeStatsMethod = "getNodeStats"

// nodeStatsQuery is what a node asks the others for their figures through
// the cluster's scatter-gather. It is not JSON, so a node that predates it
// answers with the gateway's "malformed request" and is shown as such. A
// node that answers with its row but no digests (nodeStatsReply) has its
// uids and groups counted as if no other node held them, as an estimate.
var nodeStatsQuery = []byte("workerman-push:getNodeStats")

type nodeStatsAnswer struct {
	Nodes []nodeStats `json:"nodes"`
	// Cluster is the cluster's figures, over the nodes listed.
	Cluster clusterStats `json:"cluster"`
	// Partial says why some nodes are missing ("" when none is).
	Partial string `json:"partial,omitempty"`
}

// clusterStats are the dashboard's cards. Clients, connections,
// deliveries and drops are sums over the nodes (each client is on one
// node); uids and groups are distinct counts across the nodes, as
// getAllUidCount and getAllGroupIdList count them: a uid bound on two
// nodes (a phone and a laptop) counts once, as does a group with members
// on two nodes. They are exact while every node holds at most
// exactDigestLimit of them, and an estimate beyond (see distinctDigest):
// UIDsEstimated and GroupsEstimated say which.
type clusterStats struct {
	Clients         int    `json:"clients"`
	UIDs            int    `json:"uids"`
	Groups          int    `json:"groups"`
	Connections     int    `json:"connections"`
	Deliveries      uint64 `json:"deliveries"`
	Dropped         uint64 `json:"dropped"`
	UIDsEstimated   bool   `json:"uids_estimated,omitempty"`
	GroupsEstimated bool   `json:"groups_estimated,omitempty"`
}

// nodeStatsReply is a node's answer to nodeStatsQuery: its row, and
// digests of its uids and groups for the cluster's distinct counts.
type nodeStatsReply struct {
	nodeStats
	UIDDigest   distinctDigest `json:"uid_digest"`
	GroupDigest distinctDigest `json:"group_digest"`
}

// nodeStatsHandler serves POST /api/getNodeStats with the API's key,
// status codes and error bodies.
func (s *server) nodeStatsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, answer := s.serveNodeStats(w, r)
		s.observeAPI(nodeStatsMethod, status)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(answer)
	})
}

func (s *server) serveNodeStats(w http.ResponseWriter, r *http.Request) (int, any) {
	fail := func(status int, msg string) (int, any) { return status, map[string]string{"error": msg} }
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="workerman-push"`)
		return fail(http.StatusUnauthorized, "missing or wrong API key (Authorization: Bearer <key>)")
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return fail(http.StatusMethodNotAllowed, "use POST")
	}
	io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 1<<20)) // no parameters
	self := s.nodeStats()
	ans := nodeStatsAnswer{Nodes: []nodeStats{self}}
	var others []nodeStatsReply
	if s.broker != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		others, ans.Partial = s.otherNodesStats(ctx)
	}
	ans.Cluster = clusterStats{Clients: self.Clients, UIDs: self.UIDs, Groups: self.Groups,
		Connections: self.Connections, Deliveries: self.Deliveries, Dropped: self.Dropped}
	if len(others) == 0 {
		return http.StatusOK, ans // one node: its own counts are the distinct ones
	}
	uids := []distinctDigest{digestOf(s.g.LocalUIDs())}
	groups := []distinctDigest{digestOf(s.g.LocalGroups())}
	for _, o := range others {
		ans.Nodes = append(ans.Nodes, o.nodeStats)
		ans.Cluster.Clients += o.Clients
		ans.Cluster.Connections += o.Connections
		ans.Cluster.Deliveries += o.Deliveries
		ans.Cluster.Dropped += o.Dropped
		uids = append(uids, o.UIDDigest.orCount(o.UIDs))
		groups = append(groups, o.GroupDigest.orCount(o.Groups))
	}
	ans.Cluster.UIDs, ans.Cluster.UIDsEstimated = distinctCount(uids)
	ans.Cluster.Groups, ans.Cluster.GroupsEstimated = distinctCount(groups)
	return http.StatusOK, ans
}

// otherNodesStats asks every other live node for its figures, sorted by
// node name, and says which could not be had.
func (s *server) otherNodesStats(ctx context.Context) ([]nodeStatsReply, string) {
	answers, err := s.broker.Gather(ctx, nodeStatsQuery)
	if err != nil {
		return nil, fmt.Sprintf("other nodes not reached: %v", err)
	}
	var out []nodeStatsReply
	unknown := 0
	for _, a := range answers {
		var st nodeStatsReply
		if json.Unmarshal(a, &st) != nil || st.Node == "" {
			unknown++
			continue
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b nodeStatsReply) int { return strings.Compare(a.Node, b.Node) })
	if unknown > 0 {
		return out, fmt.Sprintf("%d node(s) answered without figures (an older workerman-push?)", unknown)
	}
	return out, ""
}

// authorized checks the bearer key as the gateway's API does.
func (s *server) authorized(r *http.Request) bool {
	scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || s.cfg.APIKey == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(key)), []byte(s.cfg.APIKey)) == 1
}

// statsBroker is the cluster's broker with one addition: a node answers
// nodeStatsQuery with its own figures, so that any node's dashboard shows
// every node. Everything else passes through to the gateway.
type statsBroker struct {
	gateway.Broker
	stats func() (nodeStatsReply, bool)
}

func (b *statsBroker) Start(node string, h gateway.Handler) error {
	return b.Broker.Start(node, statsHandler{h, b.stats})
}

type statsHandler struct {
	gateway.Handler
	stats func() (nodeStatsReply, bool)
}

func (h statsHandler) HandleRequest(payload []byte) []byte {
	if !bytes.Equal(payload, nodeStatsQuery) {
		return h.Handler.HandleRequest(payload)
	}
	st, ok := h.stats()
	if !ok {
		return []byte("{}") // still starting
	}
	out, _ := json.Marshal(st)
	return out
}

// ---- distinct counts across the cluster ----
//
// The dashboard's uid and group cards count each uid and group once across
// the cluster. The exact way, getAllUidCount's, gathers every node's list
// and merges them: a million-connection cluster would send tens of
// megabytes and sort a million strings on every refresh (every two
// seconds, for each open page). Instead each node answers with a digest of
// bounded size:
//
//   - while it holds at most exactDigestLimit names, their 64-bit hashes
//     (8 bytes each, 32 KiB at most): the size of the union is the exact
//     count (two names share a hash with a probability of about n²/2⁶⁵:
//     never, in practice);
//   - beyond, a HyperLogLog sketch of them: hllRegisters one-byte
//     registers (16 KiB) whatever the count. The merged sketches estimate
//     the size of the union with a standard error of 1.04/√16384 ≈ 0.8 %;
//     the estimate is kept between the largest node's count and the sum of
//     the nodes' counts, and the page marks it as an estimate.
//
// A node's answer is thus at most about 90 KB of JSON per refresh, and
// making it is one pass over its own uids and groups (copied under the
// gateway's read lock, then hashed: tens of milliseconds for a million).
// The exact figures stay one API call away (getAllUidCount,
// getAllGroupIdList), at the price above.

// exactDigestLimit is how many names a node sends as hashes at most (a
// variable so that the tests reach the sketch with a few clients).
var exactDigestLimit = 4096

const (
	hllPrecision = 14
	hllRegisters = 1 << hllPrecision
	hllQ         = 64 - hllPrecision // the hash bits that give a register its value
)

// distinctDigest is one node's share of a distinct count across the
// cluster: of its uids, or of its groups. It travels in nodeStatsReply.
type distinctDigest struct {
	// N is how many names the node holds.
	N int `json:"n"`
	// Hashes are the names' nameHash, 8 bytes each, little-endian, while
	// N <= exactDigestLimit.
	Hashes []byte `json:"h,omitempty"`
	// Registers are a HyperLogLog sketch of the names' nameHash beyond.
	Registers []byte `json:"r,omitempty"`
}

// digestOf is the digest of a node's names, each given once.
func digestOf(names []string) distinctDigest {
	d := distinctDigest{N: len(names)}
	if len(names) <= exactDigestLimit {
		d.Hashes = make([]byte, 0, 8*len(names))
		for _, name := range names {
			d.Hashes = binary.LittleEndian.AppendUint64(d.Hashes, nameHash(name))
		}
		return d
	}
	d.Registers = make([]byte, hllRegisters)
	for _, name := range names {
		hllAdd(d.Registers, nameHash(name))
	}
	return d
}

// orCount is d, or the bare count a node gave in its row when it sent no
// digest (a version without them).
func (d distinctDigest) orCount(n int) distinctDigest {
	if d.N == 0 && d.Hashes == nil && d.Registers == nil {
		d.N = n
	}
	return d
}

// distinctCount is the number of distinct names across the nodes'
// digests, and whether it is an estimate.
func distinctCount(ds []distinctDigest) (int, bool) {
	exact := make(map[uint64]struct{})
	var regs []byte
	lower, upper, countOnly := 0, 0, 0
	for _, d := range ds {
		lower = max(lower, d.N)
		upper += d.N
		switch {
		case d.N <= 0:
		case len(d.Hashes) == 8*d.N && d.Registers == nil:
			for i := 0; i < len(d.Hashes); i += 8 {
				exact[binary.LittleEndian.Uint64(d.Hashes[i:])] = struct{}{}
			}
		case len(d.Registers) == hllRegisters && d.Hashes == nil:
			if regs == nil {
				regs = make([]byte, hllRegisters)
			}
			for i, r := range d.Registers {
				regs[i] = max(regs[i], r)
			}
		default:
			// A count without a digest we can read: its names count as if
			// no other node held them (an upper bound).
			countOnly += d.N
		}
	}
	if regs == nil && countOnly == 0 {
		return len(exact), false
	}
	n := float64(len(exact))
	if regs != nil {
		for h := range exact {
			hllAdd(regs, h)
		}
		n = hllEstimate(regs)
	}
	n += float64(countOnly)
	// The union has at least the largest node's names, and at most all of
	// them (registers no sketch could have set give +Inf or NaN).
	if lower = max(lower, len(exact)); !(n >= float64(lower)) {
		n = float64(lower)
	}
	return int(math.Round(min(n, float64(upper)))), true
}

// nameHash is FNV-1a over the name, spread by MurmurHash3's finalizer
// (FNV's bits mix poorly for short names; the sketch takes a register from
// the low bits and its value from the others). Nodes compare each other's
// hashes: it must never change.
func nameHash(name string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// hllAdd adds a hash to a HyperLogLog sketch: the low bits choose the
// register, which keeps the longest run of trailing zeros (plus one) seen
// in the other bits.
func hllAdd(regs []byte, h uint64) {
	i := h & (hllRegisters - 1)
	rank := byte(bits.TrailingZeros64(h>>hllPrecision|1<<hllQ)) + 1
	regs[i] = max(regs[i], rank)
}

// hllEstimate is the number of distinct hashes added to the sketch, by
// Ertl's improved estimator ("New cardinality estimation algorithms for
// HyperLogLog sketches", 2017; Redis's PFCOUNT uses it): no bias
// correction tables, and good from a handful to billions.
func hllEstimate(regs []byte) float64 {
	var hist [hllQ + 2]int
	for _, r := range regs {
		hist[min(int(r), hllQ+1)]++
	}
	m := float64(len(regs))
	z := m * hllTau((m-float64(hist[hllQ+1]))/m)
	for k := hllQ; k >= 1; k-- {
		z += float64(hist[k])
		z *= 0.5
	}
	z += m * hllSigma(float64(hist[0])/m)
	return m * m / (2 * math.Ln2) / z // α∞·m²/z, α∞ = 1/(2 ln 2)
}

func hllSigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		prev := z
		z += x * y
		y += y
		if z == prev {
			return z
		}
	}
}

func hllTau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		prev := z
		y *= 0.5
		z -= (1 - x) * (1 - x) * y
		if z == prev {
			return z / 3
		}
	}
}
