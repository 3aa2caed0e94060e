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
// Options holds the callbacks: OnOpen, OnWelcome, OnMessage, OnResumed,
// OnClose. They
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
// welcome comes back to the same URL (after a close with code 1013 too:
// the server could not queue a push for this client; see below). The
// wait before the n-th attempt in a row is
// min(MaxReconnectDelay, MinReconnectDelay·2ⁿ⁻¹), drawn at random between
// half of that and all of it, so that the clients one restart dropped
// together do not all come back together; a welcome starts n again. A
// close with code 1001 (going away: the server is stopping or
// draining) moves to the next URL at once, without waiting; only when
// every URL of the list went away in a row does the usual wait apply.
//
// Nothing is queued while disconnected: SendText and SendBinary fail with
// ErrNotConnected, and what the server pushed meanwhile is lost, unless the
// server keeps history (below): then the next connection gets it.
//
// # History and resume
//
// A push server that keeps history (cmd/workerman-push -history-size)
// wraps every push as
// {"type":"message","stream":"uid:alice","offset":7,"epoch":"…","data":"…"}
// ("data_base64" for binary). The client unwraps it: OnMessage gets the
// push itself, with Message.Stream, Offset and Epoch set, and the client
// keeps, per stream, the epoch and offset of the last push it delivered:
// its position (Positions). Every connection, once the client has
// positions (from a push, or from Options.Resume), sends them as the
// resume query parameter, resume={"uid:alice":{"epoch":"e1","offset":7}};
// the server replays what was missed, in order, then answers
// {"type":"resumed","streams":{…}} (OnResumed), then sends the live
// pushes. A stream whose Recovered is false lost pushes (the history no
// longer reaches back to the position): the program reloads its state
// for it; the client goes on from the epoch and offset the answer gave.
//
// Every push reaches OnMessage once: one at or below the position, in the
// same epoch, was delivered already and is dropped (a replay that
// overlaps). One above the position (same epoch) is delivered and becomes
// the position, also when it skips offsets: the skipped ones are pushes
// this client was left out of (the backend excluded it, as a chat leaves
// out the sender of a message). The server never leaves a push out
// silently otherwise: one it cannot queue for this client (its send
// buffer is full: the client did not read fast enough) closes the
// connection with code 1013 ("try again later") before anything later is
// written to it; the client reconnects after it as after any close (the
// same URL, the usual wait; OnClose's Code is 1013), and the resume
// replays what it missed, in order. A push in a new epoch (the stream's
// history was lost on the server) is taken as it comes.
//
// Exclusion names client IDs and filters only the live pushes of the
// connection it names: a replay after a resume holds every push of the
// stream after the position, those this client was left out of on its
// old connection included (a program that must not handle its own
// messages tells them by their content).
//
// Positions live as long as the Client; a program that wants to resume
// across restarts saves Positions (or each Message's Stream, Offset and
// Epoch) and passes them back as Options.Resume.
//
// Which frames are envelopes: a binary frame never is. A text frame is
// one when it is a JSON object with "type":"message", a non-empty string
// "stream", an integer "offset" ≥ 1, a string "epoch", and exactly one of
// a string "data" or "data_base64". Once the client saw such a frame or a
// "resumed" one (the server keeps history), a JSON object with
// "type":"message", no "stream" or "offset", and a string "data" or
// "data_base64" is one too: a sendToClient push in history mode. Every
// other frame is a plain push, handed to OnMessage as it came: from a
// server without history, pushes arrive exactly as they were sent, unless
// an application pushes JSON of the first shape itself. (So a sendToClient
// push that reaches a new client, with no positions, before any push of a
// stream did comes as its envelope's JSON text.) A
// {"type":"resumed","streams":{…}} frame is read as the answer to resume
// only on a connection that sent resume: once after the welcome, then once
// more for streams resumed that no answer named yet (the server answers
// for a uid or group when the backend binds the client to it after
// connect, with that stream's replay). The JS client follows the same
// rules.
package pushclient
