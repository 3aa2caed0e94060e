// Package pushclient is the Go client of workerman-go's push layer: it
// connects to a push server (cmd/workerman-push, or any gateway.Gateway
// that sends the welcome frame), reads its welcome, delivers the pushes,
// and reconnects on its own, over a list of URLs of the same service. It
// behaves as the JavaScript client (GET /workerman-push.js) does.
//
//	c, err := pushclient.Dial(ctx, []string{"ws://push1:8000/", "ws://push2:8000/"}, pushclient.Options{
//		Token: jwt,
//		OnWelcome: func(c *pushclient.Client, w pushclient.Welcome) {
//			log.Println("client", w.ClientID, "uid", w.UID) // tell the backend, which binds and joins
//		},
//		OnMessage: func(c *pushclient.Client, m pushclient.Message) {
//			handle(m.Data, m.Binary) // m.Data is valid until OnMessage returns
//		},
//	})
//	defer c.Close()
//
// # The wire
//
// A connection is a WebSocket to one of the URLs, with the token, when
// there is one, as the token query parameter (the server's -jwt-secret
// checks it). The server's first frame is the welcome,
// {"type":"welcome","client_id":"…","uid":"…"}: OnWelcome gets it, and from
// then on the client is reachable by pushes under that client ID. Every
// later frame is a push, handed to OnMessage as it came: a text frame for
// the API's "message", a binary frame for "message_base64". A server whose
// first frame is not a welcome is served too: that frame is then the first
// message, and the client ID is empty.
//
// A client ID names one connection: every reconnect gets a new one, in a
// new welcome, and the server forgets the old one's uid and groups (unless
// a JWT names them). A backend that binds and joins for its clients does so
// again after every welcome.
//
// # Callbacks
//
// Options holds the callbacks: OnOpen, OnWelcome, OnMessage, OnClose. They
// run one at a time and in order, never two at once, on goroutines of the
// library's client pool (or, for an attempt that failed before it had a
// connection, the goroutine that made the attempt), never on the caller of
// New, Dial or Close. They may block: that delays this client's next
// events and stops its reading meanwhile, and nothing else. They may call
// every method of the Client, Close included.
//
// # Reconnecting
//
// An attempt that fails, or a connection that ends before its welcome,
// moves to the next URL of the list; a connection that ends after its
// welcome comes back to the same URL. The wait before the n-th attempt in
// a row is min(MaxReconnectDelay, MinReconnectDelay·2ⁿ⁻¹), drawn at random
// between half of that and all of it, so that the clients one restart
// dropped together do not all come back together; a welcome starts n
// again. A close with code 1001 (going away: the server is stopping or
// draining) moves to the next URL at once, without waiting; only when
// every URL of the list went away in a row does the usual wait apply.
//
// Nothing is queued while disconnected: SendText and SendBinary fail with
// ErrNotConnected, and what the server pushed meanwhile is lost, unless the
// server keeps history (below).
//
// # History and resume
//
// A push server started with -history-size wraps every push as
// {"type":"message","stream":…,"offset":…,"epoch":…,"data":…}; this
// version hands such frames to OnMessage as they are, and does not resume.
// Resuming (the resume query parameter, with the last offset of every
// stream) will come as new fields of Options and Message, with no change to
// the ones here.
package pushclient
