package gateway

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// APIOptions configure the HTTP API (APIHandler).
type APIOptions struct {
	// Key is the bearer key every request must carry
	// ("Authorization: Bearer <key>"). An empty Key refuses every request,
	// so that a forgotten key never opens the API.
	Key string
	// MaxBodyBytes bounds a request's body (413 above it). Default 1 MiB.
	MaxBodyBytes int64
	// Timeout bounds one call, cluster round trips included (504 when it
	// runs out). Default 10 s.
	Timeout time.Duration
	// Observe, when set, is called once per request with the method name
	// ("unknown" for a name the API does not have) and the status sent, on
	// the request's goroutine: count them for metrics. It must not block.
	Observe func(method string, status int)
}

// APIHandler serves the push layer's HTTP API, so that a backend in any
// language pushes with one HTTP call: POST /api/<method> with a JSON body
// and the bearer key, methods named as GatewayWorker's (sendToUid,
// joinGroup, getClientIdListByGroup...). The table of methods, bodies and
// answers is in the package documentation. It answers 200 with a JSON
// object, or {"error":"..."} with 401 (no or wrong key), 400 (malformed
// JSON, a missing or wrong-typed field, text that is not UTF-8), 404
// (unknown method or client), 405 (not POST), 413 (body over
// MaxBodyBytes), 503 (the cluster broker is unreachable), 504 (the call
// timed out).
//
// It serves paths ending in /api/<method>, so it can be mounted as it is
// or under a prefix of the program's own mux:
//
//	mux.Handle("/push/api/", g.APIHandler(gateway.APIOptions{Key: key}))
func (g *Gateway) APIHandler(opt APIOptions) http.Handler {
	if opt.MaxBodyBytes <= 0 {
		opt.MaxBodyBytes = 1 << 20
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Second
	}
	return &apiHandler{g: g, opt: opt}
}

type apiHandler struct {
	g   *Gateway
	opt APIOptions
}

// apiError is an answer other than 200.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

func (h *apiHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method := "unknown"
	status, answer := h.serve(w, r, &method)
	if h.opt.Observe != nil {
		h.opt.Observe(method, status)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(answer)
}

func (h *apiHandler) serve(w http.ResponseWriter, r *http.Request, method *string) (int, any) {
	fail := func(err error) (int, any) {
		status := statusOf(err)
		msg := err.Error()
		if status == http.StatusInternalServerError {
			msg = "internal error: " + msg
		}
		return status, map[string]string{"error": msg}
	}
	i := strings.LastIndex(r.URL.Path, "/api/")
	if i < 0 {
		return fail(&apiError{http.StatusNotFound, "not found: the API is POST /api/<method>"})
	}
	name := r.URL.Path[i+len("/api/"):]
	m, known := apiMethods[name]
	if known {
		*method = name
	}
	if !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="workerman-push"`)
		return fail(&apiError{http.StatusUnauthorized, "missing or wrong API key (Authorization: Bearer <key>)"})
	}
	if !known {
		return fail(&apiError{http.StatusNotFound, fmt.Sprintf("unknown method %q", name)})
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return fail(&apiError{http.StatusMethodNotAllowed, "use POST"})
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opt.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fail(&apiError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", h.opt.MaxBodyBytes)})
		}
		return fail(badRequest("reading the body: %v", err))
	}
	var b apiBody
	if err := decodeBody(body, &b); err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opt.Timeout)
	defer cancel()
	out, err := m(ctx, h.g, &b)
	if err != nil {
		return fail(err)
	}
	if out == nil {
		out = struct{}{}
	}
	return http.StatusOK, out
}

func (h *apiHandler) authorized(r *http.Request) bool {
	if h.opt.Key == "" {
		return false
	}
	auth := r.Header.Get("Authorization")
	scheme, key, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(key)), []byte(h.opt.Key)) == 1
}

// statusOf maps an error to the API's status.
func statusOf(err error) int {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae.status
	case errors.Is(err, ErrClientNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrInvalidArgument), errors.Is(err, ErrInvalidUTF8):
		return http.StatusBadRequest
	case errors.Is(err, ErrBrokerUnavailable), errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// apiBody is every field a method may take; pointers tell a missing field
// from an empty one.
type apiBody struct {
	ClientID      *string                    `json:"client_id"`
	UID           *string                    `json:"uid"`
	UIDs          *[]string                  `json:"uids"`
	Group         *string                    `json:"group"`
	Groups        *[]string                  `json:"groups"`
	Message       *string                    `json:"message"`
	MessageBase64 *string                    `json:"message_base64"`
	Exclude       []string                   `json:"exclude_client_ids"`
	Session       map[string]json.RawMessage `json:"session"`
}

// decodeBody parses one JSON object (an empty body is {}), with a clear
// 400 for malformed JSON and wrong-typed fields.
func decodeBody(body []byte, b *apiBody) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(b); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field != "" {
				return badRequest("field %s: want %s, got JSON %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
			}
			return badRequest("the body must be a JSON object, got JSON %s", te.Value)
		}
		return badRequest("malformed JSON: %v", err)
	}
	if dec.More() {
		return badRequest("malformed JSON: data after the object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("malformed JSON: data after the object")
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return goKind
}

func required[T any](p *T, name string) (T, error) {
	if p == nil {
		var zero T
		return zero, badRequest("missing field %s", name)
	}
	return *p, nil
}

// message is the body's message: text from message, binary from
// message_base64 (standard, padded base64).
func (b *apiBody) message(optional bool) (*Message, error) {
	switch {
	case b.Message != nil && b.MessageBase64 != nil:
		return nil, badRequest("give message or message_base64, not both")
	case b.Message != nil:
		return &Message{Data: []byte(*b.Message)}, nil
	case b.MessageBase64 != nil:
		data, err := base64.StdEncoding.DecodeString(*b.MessageBase64)
		if err != nil {
			return nil, badRequest("message_base64 is not standard padded base64: %v", err)
		}
		return &Message{Data: data, Binary: true}, nil
	case optional:
		return nil, nil
	}
	return nil, badRequest("missing field message (or message_base64)")
}

func (b *apiBody) clientID() (string, error) {
	id, err := required(b.ClientID, "client_id")
	if err == nil && id == "" {
		err = badRequest("empty client_id")
	}
	return id, err
}

// keys is uid or uids (group or groups): one of them is required.
func keys(one *string, many *[]string, name string) ([]string, error) {
	var out []string
	if one != nil {
		out = append(out, *one)
	}
	if many != nil {
		out = append(out, *many...)
	}
	if one == nil && many == nil {
		return nil, badRequest("missing field %s (or %ss)", name, name)
	}
	return out, nil
}

type apiMethod func(ctx context.Context, g *Gateway, b *apiBody) (any, error)

// apiMethods is the API: GatewayWorker's names.
var apiMethods = map[string]apiMethod{
	"sendToAll": func(ctx context.Context, g *Gateway, b *apiBody) (any, error) {
		m, err := b.message(false)
		if err != nil {
			return nil, err
		}
		return nil, g.SendToAll(ctx, *m, b.Exclude...)
	},
	"sendToClient": func(ctx context.Context, g *Gateway, b *apiBody) (any, error) {
		id, err := b.clientID()
		if err != nil {
			return nil, err
		}
		m, err := b.message(false)
		if err != nil {
			return nil, err
		}
		return nil, g.SendToClient(ctx, id, *m)
	},
	"sendToUid": func(ctx context.Context, g *Gateway, b *apiBody) (any, error) {
		uids, err := keys(b.UID, b.UIDs, "uid")
		if err != nil {
			return nil, err
		}
		m, err := b.message(false)
		if err != nil {
			return nil, err
		}
		for _, uid := range uids {
			if err := g.SendToUID(ctx, uid, *m); err != nil {
				return nil, err
			}
		}
		return nil, nil
	},
	"sendToGroup": func(ctx context.Context, g *Gateway, b *apiBody) (any, error) {
		groups, err := keys(b.Group, b.Groups, "group")
		if err != nil {
			return nil, err
		}
		m, err := b.message(false)
		if err != nil {
			return nil, err
		}
		for _, grp := range groups {
			if err := g.SendToGroup(ctx, grp, *m, b.Exclude...); err != nil {
				return nil, err
			}
		}
		return nil, nil
	},
	"bindUid":    clientAndKey((*Gateway).BindUID, func(b *apiBody) *string { return b.UID }, "uid"),
	"unbindUid":  clientAndKey((*Gateway).UnbindUID, func(b *apiBody) *string { return b.UID }, "uid"),
	"joinGroup":  clientAndKey((*Gateway).JoinGroup, func(b *apiBody) *string { return b.Group }, "group"),
	"leaveGroup": clientAndKey((*Gateway).LeaveGroup, func(b *apiBody) *string { return b.Group }, "group"),
	"ungroup": func(ctx context.Context, g *Gateway, b *apiBody) (any, error) {
		grp, err := required(b.Group, "group")
		if err != nil {
			return nil, err
		}
		return nil, g.Ungroup(ctx, grp)
	},
	"closeClient": func(ctx context.Context, g *Gateway, b *apiBody) (any, error) {
		id, err := b.clientID()
		if err != nil {
			return nil, err
		}
		m, err := b.message(true)
		if err != nil {
			return nil, err
		}
		if m != nil {
			return nil, g.CloseClient(ctx, id, *m)
		}
		return nil, g.CloseClient(ctx, id)
	},
	"isOnline": func(ctx context.Context, g *Gateway, b *apiBody) (any, error) {
		id, err := b.clientID()
		if err != nil {
			return nil, err
		}
		on, err := g.IsOnline(ctx, id)
		return map[string]bool{"online": on}, err
	},
	"isUidOnline": func(ctx context.Context, g *Gateway, b *apiBody) (any, error) {
		uid, err := required(b.UID, "uid")
		if err != nil {
			return nil, err
		}
		on, err := g.IsUIDOnline(ctx, uid)
		return map[string]bool{"online": on}, err
	},
	"getClientIdByUid": func(ctx context.Context, g *Gateway, b *apiBody) (any, error) {
		uid, err := required(b.UID, "uid")
		if err != nil {
			return nil, err
		}
		ids, err := g.ClientIDsByUID(ctx, uid)
		return map[string][]string{"client_ids": nonNil(ids)}, err
	},
	"getUidByClientId": func(ctx context.Context, g *Gateway, b *apiBody) (any, error) {
		id, err := b.clientID()
		if err != nil {
			return nil, err
		}
		uid, err := g.UIDByClientID(ctx, id)
		return map[string]string{"uid": uid}, err
	},
	"getAllClientCount": func(ctx context.Context, g *Gateway, b *apiBody) (any, error) {
		n, err := g.ClientCount(ctx)
		return map[string]int{"count": n}, err
	},
	"getAllUidCount": func(ctx context.Context, g *Gateway, b *apiBody) (any, error) {
		n, err := g.UIDCount(ctx)
		return map[string]int{"count": n}, err
	},
	"getClientCountByGroup": func(ctx context.Context, g *Gateway, b *apiBody) (any, error) {
		grp, err := required(b.Group, "group")
		if err != nil {
			return nil, err
		}
		n, err := g.GroupClientCount(ctx, grp)
		return map[string]int{"count": n}, err
	},
	"getClientIdListByGroup": func(ctx context.Context, g *Gateway, b *apiBody) (any, error) {
		grp, err := required(b.Group, "group")
		if err != nil {
			return nil, err
		}
		ids, err := g.GroupClientIDs(ctx, grp)
		return map[string][]string{"client_ids": nonNil(ids)}, err
	},
	"getUidListByGroup": func(ctx context.Context, g *Gateway, b *apiBody) (any, error) {
		grp, err := required(b.Group, "group")
		if err != nil {
			return nil, err
		}
		uids, err := g.GroupUIDs(ctx, grp)
		return map[string][]string{"uids": nonNil(uids)}, err
	},
	"getAllGroupIdList": func(ctx context.Context, g *Gateway, b *apiBody) (any, error) {
		groups, err := g.Groups(ctx)
		return map[string][]string{"groups": nonNil(groups)}, err
	},
	"setSession":    sessionMethod("set_session"),
	"updateSession": sessionMethod("update_session"),
	"getSession": func(ctx context.Context, g *Gateway, b *apiBody) (any, error) {
		id, err := b.clientID()
		if err != nil {
			return nil, err
		}
		rep, err := g.do(ctx, request{Op: "session", Client: id})
		if err != nil {
			return nil, err
		}
		s := rep.Session
		if s == nil {
			s = map[string]json.RawMessage{}
		}
		return map[string]any{"session": s}, nil
	},
}

func clientAndKey(f func(*Gateway, context.Context, string, string) error, field func(*apiBody) *string, name string) apiMethod {
	return func(ctx context.Context, g *Gateway, b *apiBody) (any, error) {
		id, err := b.clientID()
		if err != nil {
			return nil, err
		}
		key, err := required(field(b), name)
		if err != nil {
			return nil, err
		}
		return nil, f(g, ctx, id, key)
	}
}

// sessionMethod stores the body's session as the JSON it came in, so that
// numbers keep their precision.
func sessionMethod(op string) apiMethod {
	return func(ctx context.Context, g *Gateway, b *apiBody) (any, error) {
		id, err := b.clientID()
		if err != nil {
			return nil, err
		}
		if b.Session == nil {
			return nil, badRequest("missing field session (a JSON object)")
		}
		_, err = g.do(ctx, request{Op: op, Client: id, Session: b.Session})
		return nil, err
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
