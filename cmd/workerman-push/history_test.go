package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/golang-jwt/jwt/v5"
	natsserver "github.com/nats-io/nats-server/v2/server"
)

// hmsg is a frame of history mode, decoded.
type hmsg struct {
	Type    string `json:"type"`
	Stream  string `json:"stream"`
	Offset  uint64 `json:"offset"`
	Epoch   string `json:"epoch"`
	Data    string `json:"data"`
	Streams map[string]struct {
		Recovered bool   `json:"recovered"`
		Epoch     string `json:"epoch"`
		Offset    uint64 `json:"offset"`
	} `json:"streams"`
	raw string
}

func (c *wsClient) next() hmsg {
	c.t.Helper()
	data, op := c.read()
	var m hmsg
	if op != ws.OpText || json.Unmarshal(data, &m) != nil {
		c.t.Fatalf("client %s got %v %q, want a JSON text frame", c.id, op, data)
	}
	m.raw = string(data)
	return m
}

func (c *wsClient) expectPush(stream string, offset uint64, epoch, data string) hmsg {
	c.t.Helper()
	m := c.next()
	if m.Type != "message" || m.Stream != stream || m.Offset != offset || (epoch != "" && m.Epoch != epoch) || m.Data != data {
		c.t.Fatalf("client %s got %s, want %s #%d %q", c.id, m.raw, stream, offset, data)
	}
	return m
}

func resumeQuery(tok string, positions map[string]any) string {
	b, _ := json.Marshal(positions)
	return url.Values{"token": {tok}, "resume": {string(b)}}.Encode()
}

// With -history-size, a client that reconnects (the server kept running)
// gets exactly what it missed; after a restart, recovered is false with a
// new epoch.
func TestHistoryResume(t *testing.T) {
	const secret = "s"
	flags := args("-jwt-secret", secret, "-history-size", "100", "-history-ttl", "1m")
	n := startRun(t, flags, nil)
	if !strings.Contains(n.log.String(), "history_size=100 history_ttl=1m0s history=memory") {
		t.Fatalf("start line:\n%s", n.log.String())
	}
	tok := token(t, secret, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "groups": []string{"room"}})

	a := dial(t, n, q(tok))
	n.mustCall(t, "sendToUid", map[string]any{"uid": "alice", "message": "a1"})
	ep := a.expectPush("uid:alice", 1, "", "a1").Epoch
	n.mustCall(t, "sendToUid", map[string]any{"uid": "alice", "message": "a2"})
	a.expectPush("uid:alice", 2, ep, "a2")
	n.mustCall(t, "sendToClient", map[string]any{"client_id": a.id, "message": "direct"})
	if m := a.next(); m.raw != `{"type":"message","data":"direct"}` {
		t.Fatalf("sendToClient: %s", m.raw)
	}
	a.conn.Close()

	// Away: pushes to its uid, its group and everyone.
	n.mustCall(t, "sendToUid", map[string]any{"uid": "alice", "message": "a3"})
	n.mustCall(t, "sendToGroup", map[string]any{"group": "room", "message": "r1"})
	n.mustCall(t, "sendToUid", map[string]any{"uids": []string{"alice", "bob"}, "message": "a4"})
	n.mustCall(t, "sendToAll", map[string]any{"message_base64": "AP8="})

	b := dial(t, n, resumeQuery(tok, map[string]any{
		"uid:alice":  map[string]any{"epoch": ep, "offset": 2},
		"group:room": map[string]any{"epoch": ""},
		"all":        map[string]any{"epoch": "", "offset": 0},
		"uid:bob":    map[string]any{"epoch": ""}, // not alice's: ignored
	}))
	all := b.next()
	if all.Type != "message" || all.Stream != "all" || all.Offset != 1 || !strings.Contains(all.raw, `"data_base64":"AP8="`) {
		t.Fatalf("replay of all: %s", all.raw)
	}
	room := b.expectPush("group:room", 1, "", "r1").Epoch
	b.expectPush("uid:alice", 3, ep, "a3")
	b.expectPush("uid:alice", 4, ep, "a4")
	res := b.next()
	want := fmt.Sprintf(`{"type":"resumed","streams":{"all":{"recovered":true,"epoch":%q,"offset":1},"group:room":{"recovered":true,"epoch":%q,"offset":1},"uid:alice":{"recovered":true,"epoch":%q,"offset":4}}}`, all.Epoch, room, ep)
	if res.raw != want {
		t.Fatalf("resumed\n%s\nwant\n%s", res.raw, want)
	}
	n.mustCall(t, "sendToUid", map[string]any{"uid": "alice", "message": "a5"})
	b.expectPush("uid:alice", 5, ep, "a5")

	// A malformed resume parameter: 400 before the upgrade.
	if code := handshakeStatus(t, n, url.Values{"token": {tok}, "resume": {`{"uid:alice":7}`}}.Encode()); code != http.StatusBadRequest {
		t.Fatalf("malformed resume: HTTP %d, want 400", code)
	}
	// A bad token still gets 401 first.
	if code := handshakeStatus(t, n, url.Values{"resume": {`{}`}}.Encode()); code != http.StatusUnauthorized {
		t.Fatalf("no token: HTTP %d, want 401", code)
	}

	// A restart loses a memory history: recovered false, a new epoch.
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	m := startRun(t, flags, nil)
	c := dial(t, m, resumeQuery(tok, map[string]any{"uid:alice": map[string]any{"epoch": ep, "offset": 5}}))
	res = c.next()
	st := res.Streams["uid:alice"]
	if res.Type != "resumed" || len(res.Streams) != 1 || st.Recovered || st.Epoch == "" || st.Epoch == ep || st.Offset != 0 {
		t.Fatalf("after a restart: %s", res.raw)
	}
	m.mustCall(t, "sendToUid", map[string]any{"uid": "alice", "message": "new"})
	c.expectPush("uid:alice", 1, st.Epoch, "new")
}

// Without -history-size, the resume parameter changes nothing: the
// welcome, then the pushes as sent.
func TestNoHistory(t *testing.T) {
	n := startCfg(t, args(), nil)
	c := dial(t, n, url.Values{"resume": {`{"all":{"epoch":"x","offset":3}}`}}.Encode())
	n.mustCall(t, "sendToAll", map[string]any{"message": "as sent"})
	c.expectText("as sent")
}

func TestHistoryFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"-history-size", "10"}, true},
		{[]string{"-history-size", "10", "-history-ttl", "1h"}, true},
		{[]string{"-history-size", "-1"}, false},
		{[]string{"-history-ttl", "0s"}, false},
		{[]string{"-history-size", "10", "-nats", "nats://127.0.0.1:4222"}, true},
		{[]string{"-history-size", "10", "-nats", "nats://127.0.0.1:4222", "-history-replicas", "3", "-history-file"}, true},
		{[]string{"-history-size", "10", "-cluster", "127.0.0.1:6222"}, false}, // no -peers: JetStream clusters by routes
		{[]string{"-history-size", "10", "-cluster", "127.0.0.1:6222", "-peers", "127.0.0.1:6222,127.0.0.1:6223", "-nats-store", "/tmp/x"}, true},
		{[]string{"-history-size", "10", "-nats", "nats://127.0.0.1:4222", "-history-replicas", "6"}, false},
		{[]string{"-history-replicas", "-1"}, false},
		{[]string{"-nats", "nats://127.0.0.1:4222"}, true},
	} {
		if _, err := parseConfig(tc.args, nil, &strings.Builder{}); (err == nil) != tc.ok {
			t.Errorf("%v: %v", tc.args, err)
		}
	}
}

// With -nats and -history-size the history is in the NATS server's
// JetStream (nats-server -js): a client resumes on another node, and on a
// node that restarted, with exactly what it missed (recovered true, the
// same epoch).
func TestHistoryExternalNATS(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	const secret = "s"
	flags := func(node string) []string {
		return args("-node-id", node, "-nats", "nats://"+ns.Addr().String(), "-jwt-secret", secret, "-history-size", "100")
	}
	a := startRun(t, flags("a"), nil)
	b := startRun(t, flags("b"), nil)
	for _, n := range []*node{a, b} {
		waitStatus(t, strings.TrimSuffix(n.api, "/api/")+"/readyz", http.StatusOK)
		if !strings.Contains(n.log.String(), "history=jetstream") {
			t.Fatalf("start line:\n%s", n.log.String())
		}
	}
	tok := token(t, secret, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice"})

	c := dial(t, a, q(tok))
	b.mustCall(t, "sendToUid", map[string]any{"uid": "alice", "message": "a1"})
	ep := c.expectPush("uid:alice", 1, "", "a1").Epoch
	c.conn.Close()
	b.mustCall(t, "sendToUid", map[string]any{"uid": "alice", "message": "a2"})
	a.mustCall(t, "sendToUid", map[string]any{"uid": "alice", "message": "a3"})

	// On the other node.
	d := dial(t, b, resumeQuery(tok, map[string]any{"uid:alice": map[string]any{"epoch": ep, "offset": 1}}))
	d.expectPush("uid:alice", 2, ep, "a2")
	d.expectPush("uid:alice", 3, ep, "a3")
	if m := d.next(); m.Type != "resumed" || !m.Streams["uid:alice"].Recovered || m.Streams["uid:alice"].Offset != 3 {
		t.Fatalf("resumed on b: %s", m.raw)
	}
	d.conn.Close()
	b.mustCall(t, "sendToUid", map[string]any{"uid": "alice", "message": "a4"})

	// On a node that restarted: the history is NATS's, not the node's.
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	a = startRun(t, flags("a"), nil)
	waitStatus(t, strings.TrimSuffix(a.api, "/api/")+"/readyz", http.StatusOK)
	e := dial(t, a, resumeQuery(tok, map[string]any{"uid:alice": map[string]any{"epoch": ep, "offset": 3}}))
	e.expectPush("uid:alice", 4, ep, "a4")
	if m := e.next(); m.Type != "resumed" || !m.Streams["uid:alice"].Recovered || m.Streams["uid:alice"].Epoch != ep {
		t.Fatalf("resumed after a restart: %s", m.raw)
	}
	b.mustCall(t, "sendToUid", map[string]any{"uid": "alice", "message": "a5"})
	e.expectPush("uid:alice", 5, ep, "a5")
}
