package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/workerman-go/workerman/pushclient"
)

// Three workerman-push processes, each with an embedded NATS server that
// runs JetStream, the history replicated on all three (-history-size).
// A client's node is killed with SIGKILL while another node keeps pushing
// to the client's uid; the client (pushclient, every node's URL) connects
// to a survivor with its positions and gets every push the API accepted,
// once each, in offset order: the replay of what it missed, resumed, then
// the live pushes.
func TestSIGKILLResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three processes")
	}
	bin := buildPush(t)
	const secret = "resume-secret-0123456789"
	var peers []string
	for range 3 {
		peers = append(peers, routeAddr(t))
	}
	var nodes []*procNode
	for i, name := range []string{"a", "b", "c"} {
		nodes = append(nodes, startProcWith(t, bin, name, "-cluster", peers[i], "-peers", strings.Join(peers, ","),
			"-history-size", "20000", "-jwt-secret", secret, "-nats-store", t.TempDir()))
	}
	for _, n := range nodes {
		// Ready once JetStream has its majority, a meta leader and the
		// history's stream: seconds on a busy machine (bounded polling).
		u := strings.TrimSuffix(n.api, "api/") + "readyz"
		for deadline := time.Now().Add(60 * time.Second); httpGet(t, u) != 200; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s never answered 200 within 60 s; node log:\n%s", u, n.log.String())
			}
		}
	}
	victim, pusher := nodes[0], nodes[1]

	type rec struct {
		data   string
		offset uint64
		epoch  string
	}
	// One channel for both callbacks, so that the test sees them in the
	// order the client ran them: the replay, resumed, the live pushes.
	type event struct {
		m *rec
		r *pushclient.Resumed
	}
	events := make(chan event, 100000)
	tok := token(t, secret, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := pushclient.Dial(ctx, []string{victim.clients, nodes[1].clients, nodes[2].clients}, pushclient.Options{
		Token:             tok,
		MinReconnectDelay: 50 * time.Millisecond,
		MaxReconnectDelay: 500 * time.Millisecond,
		OnMessage: func(_ *pushclient.Client, m pushclient.Message) {
			events <- event{m: &rec{string(m.Data), m.Offset, m.Epoch}}
		},
		OnResumed: func(_ *pushclient.Client, r pushclient.Resumed) { events <- event{r: &r} },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close(); <-cl.Done() })

	// Pushes through node b, about 500 a second, until stop; those the API
	// answered 200 were accepted and must all arrive.
	var mu sync.Mutex
	accepted := map[string]bool{}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			case <-tick.C:
			}
			data := strconv.Itoa(i)
			code, _, err := pusher.call("sendToUid", map[string]any{"uid": "alice", "message": data})
			switch {
			case err == nil && code == 200:
				mu.Lock()
				accepted[data] = true
				mu.Unlock()
			case err == nil && code != 503 && code != 504:
				done <- fmt.Errorf("sendToUid %s: status %d", data, code)
				return
			}
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}()

	got := map[string]bool{}
	var last rec
	// next checks the next push; it returns the resumed frame instead when
	// that comes first.
	next := func(what string) *pushclient.Resumed {
		t.Helper()
		select {
		case e := <-events:
			if e.r != nil {
				return e.r
			}
			m := *e.m
			if last.epoch != "" && (m.epoch != last.epoch || m.offset != last.offset+1) {
				t.Fatalf("offset %d of %s after %d of %s", m.offset, m.epoch, last.offset, last.epoch)
			}
			if got[m.data] {
				t.Fatalf("%q twice", m.data)
			}
			got[m.data], last = true, m
		case err := <-done:
			t.Fatalf("pusher: %v", err)
		case <-time.After(15 * time.Second):
			t.Fatalf("waiting for %s: %d received, last offset %d", what, len(got), last.offset)
		}
		return nil
	}
	read := func(what string) {
		t.Helper()
		if r := next(what); r != nil {
			t.Fatalf("resumed %+v while waiting for %s", r.Streams, what)
		}
	}
	for len(got) < 50 {
		read("pushes before the kill")
	}
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	before := len(got)
	var r *pushclient.Resumed
	for r == nil {
		r = next("the replay and resumed")
	}
	if st := r.Streams["uid:alice"]; !st.Recovered || st.Epoch != last.epoch || st.Offset != last.offset {
		t.Fatalf("resumed %+v on %s after offset %d of %s", r.Streams, r.URL, last.offset, last.epoch)
	}
	if strings.Contains(r.URL, strings.TrimPrefix(victim.clients, "ws://")) {
		t.Fatalf("resumed on the killed node %s", r.URL)
	}
	t.Logf("%d pushes received before the kill, %d after it up to resumed on %s", before, len(got)-before, r.URL)
	for n := len(got) + 30; len(got) < n; {
		read("live pushes after the resume")
	}
	close(stop)
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for {
		missing := 0
		for d := range accepted {
			if !got[d] {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		read(fmt.Sprintf("%d accepted pushes", missing))
	}
}

// routeAddr is a loopback address for a route port, free now, below the
// ephemeral range (32768 and up on Linux), where another test's outgoing
// connection could take it before the node binds it.
func routeAddr(t *testing.T) string {
	t.Helper()
	for range 1000 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(20000+rand.IntN(12000)))
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr
		}
	}
	t.Fatal("no free port for a route")
	return ""
}
