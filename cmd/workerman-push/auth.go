package main

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// claims is a client token: sub is the uid, groups the groups it joins at
// connect; exp (and nbf) are checked when present.
type claims struct {
	Groups []string `json:"groups,omitempty"`
	jwt.RegisteredClaims
}

var (
	errNoToken = errors.New("no token")
	errNoSub   = errors.New("token has no sub")
)

// maxGroups bounds the groups one token joins.
const maxGroups = 1000

// verifyToken checks an HS256 token signed with secret and returns who it
// names. Only HS256 is accepted: "none", other HMAC sizes and asymmetric
// algorithms are refused whatever the header says.
func verifyToken(secret []byte, token string) (*identity, error) {
	if token == "" {
		return nil, errNoToken
	}
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}))
	if err != nil {
		return nil, err
	}
	if c.Subject == "" {
		return nil, errNoSub
	}
	if !utf8.ValidString(c.Subject) {
		return nil, errors.New("token's sub is not valid UTF-8")
	}
	if len(c.Groups) > maxGroups {
		return nil, fmt.Errorf("token names %d groups (at most %d)", len(c.Groups), maxGroups)
	}
	for _, g := range c.Groups {
		if g == "" || !utf8.ValidString(g) {
			return nil, fmt.Errorf("token's groups: %q is not a group name", g)
		}
	}
	return &identity{uid: c.Subject, groups: c.Groups}, nil
}
