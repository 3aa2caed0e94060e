package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/workerman-go/workerman/internal/leakcheck"
)

const testKey = "s3cret"

// api calls the HTTP API over a real socket and decodes the answer.
type api struct {
	t   *testing.T
	url string
}

func newAPI(t *testing.T, g *Gateway, opt APIOptions) *api {
	if opt.Key == "" {
		opt.Key = testKey
	}
	srv := httptest.NewServer(g.APIHandler(opt))
	t.Cleanup(srv.Close)
	return &api{t: t, url: srv.URL}
}

func (a *api) raw(method, key, body string) (int, map[string]any, http.Header) {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.url+"/api/"+method, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		a.t.Fatalf("%s: answer %q is not a JSON object: %v", method, b, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		a.t.Fatalf("%s: Content-Type %q", method, ct)
	}
	return resp.StatusCode, out, resp.Header
}

// call expects a 200 and returns the answer.
func (a *api) call(method string, body any) map[string]any {
	a.t.Helper()
	b, _ := json.Marshal(body)
	status, out, _ := a.raw(method, testKey, string(b))
	if status != http.StatusOK {
		a.t.Fatalf("%s %s: %d %v", method, b, status, out)
	}
	return out
}

// fails expects an error status with an "error" message.
func (a *api) fails(method, key, body string, want int) string {
	a.t.Helper()
	status, out, _ := a.raw(method, key, body)
	msg, _ := out["error"].(string)
	if status != want || msg == "" {
		a.t.Fatalf("%s %s: %d %v, want %d with an error", method, body, status, out, want)
	}
	return msg
}

type obj = map[string]any

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestAPIEveryMethod(t *testing.T) {
	leakcheck.Check(t)
	n := newNode(t, "n1", nil, "websocket://127.0.0.1:0")
	var mu sync.Mutex
	observed := map[string][]int{}
	a := newAPI(t, n.Gateway, APIOptions{Observe: func(m string, s int) {
		mu.Lock()
		observed[m] = append(observed[m], s)
		mu.Unlock()
	}})
	c1, c2 := dialWS(t, n), dialWS(t, n)

	a.call("bindUid", obj{"client_id": c1.id, "uid": "alice"})
	a.call("bindUid", obj{"client_id": c2.id, "uid": "bob"})
	a.call("sendToUid", obj{"uid": "alice", "message": "to alice"})
	c1.expect(t, "to alice")
	a.call("sendToUid", obj{"uids": []string{"alice", "bob"}, "message_base64": base64.StdEncoding.EncodeToString([]byte{0, 0xff})})
	for _, c := range []*wsClient{c1, c2} {
		if f := wait(t, c.msgs, "the binary push"); f.data != "\x00\xff" || !f.binary {
			t.Fatalf("binary push %+v", f)
		}
	}
	a.call("sendToClient", obj{"client_id": c2.id, "message": "just you"})
	c2.expect(t, "just you")
	a.call("joinGroup", obj{"client_id": c1.id, "group": "g1"})
	a.call("joinGroup", obj{"client_id": c2.id, "group": "g1"})
	a.call("sendToGroup", obj{"group": "g1", "message": "group", "exclude_client_ids": []string{c1.id}})
	c2.expect(t, "group")
	c1.expectNothing(t, n.Gateway)
	a.call("sendToGroup", obj{"groups": []string{"g1", "nobody"}, "message": "groups"})
	c1.expect(t, "groups")
	c2.expect(t, "groups")
	a.call("sendToAll", obj{"message": "all", "exclude_client_ids": []string{c2.id}})
	c1.expect(t, "all")
	c2.expectNothing(t, n.Gateway)

	if out := a.call("isOnline", obj{"client_id": c1.id}); out["online"] != true {
		t.Fatalf("isOnline %v", out)
	}
	if out := a.call("isOnline", obj{"client_id": "n1.gone.1"}); out["online"] != false {
		t.Fatalf("isOnline of an unknown client %v", out)
	}
	if out := a.call("isUidOnline", obj{"uid": "alice"}); out["online"] != true {
		t.Fatalf("isUidOnline %v", out)
	}
	if out := a.call("getClientIdByUid", obj{"uid": "alice"}); !slices.Equal(strs(out["client_ids"]), []string{c1.id}) {
		t.Fatalf("getClientIdByUid %v", out)
	}
	if out := a.call("getClientIdByUid", obj{"uid": "nobody"}); len(out["client_ids"].([]any)) != 0 {
		t.Fatalf("getClientIdByUid of nobody %v (want [])", out)
	}
	if out := a.call("getUidByClientId", obj{"client_id": c2.id}); out["uid"] != "bob" {
		t.Fatalf("getUidByClientId %v", out)
	}
	if out := a.call("getAllClientCount", nil); out["count"] != 2.0 {
		t.Fatalf("getAllClientCount %v", out)
	}
	if out := a.call("getAllUidCount", obj{}); out["count"] != 2.0 {
		t.Fatalf("getAllUidCount %v", out)
	}
	if out := a.call("getClientCountByGroup", obj{"group": "g1"}); out["count"] != 2.0 {
		t.Fatalf("getClientCountByGroup %v", out)
	}
	if out := a.call("getClientIdListByGroup", obj{"group": "g1"}); !slices.Equal(strs(out["client_ids"]), sorted(c1.id, c2.id)) {
		t.Fatalf("getClientIdListByGroup %v", out)
	}
	if out := a.call("getUidListByGroup", obj{"group": "g1"}); !slices.Equal(strs(out["uids"]), []string{"alice", "bob"}) {
		t.Fatalf("getUidListByGroup %v", out)
	}
	if out := a.call("getAllGroupIdList", nil); !slices.Equal(strs(out["groups"]), []string{"g1"}) {
		t.Fatalf("getAllGroupIdList %v", out)
	}
	// Sessions keep the JSON they came in: a big integer stays exact.
	a.call("setSession", obj{"client_id": c1.id, "session": obj{"id": json.Number("9007199254740993"), "name": "A"}})
	a.call("updateSession", obj{"client_id": c1.id, "session": obj{"name": "Alice", "room": 7}})
	status, out, _ := a.raw("getSession", testKey, `{"client_id":"`+c1.id+`"}`)
	if status != 200 {
		t.Fatalf("getSession: %d %v", status, out)
	}
	s := out["session"].(map[string]any)
	if s["name"] != "Alice" || s["room"] != 7.0 || len(s) != 3 {
		t.Fatalf("session %v", s)
	}
	req, _ := http.NewRequest("POST", a.url+"/api/getSession", strings.NewReader(`{"client_id":"`+c1.id+`"}`))
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rawBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(rawBody, []byte("9007199254740993")) {
		t.Fatalf("a big integer in the session lost precision: %s", rawBody)
	}
	if out := a.call("getSession", obj{"client_id": c2.id}); len(out["session"].(map[string]any)) != 0 {
		t.Fatalf("session never set: %v, want {}", out)
	}
	a.call("leaveGroup", obj{"client_id": c2.id, "group": "g1"})
	a.call("unbindUid", obj{"client_id": c2.id, "uid": "bob"})
	if out := a.call("getAllUidCount", nil); out["count"] != 1.0 {
		t.Fatalf("getAllUidCount after unbind %v", out)
	}
	a.call("ungroup", obj{"group": "g1"})
	if out := a.call("getAllGroupIdList", nil); len(out["groups"].([]any)) != 0 {
		t.Fatalf("getAllGroupIdList after ungroup %v", out)
	}
	a.call("closeClient", obj{"client_id": c2.id, "message": "bye"})
	c2.expect(t, "bye")
	if code := wait(t, c2.closed, "the close"); code != 1000 {
		t.Fatalf("close code %d", code)
	}
	a.call("closeClient", obj{"client_id": c1.id})
	wait(t, c1.closed, "the close")
	mu.Lock()
	defer mu.Unlock()
	if got := observed["sendToUid"]; !slices.Equal(got, []int{200, 200}) {
		t.Fatalf("Observe saw sendToUid %v", got)
	}
	if len(observed) != len(apiMethods) || len(apiMethods) != 23 {
		t.Fatalf("Observe saw %d methods, want all 23 of push.md: %v", len(observed), observed)
	}
}

func TestAPIErrors(t *testing.T) {
	leakcheck.Check(t)
	n := newNode(t, "n1", nil, "websocket://127.0.0.1:0")
	var mu sync.Mutex
	unknown := 0
	a := newAPI(t, n.Gateway, APIOptions{MaxBodyBytes: 1000, Observe: func(m string, s int) {
		if m == "unknown" {
			mu.Lock()
			unknown++
			mu.Unlock()
		}
	}})
	c := dialWS(t, n)
	id := `"` + c.id + `"`
	// 401: no key, a wrong key, another scheme; and before anything else.
	a.fails("sendToAll", "", `{"message":"x"}`, 401)
	a.fails("sendToAll", "wrong", `{"message":"x"}`, 401)
	a.fails("noSuchMethod", "", `{}`, 401)
	_, _, h := a.raw("sendToAll", "", `{}`)
	if h.Get("WWW-Authenticate") == "" {
		t.Fatal("a 401 without WWW-Authenticate")
	}
	// 404: an unknown method, an unknown client.
	a.fails("noSuchMethod", testKey, `{}`, 404)
	a.fails("sendToClient", testKey, `{"client_id":"n1.x.1","message":"x"}`, 404)
	a.fails("sendToClient", testKey, `{"client_id":"garbage","message":"x"}`, 404)
	a.fails("getUidByClientId", testKey, `{"client_id":"n1.x.1"}`, 404)
	a.fails("bindUid", testKey, `{"client_id":"other-node.x.1","uid":"u"}`, 404)
	// 400: malformed JSON, missing and wrong-typed fields.
	for _, tc := range []struct{ method, body, want string }{
		{"sendToAll", `{"message":`, "malformed JSON"},
		{"sendToAll", `{"message":"x"} {}`, "data after"},
		{"sendToAll", `[1]`, "JSON object"},
		{"sendToAll", `{}`, "missing field message"},
		{"sendToAll", `{"message":5}`, "field message"},
		{"sendToAll", `{"message":"x","message_base64":"eA=="}`, "not both"},
		{"sendToAll", `{"message_base64":"not base64!"}`, "base64"},
		{"sendToAll", `{"message":"x","exclude_client_ids":"one"}`, "exclude_client_ids"},
		{"sendToClient", `{"message":"x"}`, "missing field client_id"},
		{"sendToClient", `{"client_id":"","message":"x"}`, "empty client_id"},
		{"sendToUid", `{"message":"x"}`, "missing field uid"},
		{"sendToUid", `{"uid":"","message":"x"}`, "empty uid"},
		{"sendToUid", `{"uids":[1],"message":"x"}`, "uids"},
		{"sendToGroup", `{"message":"x"}`, "missing field group"},
		{"bindUid", `{"client_id":` + id + `}`, "missing field uid"},
		{"bindUid", `{"client_id":` + id + `,"uid":7}`, "field uid"},
		{"joinGroup", `{"client_id":` + id + `,"group":""}`, "empty group"},
		{"setSession", `{"client_id":` + id + `}`, "missing field session"},
		{"setSession", `{"client_id":` + id + `,"session":[1]}`, "field session"},
		{"isUidOnline", `{}`, "missing field uid"},
		{"getClientCountByGroup", `{"group":null}`, "missing field group"},
	} {
		if msg := a.fails(tc.method, testKey, tc.body, 400); !strings.Contains(msg, tc.want) {
			t.Errorf("%s %s: error %q does not say %q", tc.method, tc.body, msg, tc.want)
		}
	}
	// 413 over the limit; 405 for other HTTP methods.
	a.fails("sendToAll", testKey, `{"message":"`+strings.Repeat("x", 2000)+`"}`, 413)
	req, _ := http.NewRequest(http.MethodGet, a.url+"/api/getAllClientCount", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	mu.Lock()
	if unknown != 2 {
		t.Errorf("Observe saw %d calls of method \"unknown\", want 2 (unknown names are not labels)", unknown)
	}
	mu.Unlock()
	// None of it disturbed the client.
	a.call("sendToClient", obj{"client_id": c.id, "message": "still here"})
	c.expect(t, "still here")
	// An empty key refuses everything.
	h2 := n.APIHandler(APIOptions{})
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/api/getAllClientCount", nil)
	r.Header.Set("Authorization", "Bearer ")
	h2.ServeHTTP(rec, r)
	if rec.Code != 401 {
		t.Fatalf("an API with no key answered %d", rec.Code)
	}
}

// The handler serves under a prefix of the program's own mux.
func TestAPIUnderPrefix(t *testing.T) {
	leakcheck.Check(t)
	n := newNode(t, "n1", nil, "websocket://127.0.0.1:0")
	mux := http.NewServeMux()
	mux.Handle("/push/api/", n.APIHandler(APIOptions{Key: testKey}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/push/api/getAllClientCount", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != `{"count":0}` {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}
