package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/workerman-go/workerman/bench/internal/benchproc"
	"github.com/workerman-go/workerman/bench/internal/procstat"
)

// runNatsd is the -natsd role: a nats-server on 127.0.0.1:port with its
// monitoring endpoint on 127.0.0.1:httpPort, until stdin closes.
func runNatsd(port, httpPort int) {
	// JetStream on, for ours+history (the cluster's history); unused by
	// the others.
	store, err := os.MkdirTemp("", "clusterbench-js")
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	defer os.RemoveAll(store)
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		HTTPHost:  "127.0.0.1",
		HTTPPort:  httpPort,
		NoSigs:    true,
		NoLog:     true,
		MaxConn:   1000,
		JetStream: true,
		StoreDir:  store,
	})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		fmt.Println("ERR nats-server not ready after 10 s")
		os.Exit(1)
	}
	fmt.Println("READY")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
	}
	s.Shutdown()
	s.WaitForShutdown()
}

// natsd is the benchmark's nats-server (a child process, pinned with the
// servers) and the orchestrator's view of it: the monitoring endpoint and
// a tap subscriber on ">" that counts every message published, by subject.
type natsd struct {
	cmd     *exec.Cmd
	stdin   interface{ Close() error }
	url     string // nats://127.0.0.1:port
	monitor string // http://127.0.0.1:port
	tap     *nats.Conn

	mu        sync.Mutex
	published map[string]int64 // subject → messages the tap saw
}

const tapName = "clusterbench-tap"

func startNatsd(self string) (*natsd, error) {
	port, err := benchproc.FreePort()
	if err != nil {
		return nil, err
	}
	hport, err := benchproc.FreePort()
	if err != nil {
		return nil, err
	}
	args := pinning.Server(self, "-natsd", "-natsd-port", fmt.Sprint(port), "-natsd-http", fmt.Sprint(hport))
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n := &natsd{cmd: cmd, stdin: in, url: fmt.Sprintf("nats://127.0.0.1:%d", port),
		monitor: fmt.Sprintf("http://127.0.0.1:%d", hport), published: map[string]int64{}}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case ready <- sc.Text():
			default:
			}
		}
	}()
	select {
	case l := <-ready:
		if l != "READY" {
			n.stop()
			return nil, fmt.Errorf("nats-server: %s", l)
		}
	case <-time.After(15 * time.Second):
		n.stop()
		return nil, fmt.Errorf("nats-server not ready after 15 s")
	}
	n.tap, err = nats.Connect(n.url, nats.Name(tapName))
	if err != nil {
		n.stop()
		return nil, fmt.Errorf("tap: %w", err)
	}
	sub, err := n.tap.Subscribe(">", func(m *nats.Msg) {
		n.mu.Lock()
		n.published[m.Subject]++
		n.mu.Unlock()
	})
	if err != nil {
		n.stop()
		return nil, fmt.Errorf("tap: %w", err)
	}
	sub.SetPendingLimits(-1, -1)
	if err := n.tap.Flush(); err != nil {
		n.stop()
		return nil, fmt.Errorf("tap: %w", err)
	}
	return n, nil
}

func (n *natsd) pid() int           { return n.cmd.Process.Pid }
func (n *natsd) cpu() time.Duration { return procstat.CPU(n.pid()) }
func (n *natsd) rss() int64         { return procstat.RSS(n.pid()) }

func (n *natsd) stop() {
	if n.tap != nil {
		n.tap.Close()
	}
	n.stdin.Close()
	done := make(chan struct{})
	go func() { n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		n.cmd.Process.Kill()
		<-done
	}
}

// natsCounts is a snapshot of the server's counters.
type natsCounts struct {
	InMsgs, OutMsgs int64            // /varz: everything the server received and sent
	TapOut          int64            // of OutMsgs, what went to the tap
	SubMsgs         int64            // deliveries to the nodes' subscriptions on the push subject
	PushSubs        int              // the nodes' subscriptions on the push subject
	Published       map[string]int64 // per subject, as the tap saw them
}

// counts reads /varz and /connz (subscriptions in detail); subject is the
// push subject whose subscriptions are counted. The tap is flushed first,
// so that what it counted covers what the server had received.
func (n *natsd) counts(subject string) (natsCounts, error) {
	var c natsCounts
	if err := n.tap.Flush(); err != nil {
		return c, err
	}
	var varz struct {
		InMsgs  int64 `json:"in_msgs"`
		OutMsgs int64 `json:"out_msgs"`
	}
	if err := getJSON(n.monitor+"/varz", &varz); err != nil {
		return c, err
	}
	var connz struct {
		Conns []struct {
			Name    string `json:"name"`
			OutMsgs int64  `json:"out_msgs"`
			Subs    []struct {
				Subject string `json:"subject"`
				Msgs    int64  `json:"msgs"`
			} `json:"subscriptions_list_detail"`
		} `json:"connections"`
	}
	if err := getJSON(n.monitor+"/connz?subs=detail&limit=10000", &connz); err != nil {
		return c, err
	}
	c.InMsgs, c.OutMsgs = varz.InMsgs, varz.OutMsgs
	for _, cn := range connz.Conns {
		if cn.Name == tapName {
			c.TapOut = cn.OutMsgs
			continue
		}
		for _, s := range cn.Subs {
			if s.Subject == subject {
				c.SubMsgs += s.Msgs
				c.PushSubs++
			}
		}
	}
	n.mu.Lock()
	c.Published = make(map[string]int64, len(n.published))
	for k, v := range n.published {
		c.Published[k] = v
	}
	n.mu.Unlock()
	return c, nil
}

// natsDelta is what the server carried between two snapshots.
type natsDelta struct {
	PushIn   int64            `json:"push_in"`   // published on the push subject
	PushOut  int64            `json:"push_out"`  // delivered to the nodes on the push subject
	In       int64            `json:"in"`        // everything received (/varz)
	Out      int64            `json:"out"`       // everything sent, without the tap's copies
	Other    map[string]int64 `json:"other"`     // other subjects' publications, by subject class
	PushSubs int              `json:"push_subs"` // the nodes' subscriptions on the push subject
}

func (a natsCounts) delta(b natsCounts, subject string) natsDelta {
	d := natsDelta{
		PushIn:   b.Published[subject] - a.Published[subject],
		PushOut:  b.SubMsgs - a.SubMsgs,
		In:       b.InMsgs - a.InMsgs,
		Out:      (b.OutMsgs - a.OutMsgs) - (b.TapOut - a.TapOut),
		Other:    map[string]int64{},
		PushSubs: b.PushSubs,
	}
	for subj, v := range b.Published {
		if subj == subject {
			continue
		}
		if x := v - a.Published[subj]; x > 0 {
			d.Other[subjectClass(subj)] += x
		}
	}
	return d
}

// subjectClass names a subject by its first two tokens (an inbox by its
// first): workerman.hb, centrifugo.control, _INBOX.
func subjectClass(s string) string {
	t := strings.SplitN(s, ".", 3)
	if len(t) < 2 || strings.HasPrefix(s, "_") {
		return t[0]
	}
	return t[0] + "." + t[1]
}

func getJSON(url string, v any) error {
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// natsVersion is the version of the nats-server this program runs.
var natsVersion = "v" + server.VERSION
