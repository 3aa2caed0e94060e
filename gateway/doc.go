// Package gateway is GatewayWorker's model in Go: every connection of a
// worker gets a client ID; clients are bound to uids and join groups; a
// program (or, through the HTTP API, a backend in any language) pushes to a
// client, a uid, a group or everyone, from any goroutine, on one node or on
// every node of a cluster.
//
//	w := workerman.NewWorker("websocket://0.0.0.0:8000")
//	g, err := gateway.New(w, gateway.Options{})
//	g.OnConnect = func(id string) { ... }                       // bind, join
//	g.OnMessage = func(id string, m gateway.Message) { ... }
//	g.SendToUID(ctx, "alice", gateway.Text("hello"))             // from anywhere
//	http.Handle("/api/", g.APIHandler(gateway.APIOptions{Key: key}))
//
// # Names
//
// GatewayWorker's static calls are methods of a *Gateway, so several
// gateways live in one process and tests stay isolated. Methods that may
// ask other nodes take a context and return an error.
//
//	GatewayWorker (Gateway::)         Go (*gateway.Gateway)       HTTP API (POST /api/...)
//	sendToClient($id, $msg)           SendToClient(ctx, id, m)      sendToClient
//	sendToUid($uid, $msg)             SendToUID(ctx, uid, m)        sendToUid (uid or uids)
//	sendToGroup($g, $msg, $exclude)   SendToGroup(ctx, g, m, ex...) sendToGroup (group or groups)
//	sendToAll($msg, null, $exclude)   SendToAll(ctx, m, ex...)      sendToAll
//	bindUid / unbindUid               BindUID / UnbindUID           bindUid / unbindUid
//	joinGroup / leaveGroup / ungroup  JoinGroup / LeaveGroup / Ungroup
//	closeClient($id, $msg)            CloseClient(ctx, id, m...)    closeClient
//	isOnline / isUidOnline            IsOnline / IsUIDOnline        isOnline / isUidOnline
//	getClientIdByUid                  ClientIDsByUID                getClientIdByUid
//	getUidByClientId                  UIDByClientID                 getUidByClientId
//	getAllClientCount / getAllUidCount ClientCount / UIDCount       getAllClientCount / getAllUidCount
//	getClientIdListByGroup            GroupClientIDs                getClientIdListByGroup
//	getUidListByGroup                 GroupUIDs                     getUidListByGroup
//	getClientCountByGroup             GroupClientCount              getClientCountByGroup
//	getAllGroupIdList                 Groups                        getAllGroupIdList
//	setSession / updateSession        SetSession / UpdateSession    setSession / updateSession
//	getSession                        Session                       getSession
//	Events::onConnect/onMessage/onClose  OnConnect / OnMessage / OnClose fields
//
// # Clients
//
// A client ID is an opaque string, unique across the cluster and across
// restarts (it carries the node's start time), never reused, and routable:
// it names the node that holds the connection (NodeOf). A uid may hold many
// clients (tabs, devices); a client has at most one uid (BindUID replaces
// it) and joins any number of groups; closing a client removes it from
// every index. Sessions are JSON objects: SetSession replaces,
// UpdateSession merges top-level keys.
//
// A client becomes reachable by pushes after OnConnect returned and its
// Welcome message was sent: nothing pushed reaches it before its welcome,
// and every push that started after the welcome was sent reaches it.
//
// # Delivery
//
// A push to a group, a uid or everyone is encoded once per node and
// written to every member's connection with Workerman's buffer semantics:
// a client whose send buffer is full loses that message (its worker's
// OnError gets workerman.ErrSendBufferFull); nobody else waits for it.
// Per client, pushes from one goroutine arrive in the order they were
// made.
//
// # History and recovery
//
// With Options.History set (NewMemoryHistory on a single node), every push
// to a uid, a group or everyone belongs to a stream, "uid:<uid>",
// "group:<group>" or "all", and is kept there: the history keeps a
// stream's last Size messages, each at most TTL. Offsets rise by exactly 1
// per message (the first of a history is 1); an epoch names one history
// and changes when that history is lost (a memory history's process
// restarted, or a stream forgotten: one whose newest message is older than
// the TTL). Every push is then sent as a JSON text frame,
//
//	{"type":"message","stream":"uid:alice","offset":7,"epoch":"…","data":"…"}
//
// with "data_base64" (standard, padded) instead of "data" for a binary
// message; SendToClient's and CloseClient's messages are
// {"type":"message","data":"…"}, with no stream. Without History the
// frames are the messages as sent, and nothing else changes.
//
// A stream's pushes reach each member in offset order: a push takes its
// offset and is written to this node's members under the stream's lock
// (writes only queue; they never wait for a client). A member whose send
// buffer is full when a push comes is closed at once (1013, try again
// later; Connection.CloseWhenBufferFull) after what was queued before, so
// a live connection never misses a push unnoticed: the client reconnects
// and resumes from the last push it got. So a stream's offsets skip on a
// live connection only where its client was excluded (SendToGroup's and
// SendToAll's exclude): the push clients take the skip as it comes. A
// replay has every message after the position, also those the client's
// earlier connection was excluded from: exclusion is by client ID, a
// filter of live pushes.
//
// A WebSocket client resumes by connecting with the query parameter
// resume=<URL-encoded JSON>, {"uid:alice":{"epoch":"e1","offset":7}}, its
// position (the last message it got) in each stream. After its welcome
// it gets, for each named stream it may read (its uid, its groups, "all",
// as OnConnect left them; the others are ignored), the messages after its
// position, stream by stream in name order, each in offset order; then
// one
//
//	{"type":"resumed","streams":{"uid:alice":{"recovered":true,"epoch":"e1","offset":12}}}
//
// with each stream's current epoch and offset; then the live pushes. The
// seam has no gap and no duplicate: the streams a client resumes are
// locked from before their histories are read until the client is
// reachable, so a push to one of them is either in the replay or sent
// live. An empty epoch means "from the oldest message kept" (the offline
// queue of a user who was away; the offset is ignored). recovered is
// false, and nothing is replayed, when the history does not cover the
// position: an unknown epoch (the history was lost), or an offset older
// than the oldest message kept; the client then reloads its state and
// goes on from the epoch and offset given. A stream with no history yet
// is recovered, at offset 0 of the epoch its first message will have (or,
// from a history that names no epoch before the first message, such as
// natsbroker's, an empty epoch: "from the oldest message kept").
// Replayed messages are queued like any write: a replay that does not fit
// the client's send buffer closes the connection, and the client resumes
// again from what it got.
//
// A uid or group the client resumes but cannot read at connect (the
// backend binds it later, as GatewayWorker apps do on the connect event;
// at most MaxPendingStreams of them) is resumed when the bind or join
// comes: the replay of that stream, then a resumed frame naming it alone,
// then its live pushes, with the same seam. The push clients take a
// resumed frame as such only for streams they resumed and no earlier
// answer named.
//
// The resume parameter is read from the handshake by the gateway itself
// (it takes over the worker's OnWebSocketConnect, running one set before
// New first): a malformed one (not a JSON object of {"epoch": string,
// "offset": integer ≥ 0} objects, see ParseResume) is refused with HTTP
// 400 before the upgrade, so that a client's bug shows at once instead of
// as a silent loss. Without History the parameter is ignored. Only
// WebSocket clients resume.
//
// Memory (MemoryHistory): about 200 bytes and the name per stream, plus
// 40 bytes and the message per message kept: at most streams × (200 +
// Size × (40 + average message)). Size it as the messages a stream gets
// in the longest absence to bridge (a phone's network switch, a laptop's
// sleep), and TTL as that absence.
//
// History is an interface so that a cluster keeps its history where every
// node reads it: natsbroker's, in NATS JetStream (a MemoryHistory serves
// one node). In a cluster, each node keeps the position its members have
// reached in every stream they read, and delivers a stream's pushes in
// offset order, whichever node pushed them: pushes of two nodes may
// arrive in either order, and a node that gets a later offset first
// fills the gap from the history (skipping the clients each push
// excluded) and drops the earlier push when it comes. A node that gets
// its first member of a stream reads the stream's position: the member
// gets every push after it. A resuming client's node brings its other
// members up to the end of the replay before the client is reachable.
// So on every node, every member gets each push of a stream once, in
// offset order.
//
// # Cluster
//
// Every cross-node operation goes through a Broker: a node receives a
// uid's or a group's pushes only while it holds a member; client-addressed
// operations go to the node named in the client ID; counts and lists are
// gathered from every live node when asked, so an answer reflects every
// operation that returned before it. The default broker is a Hub of one
// node; NewHub connects several gateways of one process as a cluster; a
// Broker over a network (NATS) makes separate processes one.
//
// # HTTP API
//
// APIHandler serves POST /api/<method> with a JSON body and
// "Authorization: Bearer <key>". Pushes take "message" (a text frame) or
// "message_base64" (a binary frame, standard padded base64). Answers:
//
//	method                      body                                       answer
//	sendToAll                   message…, exclude_client_ids?              {}
//	sendToClient                client_id, message…                        {}
//	sendToUid                   uid (or uids: [...]), message…             {}
//	sendToGroup                 group (or groups: [...]), message…, exclude_client_ids?  {}
//	bindUid, unbindUid          client_id, uid                             {}
//	joinGroup, leaveGroup       client_id, group                           {}
//	ungroup                     group                                      {}
//	closeClient                 client_id, message?                        {}
//	isOnline                    client_id                                  {"online": bool}
//	isUidOnline                 uid                                        {"online": bool}
//	getClientIdByUid            uid                                        {"client_ids": [...]}
//	getUidByClientId            client_id                                  {"uid": "…"}
//	getAllClientCount, getAllUidCount  –                                   {"count": n}
//	getClientCountByGroup       group                                      {"count": n}
//	getClientIdListByGroup      group                                      {"client_ids": [...]}
//	getUidListByGroup           group                                      {"uids": [...]}
//	getAllGroupIdList           –                                          {"groups": [...]}
//	setSession, updateSession   client_id, session: {…}                    {}
//	getSession                  client_id                                  {"session": {…}}
//
// Errors are {"error":"…"} with 400 (malformed JSON, a missing or
// wrong-typed field), 401 (no or wrong key), 404 (unknown method or
// client), 405, 413 (body over the limit, 1 MiB by default), 503 (cluster
// unreachable) or 504 (timed out). Lists are sorted.
package gateway
