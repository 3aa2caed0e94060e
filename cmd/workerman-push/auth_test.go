package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerifyToken feeds arbitrary query strings to the token check, as a
// handshake's ?token=… reaches it: it never panics, and what it accepts is
// an HS256 token signed with the secret, with a sub and no past exp.
func FuzzVerifyToken(f *testing.F) {
	const secret = "fuzz-secret"
	exp := time.Now().Add(24 * time.Hour).Unix()
	for _, c := range []jwt.MapClaims{
		{"sub": "alice", "exp": exp, "groups": []string{"a", "b"}},
		{"sub": "bob"},
		{"sub": "alice", "exp": 1},
		{"sub": "", "exp": exp},
		{"sub": "alice", "groups": []any{1, "x"}},
	} {
		f.Add("token=" + token(f, secret, jwt.SigningMethodHS256, c))
		f.Add("token=" + token(f, "wrong", jwt.SigningMethodHS256, c))
		f.Add("token=" + token(f, secret, jwt.SigningMethodHS384, c))
		f.Add("token=" + token(f, "", jwt.SigningMethodNone, c))
	}
	f.Add("")
	f.Add("token=")
	f.Add("token=a.b.c&token=x")
	f.Add("token=%zz")
	f.Fuzz(func(t *testing.T, rawQuery string) {
		query, _ := url.ParseQuery(rawQuery)
		tok := query.Get("token")
		id, err := verifyToken([]byte(secret), tok)
		if err != nil {
			if id != nil {
				t.Fatal("an identity with an error")
			}
			return
		}
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted %q: not three parts", tok)
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(parts[0] + "." + parts[1]))
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
			t.Fatalf("accepted %q: not signed with the secret", tok)
		}
		var header struct{ Alg string }
		if h, err := base64.RawURLEncoding.DecodeString(parts[0]); err != nil || json.Unmarshal(h, &header) != nil || header.Alg != "HS256" {
			t.Fatalf("accepted %q: alg %q", tok, header.Alg)
		}
		var claims struct {
			Sub string   `json:"sub"`
			Exp *float64 `json:"exp"`
		}
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		d := json.NewDecoder(bytes.NewReader(payload))
		if err := d.Decode(&claims); err != nil {
			t.Fatalf("accepted %q: claims %v", tok, err)
		}
		if claims.Sub == "" || claims.Sub != id.uid {
			t.Fatalf("accepted %q: sub %q, uid %q", tok, claims.Sub, id.uid)
		}
		if claims.Exp != nil && int64(*claims.Exp) < time.Now().Unix()-1 {
			t.Fatalf("accepted %q: expired %v", tok, *claims.Exp)
		}
		for _, g := range id.groups {
			if g == "" {
				t.Fatalf("accepted %q: an empty group", tok)
			}
		}
	})
}
