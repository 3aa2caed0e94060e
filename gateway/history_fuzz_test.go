package gateway

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParseResume feeds arbitrary resume parameters to ParseResume: it
// never panics, refuses with ErrMalformedResume, and what it accepts
// encodes to a parameter it reads back the same.
func FuzzParseResume(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"uid:alice":{"epoch":"e1","offset":7}}`, `{"all":{}}`, `{"all":{"offset":0}}`,
		`{"all":{"offset":-1}}`, `{"all":{"offset":1e3}}`, `{"all":{"offset":18446744073709551616}}`, `{"all":null}`,
		`{"all":{"epoch":null}}`, `{"all":1}`, `{"a":{"epoch":"x"},"a":{"epoch":"y"}}`, `{"\u0000":{"epoch":"\ud800"}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseResume(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedResume) || r != nil {
				t.Fatalf("%q: %v, %v", s, r, err)
			}
			return
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseResume(string(b))
		if err != nil || len(again) != len(r) {
			t.Fatalf("%q → %s → %v, %v", s, b, again, err)
		}
		for k, v := range r {
			if again[k] != v {
				t.Fatalf("%q: stream %q read back as %+v, want %+v", s, k, again[k], v)
			}
		}
	})
}

// The envelope is JSON that decodes to what was sent, whatever the text.
func FuzzEnvelope(f *testing.F) {
	f.Add("uid:alice", "e1", uint64(7), "hi", false)
	f.Add("group:\"x\"", "", uint64(0), "\u2028\x00\\", true)
	f.Fuzz(func(t *testing.T, stream, epoch string, offset uint64, data string, binary bool) {
		if err := checkKey("stream", stream); err != nil || checkKey("epoch", epoch) != nil {
			return
		}
		m := Message{Data: []byte(data), Binary: binary}
		if checkMessage(m) != nil {
			return
		}
		env := envelope(stream, Position{Epoch: epoch, Offset: offset}, m)
		var got struct {
			Type       string  `json:"type"`
			Stream     string  `json:"stream"`
			Offset     uint64  `json:"offset"`
			Epoch      string  `json:"epoch"`
			Data       *string `json:"data"`
			DataBase64 []byte  `json:"data_base64"`
		}
		if err := json.Unmarshal(env.Data, &got); err != nil {
			t.Fatalf("%s: %v", env.Data, err)
		}
		ok := got.Type == "message" && got.Stream == stream && got.Offset == offset && got.Epoch == epoch
		if binary {
			ok = ok && got.Data == nil && string(got.DataBase64) == data
		} else {
			ok = ok && got.Data != nil && *got.Data == data
		}
		if !ok {
			t.Fatalf("%s decodes to %+v", env.Data, got)
		}
	})
}
