// Command resumebench measures recovery after a disconnect: N clients,
// each with a stream of its own (ours: its uid, from its JWT; Centrifugo:
// a channel of its own, with history and recovery), are connected and at
// a position; they all disconnect; M messages are pushed to each stream;
// then they all reconnect at once (P connects in flight) and resume. It
// reports the time until every client has its M missed messages and the
// server's answer that it recovered, the server's CPU for that, and
// checks that each client got exactly the M messages after its position,
// in order.
//
// Our push server (cmd/workerman-push -history-size) and Centrifugo v6
// (its memory engine's history with force_recovery) run in the same run,
// rounds interleaved, each server pinned to CPU 0 and this program to
// CPU 1.
//
//	cd bench && go run ./cmd/resumebench            # 1,000 clients missing 100 each, writes results/resume-<date>.md
//	cd bench && go run ./cmd/resumebench -smoke     # tiny sizes, one round
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/workerman-go/workerman/bench/internal/benchproc"
	"github.com/workerman-go/workerman/bench/internal/pushsub"
)

const (
	apiKey    = "resumebench-key"
	jwtSecret = "resumebench-secret-0123456789abcdef"
)

type options struct {
	clients  int
	missed   int
	rounds   int
	parallel int
	servers  []string
	out      string
	smoke    bool
	centBin  string
	batchTo  int // streams per push call
}

var pinning = benchproc.Pinning{PinnedEnv: "RESUMEBENCH_PINNED"}

func main() {
	var opt options
	servers := flag.String("servers", "ours,centrifugo", "servers: ours, centrifugo")
	flag.IntVar(&opt.clients, "clients", 1000, "clients, each with a stream of its own")
	flag.IntVar(&opt.missed, "missed", 100, "messages pushed to each stream while its client is away")
	flag.IntVar(&opt.rounds, "rounds", 3, "rounds, servers interleaved")
	flag.IntVar(&opt.parallel, "parallel", 100, "connects in flight")
	flag.IntVar(&opt.batchTo, "batch", 100, "streams per push call (sendToUid uids, Centrifugo broadcast channels)")
	flag.StringVar(&opt.out, "out", "results", "directory of resume-<date>.md (empty: stdout only)")
	flag.StringVar(&opt.centBin, "centrifugo-bin", "", "a centrifugo v6 binary to use instead of building it")
	flag.BoolVar(&opt.smoke, "smoke", false, "tiny sizes, one round: checks that the benchmark runs")
	flag.Parse()
	for _, s := range strings.Split(*servers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			if s != pushsub.Ours && s != pushsub.Centrifugo {
				log.Fatalf("unknown server %q", s)
			}
			opt.servers = append(opt.servers, s)
		}
	}
	if opt.smoke {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["clients"] {
			opt.clients = 50
		}
		if !set["missed"] {
			opt.missed = 10
		}
		if !set["rounds"] {
			opt.rounds = 1
		}
		if !set["out"] {
			opt.out = ""
		}
	}
	if opt.clients > 15000 {
		log.Fatal("-clients: at most 15,000 (one process's descriptors)")
	}
	pinning.Self()
	if err := run(opt); err != nil {
		log.Fatal(err)
	}
}

type sample struct {
	Server    string
	Round     int
	Seconds   float64 // first reconnect to the last client recovered
	CPUPerMsg float64 // server µs per recovered message
	P50, P99  float64 // per client: reconnect to recovered, ms
	Error     string
}

func run(opt options) error {
	tmp, err := os.MkdirTemp("", "resumebench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var ours, cent, rev string
	if slices.Contains(opt.servers, pushsub.Ours) {
		if ours, rev, err = benchproc.BuildOurs(tmp); err != nil {
			return err
		}
	}
	if slices.Contains(opt.servers, pushsub.Centrifugo) {
		if cent, err = benchproc.CentrifugoBinary(opt.centBin); err != nil {
			return err
		}
	}
	started := time.Now()
	var samples []sample
	for round := 1; round <= opt.rounds; round++ {
		for _, name := range opt.servers {
			log.Printf("round %d/%d: %s", round, opt.rounds, name)
			bin := ours
			if name == pushsub.Centrifugo {
				bin = cent
			}
			s := measure(opt, name, bin, tmp)
			s.Round = round
			if s.Error != "" {
				log.Printf("  %s failed: %s", name, s.Error)
			} else {
				log.Printf("  all resumed in %.3f s, %.2f µs of server CPU per message, per client p50 %.1f ms p99 %.1f ms", s.Seconds, s.CPUPerMsg, s.P50, s.P99)
			}
			samples = append(samples, s)
		}
	}
	report := markdown(opt, samples, rev, started)
	fmt.Println(report)
	if opt.out != "" {
		if err := os.MkdirAll(opt.out, 0o755); err != nil {
			return err
		}
		path := filepath.Join(opt.out, "resume-"+started.Format("2006-01-02")+".md")
		if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
			return err
		}
		log.Printf("wrote %s", path)
	}
	for _, s := range samples {
		if s.Error != "" {
			return errors.New("a measurement failed")
		}
	}
	return nil
}

// server is one running server.
type server struct {
	*benchproc.Proc
	kind    string
	ws, api string
}

func start(kind, bin, tmp string, opt options) (*server, error) {
	p1, err := benchproc.FreePort()
	if err != nil {
		return nil, err
	}
	p2, err := benchproc.FreePort()
	if err != nil {
		return nil, err
	}
	s := &server{kind: kind}
	var args []string
	ttl := "600s"
	if kind == pushsub.Ours {
		s.ws = fmt.Sprintf("ws://127.0.0.1:%d/", p1)
		s.api = fmt.Sprintf("http://127.0.0.1:%d", p2)
		args = []string{bin, "-listen", fmt.Sprintf("websocket://127.0.0.1:%d", p1), "-api", s.api, "-api-key", apiKey,
			"-jwt-secret", jwtSecret, "-history-size", strconv.Itoa(opt.missed + 10), "-history-ttl", "10m"}
	} else {
		s.ws = fmt.Sprintf("ws://127.0.0.1:%d/connection/websocket", p1)
		s.api = fmt.Sprintf("http://127.0.0.1:%d", p1)
		cfg := filepath.Join(tmp, "centrifugo.json")
		extra := map[string]any{"channel": map[string]any{"without_namespace": map[string]any{
			"allow_subscribe_for_client":    true,
			"allow_subscribe_for_anonymous": true,
			"history_size":                  opt.missed + 10,
			"history_ttl":                   ttl,
			"force_recovery":                true,
		}}}
		if err := os.WriteFile(cfg, benchproc.CentrifugoConfig(p1, apiKey, extra), 0o644); err != nil {
			return nil, err
		}
		args = []string{bin, "--config", cfg}
	}
	s.Proc, err = benchproc.Start(filepath.Join(tmp, kind+".log"), pinning.Server(args...)...)
	if err != nil {
		return nil, err
	}
	if err := s.WaitReady(30*time.Second, false, func(hc *http.Client) error {
		if err := benchproc.DialWS(s.ws); err != nil {
			return err
		}
		if kind == pushsub.Centrifugo {
			return pushsub.Call(hc, s.api, apiKey, kind, "info", map[string]any{})
		}
		return pushsub.Call(hc, s.api, apiKey, kind, "sendToGroup", map[string]string{"group": "probe", "message": "probe"})
	}); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%s: %w\n%s", kind, err, s.LogTail())
	}
	return s, nil
}

// client is one bench client: its stream and its position in it.
type client struct {
	i      int
	name   string // its uid or channel: u<i>
	epoch  string
	offset uint64
	got    []string // the messages of its last connection
	conn   *pushsub.Conn
}

func measure(opt options, kind, bin, tmp string) (smp sample) {
	smp.Server = kind
	fail := func(err error) sample { smp.Error = err.Error(); return smp }
	s, err := start(kind, bin, tmp, opt)
	if err != nil {
		return fail(err)
	}
	defer s.Stop()
	hc := pushsub.NewHTTPClient(16)
	clients := make([]*client, opt.clients)
	for i := range clients {
		clients[i] = &client{i: i, name: "u" + strconv.Itoa(i)}
	}
	// Connected, each at a position: one message each.
	if err := each(clients, opt.parallel, func(c *client) error { _, err := c.connect(s, false, 0); return err }); err != nil {
		return fail(fmt.Errorf("connect: %w", err))
	}
	if err := pushAll(hc, s, clients, opt.batchTo, "first"); err != nil {
		return fail(err)
	}
	if err := each(clients, opt.parallel, func(c *client) error { return c.read(s.kind, 1, false, false) }); err != nil {
		return fail(fmt.Errorf("first message: %w", err))
	}
	// Away: every client disconnects; missed messages are pushed.
	for _, c := range clients {
		c.conn.Close()
	}
	for k := range opt.missed {
		if err := pushAll(hc, s, clients, opt.batchTo, fmt.Sprintf("m%04d", k)); err != nil {
			return fail(err)
		}
	}
	time.Sleep(500 * time.Millisecond) // the server is done with the closes and pushes
	// All back at once: each resumes.
	cpu0 := s.CPU()
	t0 := time.Now()
	var mu sync.Mutex
	var each_ []float64
	err = each(clients, opt.parallel, func(c *client) error {
		took, err := c.connect(s, true, opt.missed)
		if err != nil {
			return err
		}
		mu.Lock()
		each_ = append(each_, float64(took.Microseconds())/1000)
		mu.Unlock()
		return nil
	})
	smp.Seconds = time.Since(t0).Seconds()
	cpu := s.CPU() - cpu0
	if err != nil {
		return fail(fmt.Errorf("resume: %w", err))
	}
	for _, c := range clients {
		c.conn.Close()
		if len(c.got) != opt.missed {
			return fail(fmt.Errorf("%s: %d messages replayed, want %d", c.name, len(c.got), opt.missed))
		}
		for k, m := range c.got {
			if want := fmt.Sprintf("m%04d", k); !strings.Contains(m, want) {
				return fail(fmt.Errorf("%s: message %d is %q, want %s", c.name, k, m, want))
			}
		}
	}
	smp.CPUPerMsg = float64(cpu.Microseconds()) / float64(opt.clients*opt.missed)
	smp.P50, smp.P99 = benchproc.Percentile(each_, 0.5), benchproc.Percentile(each_, 0.99)
	return smp
}

// each runs f for every client, parallel at a time.
func each(clients []*client, parallel int, f func(*client) error) error {
	return pushsub.Each(len(clients), parallel, func(i int) error {
		if err := f(clients[i]); err != nil {
			return fmt.Errorf("%s: %w", clients[i].name, err)
		}
		return nil
	})
}

// pushAll pushes msg to every client's stream, batch streams per call.
func pushAll(hc *http.Client, s *server, clients []*client, batch int, msg string) error {
	for lo := 0; lo < len(clients); lo += batch {
		var names []string
		for _, c := range clients[lo:min(lo+batch, len(clients))] {
			names = append(names, c.name)
		}
		var err error
		if s.kind == pushsub.Ours {
			err = pushsub.Call(hc, s.api, apiKey, s.kind, "sendToUid", map[string]any{"uids": names, "message": msg})
		} else {
			err = pushsub.Call(hc, s.api, apiKey, s.kind, "broadcast", map[string]any{"channels": names, "data": map[string]string{"m": msg}})
		}
		if err != nil {
			return fmt.Errorf("push %s: %w", msg, err)
		}
	}
	return nil
}

// connect connects c; resume: from its position, reading the replay of
// missed messages and the server's answer. It returns how long that took.
func (c *client) connect(s *server, resume bool, missed int) (time.Duration, error) {
	t0 := time.Now()
	u, _ := url.Parse(s.ws)
	if s.kind == pushsub.Ours {
		q := url.Values{"token": {token(c.name)}}
		if resume {
			b, _ := json.Marshal(map[string]any{"uid:" + c.name: map[string]any{"epoch": c.epoch, "offset": c.offset}})
			q.Set("resume", string(b))
		}
		u.RawQuery = q.Encode()
	}
	conn, err := pushsub.Dial(u, nil)
	if err != nil {
		return 0, err
	}
	c.conn = conn
	c.got = c.got[:0]
	if s.kind == pushsub.Ours {
		b, err := conn.Next()
		if err != nil || !bytes.Contains(b, []byte(`"welcome"`)) {
			return 0, fmt.Errorf("no welcome (%q, %v)", b, err)
		}
		if resume {
			return time.Since(t0), c.read(s.kind, missed, true, false)
		}
		return 0, nil
	}
	// Centrifugo: connect, then subscribe (recovering).
	if err := conn.WriteText([]byte(`{"id":1,"connect":{"name":"resumebench"}}`)); err != nil {
		return 0, err
	}
	sub := map[string]any{"channel": c.name}
	if resume {
		sub["recover"], sub["epoch"], sub["offset"] = true, c.epoch, c.offset
	}
	b, _ := json.Marshal(map[string]any{"id": 2, "subscribe": sub})
	if err := conn.WriteText(b); err != nil {
		return 0, err
	}
	if err := c.read(s.kind, missed, resume, true); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// read reads until c has n more messages (and, resuming, the answer that
// it recovered; subscribing, Centrifugo's subscribe reply, which carries
// the replay).
func (c *client) read(kind string, n int, resume, subscribing bool) error {
	c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.conn.SetDeadline(time.Time{})
	answered := !resume
	subscribed := !subscribing
	for len(c.got) < n || !answered || !subscribed {
		b, err := c.conn.Next()
		if err != nil {
			return fmt.Errorf("after %d of %d messages: %w", len(c.got), n, err)
		}
		if kind == pushsub.Ours {
			var f struct {
				Type    string `json:"type"`
				Stream  string `json:"stream"`
				Offset  uint64 `json:"offset"`
				Epoch   string `json:"epoch"`
				Data    string `json:"data"`
				Streams map[string]struct {
					Recovered bool `json:"recovered"`
				} `json:"streams"`
			}
			if err := json.Unmarshal(b, &f); err != nil {
				return fmt.Errorf("frame %q: %v", b, err)
			}
			switch f.Type {
			case "resumed":
				if !f.Streams["uid:"+c.name].Recovered {
					return fmt.Errorf("not recovered: %s", b)
				}
				answered = true
			case "message":
				if c.epoch != "" && (f.Epoch != c.epoch || f.Offset != c.offset+1) {
					return fmt.Errorf("offset %d of %s after %d of %s", f.Offset, f.Epoch, c.offset, c.epoch)
				}
				c.epoch, c.offset = f.Epoch, f.Offset
				c.got = append(c.got, f.Data)
			}
			continue
		}
		// Centrifugo: replies and pushes, several per frame, a line each.
		for _, line := range bytes.Split(b, []byte("\n")) {
			if len(bytes.TrimSpace(line)) == 0 || string(line) == "{}" {
				continue
			}
			var f struct {
				ID        int `json:"id"`
				Subscribe *struct {
					Epoch        string `json:"epoch"`
					Offset       uint64 `json:"offset"`
					Recovered    bool   `json:"recovered"`
					Publications []struct {
						Data   json.RawMessage `json:"data"`
						Offset uint64          `json:"offset"`
					} `json:"publications"`
				} `json:"subscribe"`
				Push *struct {
					Pub *struct {
						Data   json.RawMessage `json:"data"`
						Offset uint64          `json:"offset"`
					} `json:"pub"`
				} `json:"push"`
				Error *struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(line, &f); err != nil {
				return fmt.Errorf("frame %q: %v", line, err)
			}
			switch {
			case f.Error != nil:
				return fmt.Errorf("centrifugo: %s", f.Error.Message)
			case f.Subscribe != nil:
				if resume && (!f.Subscribe.Recovered || f.Subscribe.Epoch != c.epoch) {
					return fmt.Errorf("not recovered: %s", line)
				}
				for _, p := range f.Subscribe.Publications {
					if p.Offset != c.offset+1 {
						return fmt.Errorf("offset %d after %d", p.Offset, c.offset)
					}
					c.offset = p.Offset
					c.got = append(c.got, string(p.Data))
				}
				if !resume {
					c.epoch, c.offset = f.Subscribe.Epoch, f.Subscribe.Offset
				}
				subscribed, answered = true, true
			case f.Push != nil && f.Push.Pub != nil:
				if c.epoch != "" && f.Push.Pub.Offset != c.offset+1 {
					return fmt.Errorf("offset %d after %d", f.Push.Pub.Offset, c.offset)
				}
				c.offset = f.Push.Pub.Offset
				c.got = append(c.got, string(f.Push.Pub.Data))
			}
		}
	}
	return nil
}

// token is a JWT (HS256) with sub = uid, valid for an hour.
func token(uid string) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	body, _ := json.Marshal(map[string]any{"sub": uid, "exp": time.Now().Add(time.Hour).Unix()})
	msg := head + "." + enc.EncodeToString(body)
	mac := hmac.New(sha256.New, []byte(jwtSecret))
	mac.Write([]byte(msg))
	return msg + "." + enc.EncodeToString(mac.Sum(nil))
}

func markdown(opt options, samples []sample, rev string, started time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Resume benchmark: workerman-push vs Centrifugo v6\n\n")
	fmt.Fprintf(&b, "Run %s. Command: `cd bench && go run ./cmd/resumebench %s`\n\n", started.Format("2006-01-02 15:04 MST"), strings.Join(os.Args[1:], " "))
	fmt.Fprintf(&b, "Machine: %s. ours = cmd/workerman-push at %s (-history-size, memory); Centrifugo %s (memory engine, history with force_recovery). "+
		"%s clients, each with a stream of its own (ours: its uid from its JWT; Centrifugo: its channel), at a position; all disconnect; "+
		"%d messages are pushed to each stream (%d streams per API call); all reconnect at once (%d in flight) and resume. "+
		"Each client's replay is checked: exactly the missed messages, in order, recovered. %d rounds, servers interleaved; medians.\n\n",
		benchproc.Machine(pinning.NumCPU()), rev, benchproc.CentrifugoVersion, benchproc.Thousands(opt.clients), opt.missed, opt.batchTo, opt.parallel, opt.rounds)
	type metric struct {
		name, unit, format string
		f                  func(sample) float64
	}
	metrics := []metric{
		{"time until every client resumed", "s", "%.3f", func(s sample) float64 { return s.Seconds }},
		{"server CPU per recovered message", "µs", "%.2f", func(s sample) float64 { return s.CPUPerMsg }},
		{"per client, reconnect to recovered, p50", "ms", "%.1f", func(s sample) float64 { return s.P50 }},
		{"per client, reconnect to recovered, p99", "ms", "%.1f", func(s sample) float64 { return s.P99 }},
	}
	fmt.Fprintf(&b, "| measure |")
	for _, s := range opt.servers {
		fmt.Fprintf(&b, " %s |", s)
	}
	both := slices.Contains(opt.servers, pushsub.Ours) && slices.Contains(opt.servers, pushsub.Centrifugo)
	if both {
		fmt.Fprintf(&b, " ours / centrifugo |")
	}
	fmt.Fprintf(&b, "\n|---|")
	for range opt.servers {
		fmt.Fprintf(&b, "---:|")
	}
	if both {
		fmt.Fprintf(&b, "---:|")
	}
	fmt.Fprintln(&b)
	for _, m := range metrics {
		fmt.Fprintf(&b, "| %s (%s) |", m.name, m.unit)
		vals := map[string]float64{}
		for _, name := range opt.servers {
			var good []sample
			for _, s := range samples {
				if s.Server == name && s.Error == "" {
					good = append(good, s)
				}
			}
			if len(good) == 0 {
				fmt.Fprintf(&b, " failed |")
				continue
			}
			vals[name] = benchproc.Median(good, m.f)
			fmt.Fprintf(&b, " "+m.format+" |", vals[name])
		}
		if both {
			o, ok1 := vals[pushsub.Ours]
			c, ok2 := vals[pushsub.Centrifugo]
			if ok1 && ok2 && c > 0 {
				fmt.Fprintf(&b, " %.2f× |", o/c)
			} else {
				fmt.Fprintf(&b, " – |")
			}
		}
		fmt.Fprintln(&b)
	}
	fmt.Fprintf(&b, "\nPer round (all resumed s, µs/message):\n\n")
	for _, name := range opt.servers {
		fmt.Fprintf(&b, "- %s:", name)
		for _, s := range samples {
			if s.Server != name {
				continue
			}
			if s.Error != "" {
				fmt.Fprintf(&b, " [failed: %s]", benchproc.FirstLine(s.Error))
			} else {
				fmt.Fprintf(&b, " [%.3f, %.2f]", s.Seconds, s.CPUPerMsg)
			}
		}
		fmt.Fprintln(&b)
	}
	return b.String()
}
