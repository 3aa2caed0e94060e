package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/workerman-go/workerman"
)

// FuzzAPI feeds arbitrary bodies (and keys) to every method of the HTTP
// API of a gateway with no clients: every answer is a JSON object with the
// status the documentation allows, an error message on every non-200, and
// nothing panics.
func FuzzAPI(f *testing.F) {
	methods := make([]string, 0, len(apiMethods))
	for m := range apiMethods {
		methods = append(methods, m)
	}
	for i, body := range []string{
		``, `{}`, `null`, `[]`, `{"message":"x"}`, `{"message_base64":"AP8="}`,
		`{"uid":"a","message":"x"}`, `{"uids":["a","b"],"message":"x"}`, `{"group":"g","message":"x","exclude_client_ids":["n.x.1"]}`,
		`{"client_id":"n.x.1","uid":"u"}`, `{"client_id":"n.x.1","session":{"a":1}}`, `{"group":"g"}`,
		`{"message":"\ud800"}`, `{"client_id":"\u0000.x.1","group":"g"}`, `{"uid":"` + strings.Repeat("u", 300) + `"}`,
		`{"message":"x"} trailing`, `{"session":{"a":` + strings.Repeat("[", 200) + `}}`,
	} {
		f.Add(uint8(i), body, true)
	}
	g, err := New(&workerman.Worker{URI: "websocket://127.0.0.1:0"}, Options{Node: "n"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { g.Close() })
	h := g.APIHandler(APIOptions{Key: testKey, MaxBodyBytes: 4096})
	allowed := map[int]bool{200: true, 400: true, 401: true, 404: true, 413: true}
	f.Fuzz(func(t *testing.T, m uint8, body string, withKey bool) {
		method := methods[int(m)%len(methods)]
		r := httptest.NewRequest(http.MethodPost, "/api/"+method, strings.NewReader(body))
		if withKey {
			r.Header.Set("Authorization", "Bearer "+testKey)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if !allowed[rec.Code] {
			t.Fatalf("%s %q: status %d", method, body, rec.Code)
		}
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %q: answer %q is not a JSON object", method, body, rec.Body)
		}
		if msg, _ := out["error"].(string); (rec.Code != 200) != (msg != "") {
			t.Fatalf("%s %q: status %d with answer %s", method, body, rec.Code, rec.Body)
		}
		if !withKey && rec.Code != 401 {
			t.Fatalf("%s without a key: %d", method, rec.Code)
		}
	})
}
