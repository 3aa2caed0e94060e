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
