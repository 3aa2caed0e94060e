/*
 * workerman-push.js: the browser client of workerman-go's push layer
 * (package gateway; cmd/workerman-push serves it at GET /workerman-push.js).
 * Plain JavaScript (ES2017), no dependencies, no build step. It defines the
 * global WorkermanPush (and module.exports where there is a module).
 *
 *   <script src="https://push.example.com/workerman-push.js"></script>
 *   <script>
 *     const push = new WorkermanPush(
 *       ["wss://push1.example.com/", "wss://push2.example.com/"],
 *       { token: () => localStorage.getItem("jwt") });
 *     push.onwelcome = (w) => console.log("client", w.clientId, "uid", w.uid);
 *     push.onmessage = (data, meta) => {
 *       if (meta.binary) show(new Uint8Array(data)); // data is an ArrayBuffer
 *       else show(JSON.parse(data));                 // data is a string
 *     };
 *     push.send(JSON.stringify({ hello: "server" })); // false when not connected
 *     push.close();                                   // stops for good
 *   </script>
 *
 * new WorkermanPush(urls, options) connects on its own (after the current
 * task, so handlers assigned right after `new` see every event).
 *   urls      a URL or a list of URLs of the same service: ws:// or wss://;
 *             http(s):// URLs and paths ("/ws") are taken relative to the
 *             page, with the matching ws(s) scheme.
 *   options.token              a string, or a function returning a string
 *                              or a Promise of one, called before every
 *                              connection (so a refreshed JWT is used). Sent
 *                              as the `token` query parameter; "" or null:
 *                              none.
 *   options.minReconnectDelay  ms, default 500: the back-off base.
 *   options.maxReconnectDelay  ms, default 20000: the back-off cap.
 *   options.connectTimeout     ms, default 10000: a connection without its
 *                              welcome by then is given up as failed.
 *   options.storage            where the stream positions are kept across
 *                              page reloads (below): default sessionStorage
 *                              when the page has one; false: nowhere (they
 *                              live as long as the client); or any object
 *                              with getItem and setItem. The key is
 *                              "workerman-push:" and the URL list.
 *   options.resume             initial positions, {stream: {epoch, offset}},
 *                              for an app that keeps them itself; used
 *                              only when the storage holds none.
 *
 * Events: one handler per event, assigned as a property (like WebSocket's);
 * a handler's `this` is the client. A handler that throws does not stop the
 * client (the error is rethrown later, for the console).
 *   onopen({url})          the WebSocket opened; the welcome follows.
 *   onwelcome({clientId, uid, url})
 *                          the server's welcome, {"type":"welcome",...}: the
 *                          client is reachable by pushes from now on.
 *   onmessage(data, {binary, stream, offset, epoch})
 *                          every push, in order: text as a string, binary
 *                          as an ArrayBuffer (binary: true). From a server
 *                          with history, stream ("uid:alice", "group:g",
 *                          "all"), offset and epoch name the push in its
 *                          stream; otherwise (and for sendToClient) they
 *                          are "", 0 and "".
 *   onresumed({streams, lost, url})
 *                          after a reconnect (or a page reload) that sent
 *                          positions, once the server replayed what was
 *                          missed (replayed pushes come to onmessage
 *                          first): streams is {stream: {recovered, epoch,
 *                          offset}}, lost lists the streams whose
 *                          recovered is false: the server's history no
 *                          longer reaches back to the position, pushes
 *                          were lost, and the app reloads its state for
 *                          them (the client goes on from the epoch and
 *                          offset given).
 *   onclose({code, reason, url, clientId, reconnect, delay})
 *                          a connection ended (or failed); reconnect tells
 *                          whether another attempt follows, after delay ms.
 *                          close() fires the last one, reconnect false.
 *   onerror(error)         an Error: a connection failed or timed out, or
 *                          the token function threw. Reconnecting goes on.
 *
 * Properties: clientId and uid (of the welcome; "" while not connected),
 * url (the URL in use, without the token), state ("connecting",
 * "connected" after the welcome, "disconnected" while waiting to reconnect,
 * "closed").
 *
 * Methods: send(data) sends a string, ArrayBuffer, typed array or Blob to
 * the server (a text or binary frame) and returns true, or returns false
 * when not connected: nothing is queued across reconnects. close() stops
 * for good. positions() returns a copy of the stream positions,
 * {stream: {epoch, offset}}.
 *
 * History and resume: a server with history (workerman-push
 * -history-size) wraps each push as {"type":"message","stream":…,
 * "offset":…,"epoch":…,"data":…} ("data_base64" for binary); the client
 * unwraps it and keeps, per stream, the epoch and offset of the last push
 * it delivered: its position. Every connection after the first push (or
 * with stored or given positions) sends them as the resume query
 * parameter, resume=<JSON {stream: {epoch, offset}}>; the server replays
 * what was missed, then sends {"type":"resumed",...} (onresumed), then
 * the live pushes. A push whose offset is at or below the position in the
 * same epoch was delivered already and is dropped, so the app sees each
 * push once. A push above the position (same epoch) is delivered and
 * becomes the position, also when it skips offsets: the skipped ones are
 * pushes this client was left out of (the backend excluded it, as a chat
 * leaves out the sender of a message). The server never leaves a push out
 * silently otherwise: one it cannot queue for this client (its send
 * buffer is full: the client did not read fast enough) closes the
 * connection with code 1013 ("try again later") before anything later is
 * written to it; the client reconnects after it as after any close (the
 * usual wait), and the resume replays what it missed, in order. A new
 * epoch is taken as it comes. Exclusion names client IDs and filters
 * only the live pushes of the connection it names: a replay after a
 * resume holds every push of the stream after the position, those this
 * client was left out of on its old connection included (an app that
 * must not show its own messages tells them by their content). Positions
 * are saved to options.storage after every push, so a page reload
 * resumes where the page was.
 *
 * Which frames are envelopes: a binary frame never is. A text frame is
 * one when it is a JSON object with "type":"message", a non-empty string
 * "stream", an integer "offset" >= 1, a string "epoch" and exactly one of
 * a string "data" or "data_base64". Once the client saw such a frame or a
 * "resumed" one (the server keeps history), a JSON object with
 * "type":"message", no "stream" or "offset", and a string "data" or
 * "data_base64" is one too: a sendToClient push in history mode. Any other
 * frame is a plain push, delivered as it came: without history, pushes
 * arrive exactly as before, unless an app pushes JSON of the first shape
 * itself. (So a sendToClient push that reaches a new client, with no
 * positions, before any push of a stream did comes as its envelope's
 * JSON text.) {"type":"resumed","streams":{...}} is read as such only as
 * a reply to resume: once after the welcome, then once more for each
 * stream resumed that the first did not name, when the backend binds the
 * client to its uid or group (the server replays it then).
 *
 * Reconnecting: a connection that fails, or ends before its welcome, moves
 * on to the next URL of the list; one that ends after its welcome comes back
 * to the same URL (after a close with code 1013 too: the server could not
 * queue a push for this client, above). The wait before the n-th attempt
 * in a row is min(maxReconnectDelay, minReconnectDelay * 2^(n-1)), drawn
 * at random between half of that and all of it, so that the clients a
 * restart dropped together do not all come back together; a welcome starts
 * n again. A close with code 1001 (the server is going away: shutting down
 * or draining) moves to the next URL at once, with no wait; only after
 * every URL of the list went away in a row does the usual wait apply.
 * When the browser fires "online" (the network is back), a client
 * waiting to reconnect connects at once.
 */
(function (root) {
  "use strict";

  var GOING_AWAY = 1001;
  var OPEN = 1; // WebSocket.OPEN

  function WorkermanPush(urls, options) {
    if (!(this instanceof WorkermanPush)) return new WorkermanPush(urls, options);
    urls = [].concat(urls == null ? [] : urls).map(wsURL);
    if (!urls.length) throw new TypeError("WorkermanPush: no URL to connect to");
    options = options || {};
    this.urls = urls;
    this.clientId = "";
    this.uid = "";
    this.url = "";
    this.state = "connecting";
    this.onopen = this.onwelcome = this.onmessage = this.onresumed = this.onclose = this.onerror = null;

    this._token = options.token;
    this._min = positive(options.minReconnectDelay, 500);
    this._max = Math.max(this._min, positive(options.maxReconnectDelay, 20000));
    this._connectTimeout = positive(options.connectTimeout, 10000);
    this._next = 0;        // index of the URL of the next attempt
    this._attempts = 0;    // attempts since the last welcome
    this._hops = 0;        // 1001 closes in a row, each answered at once
    this._welcomedAt = 0;
    this._ws = null;
    this._gen = 0;         // bumped by close(): stale callbacks check it
    this._timer = null;
    this._online = null;
    this._history = false; // the server showed it keeps history
    this._storage = storageOf(options.storage);
    this._key = "workerman-push:" + urls.join(" ");
    // stream -> {epoch, offset}; no prototype, for names from the wire.
    this._positions = Object.assign(Object.create(null), this._load() || positionsOf(options.resume));
    if (typeof root.addEventListener === "function") {
      // The browser says the network is back: waiting out the back-off
      // would only delay the reconnect.
      var self = this;
      this._online = function () { self._wake(); };
      root.addEventListener("online", this._online);
    }
    this._schedule(0);
  }

  var P = WorkermanPush.prototype;

  P.send = function (data) {
    if (!this._ws || this._ws.readyState !== OPEN) return false;
    this._ws.send(data);
    return true;
  };

  P.positions = function () {
    return positionsOf(this._positions) || {};
  };

  P.close = function () {
    if (this.state === "closed") return;
    this._gen++;
    clearTimeout(this._timer);
    this._timer = null;
    var ws = this._ws, clientId = this.clientId;
    this._ws = null;
    this.clientId = this.uid = "";
    this.state = "closed";
    if (this._online) root.removeEventListener("online", this._online);
    this._online = null;
    if (ws) {
      detach(ws);
      ws.close(1000);
    }
    this._emit("onclose", { code: 1000, reason: "", url: this.url, clientId: clientId, reconnect: false, delay: 0 });
  };

  P._schedule = function (delay) {
    var self = this, gen = this._gen;
    this._timer = setTimeout(function () {
      self._timer = null;
      if (gen === self._gen) self._connect();
    }, delay);
  };

  // _wake connects now if the client is waiting to reconnect.
  P._wake = function () {
    if (this.state !== "disconnected" || this._timer === null) return;
    clearTimeout(this._timer);
    this._timer = null;
    this._connect();
  };

    // _connect reads the token, then opens a WebSocket to the current URL.
  P._connect = function () {
    var self = this, gen = this._gen, url = this.urls[this._next], token = this._token;
    this.state = "connecting";
    this.url = url;
    new Promise(function (resolve) {
      resolve(typeof token === "function" ? token() : token);
    }).then(function (t) {
      if (gen === self._gen) self._open(url, t);
    }, function (err) {
      if (gen !== self._gen) return;
      self._emit("onerror", err instanceof Error ? err : new Error("WorkermanPush: token: " + err));
      self._ended(null, 0, "", url, false);
    });
  };

  P._open = function (url, token) {
    var self = this, welcomed = false, ws, query = [];
    // awaitResumed: resume was sent, and the server's answer to it is due;
    // awaitStreams: the streams resumed that the answer did not name yet
    // (the backend binds the client to them later: each bind answers
    // with its own resumed frame).
    var conn = { url: url, awaitResumed: false, awaitStreams: Object.create(null) };
    if (token) query.push("token=" + encodeURIComponent(token));
    for (var s in this._positions) {
      conn.awaitResumed = true;
      conn.awaitStreams[s] = true;
    }
    if (conn.awaitResumed) query.push("resume=" + encodeURIComponent(JSON.stringify(this._positions)));
    var full = query.length ? url + (url.indexOf("?") < 0 ? "?" : "&") + query.join("&") : url;
    try {
      ws = new WebSocket(full);
    } catch (err) {
      this._emit("onerror", err);
      this._ended(null, 0, "", url, false);
      return;
    }
    ws.binaryType = "arraybuffer";
    this._ws = ws;
    var timeout = setTimeout(function () {
      self._emit("onerror", new Error("WorkermanPush: no welcome from " + url + " within " + self._connectTimeout + " ms"));
      self._ended(ws, 0, "", url, false);
    }, this._connectTimeout);

    ws.onopen = function () {
      self._emit("onopen", { url: url });
    };
    ws.onmessage = function (ev) {
      var binary = typeof ev.data !== "string";
      if (!welcomed) {
        // The first frame is the welcome; a server without one sends a
        // message first, which counts as a welcome with no ID.
        welcomed = true;
        clearTimeout(timeout);
        var w = binary ? null : parseWelcome(ev.data);
        self.clientId = w ? String(w.client_id || "") : "";
        self.uid = w ? String(w.uid || "") : "";
        self.state = "connected";
        self._attempts = 0;
        self._welcomedAt = Date.now();
        if (w) {
          self._emit("onwelcome", { clientId: self.clientId, uid: self.uid, url: url });
          return;
        }
      }
      self._received(conn, ev.data, binary);
    };
    ws.onerror = function () {
      self._emit("onerror", new Error("WorkermanPush: WebSocket error on " + url));
    };
    ws.onclose = function (ev) {
      clearTimeout(timeout);
      self._ended(ws, ev.code, ev.reason, url, welcomed);
    };
  };

  // _received delivers a frame after the welcome: unwraps an envelope,
  // tracks its stream's position, drops a duplicate.
  P._received = function (conn, data, binary) {
    var v = binary ? null : parseObject(data);
    if (v && v.type === "resumed" && isObject(v.streams) && (conn.awaitResumed || awaited(conn.awaitStreams, v.streams))) {
      conn.awaitResumed = false;
      for (var s in v.streams) delete conn.awaitStreams[s];
      this._history = true;
      this._resumed(v.streams, conn.url);
      return;
    }
    var env = v && envelope(v, this._history);
    if (!env) {
      this._emit("onmessage", data, { binary: binary, stream: "", offset: 0, epoch: "" });
      return;
    }
    if (env.stream) {
      this._history = true;
      var p = this._positions[env.stream];
      // At or below the position, same epoch: delivered already (a
      // replay). Above it: new, also when offsets were skipped (pushes
      // this client was left out of).
      if (p && p.epoch !== "" && p.epoch === env.epoch && env.offset <= p.offset) return;
      this._positions[env.stream] = { epoch: env.epoch, offset: env.offset };
      this._save();
    }
    this._emit("onmessage", env.data, { binary: env.binary, stream: env.stream, offset: env.offset, epoch: env.epoch });
  };

  // awaited: every stream of a later resumed frame is one resumed and
  // not answered yet.
  function awaited(waiting, streams) {
    var any = false;
    for (var s in streams) {
      if (waiting[s] !== true) return false;
      any = true;
    }
    return any;
  }

  // _resumed takes the server's answer to resume: every stream named goes
  // on from the epoch and offset given.
  P._resumed = function (streams, url) {
    var out = {}, lost = [];
    for (var s in streams) {
      var r = streams[s];
      if (!isObject(r) || s === "__proto__") continue;
      var e = { recovered: r.recovered === true, epoch: typeof r.epoch === "string" ? r.epoch : "", offset: isCount(r.offset) ? r.offset : 0 };
      out[s] = e;
      if (!e.recovered) lost.push(s);
      this._positions[s] = { epoch: e.epoch, offset: e.offset };
    }
    this._save();
    this._emit("onresumed", { streams: out, lost: lost, url: url });
  };

  P._load = function () {
    if (!this._storage) return null;
    try {
      return positionsOf(JSON.parse(this._storage.getItem(this._key)));
    } catch (err) {
      return null;
    }
  };

  P._save = function () {
    if (!this._storage) return;
    try {
      this._storage.setItem(this._key, JSON.stringify(this._positions));
    } catch (err) {
      // Full or forbidden: the positions live on in memory.
    }
  };

  // _ended decides where and when the next attempt goes after ws (null: no
  // socket was made) ended.
  P._ended = function (ws, code, reason, url, welcomed) {
    if (ws) {
      detach(ws);
      if (ws.readyState < 2) ws.close(); // given up (timeout): CONNECTING or OPEN
      if (ws !== this._ws) return;
    }
    if (this.state === "closed") return;
    this._ws = null;
    var clientId = this.clientId, n = this.urls.length, delay;
    this.clientId = this.uid = "";
    if (welcomed && code === GOING_AWAY) {
      this._next = (this._next + 1) % n;
      // A connection that lived longer than the longest wait starts a new
      // series of hops: only a whole list going away at once waits.
      if (Date.now() - this._welcomedAt > this._max) this._hops = 0;
      this._hops++;
      delay = this._hops <= n ? 0 : this._backoff();
    } else {
      if (!welcomed) this._next = (this._next + 1) % n;
      this._hops = 0;
      delay = this._backoff();
    }
    this.state = "disconnected";
    this._schedule(delay);
    this._emit("onclose", { code: code, reason: reason, url: url, clientId: clientId, reconnect: true, delay: delay });
  };

  P._backoff = function () {
    this._attempts++;
    var d = Math.min(this._max, this._min * Math.pow(2, this._attempts - 1));
    return Math.round(d / 2 + Math.random() * d / 2);
  };

  P._emit = function (name, a, b) {
    var f = this[name];
    if (typeof f !== "function") return;
    try {
      f.call(this, a, b);
    } catch (err) {
      setTimeout(function () { throw err; });
    }
  };

  function detach(ws) {
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
  }

  // envelope returns the push v wraps, {data, binary, stream, offset,
  // epoch}, or null when v is no envelope (see "Which frames are
  // envelopes" above). history: the server showed it keeps history.
  function envelope(v, history) {
    if (v.type !== "message") return null;
    var text = typeof v.data === "string", b64 = typeof v.data_base64 === "string";
    if (text === b64) return null;
    var streamed = typeof v.stream === "string" && v.stream !== "" && isCount(v.offset) && v.offset >= 1 && typeof v.epoch === "string";
    if (!streamed && (!history || v.stream !== undefined || v.offset !== undefined)) return null;
    var data = text ? v.data : fromBase64(v.data_base64);
    if (data === null) return null;
    return streamed ? { data: data, binary: b64, stream: v.stream, offset: v.offset, epoch: v.epoch } : { data: data, binary: b64, stream: "", offset: 0, epoch: "" };
  }

  function fromBase64(s) {
    try {
      var bin = atob(s), b = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) b[i] = bin.charCodeAt(i);
      return b.buffer;
    } catch (err) {
      return null;
    }
  }

  // parseObject returns the JSON object text holds, or null.
  function parseObject(text) {
    if (!/^\s*\{/.test(text)) return null;
    try {
      var v = JSON.parse(text);
      return isObject(v) ? v : null;
    } catch (err) {
      return null;
    }
  }

  function isObject(v) {
    return v !== null && typeof v === "object" && !Array.isArray(v);
  }

  function isCount(v) {
    return typeof v === "number" && v >= 0 && Math.floor(v) === v && isFinite(v);
  }

  // positionsOf returns a clean copy of v, {stream: {epoch, offset}}, or
  // null when v holds none.
  function positionsOf(v) {
    if (!isObject(v)) return null;
    var out = null;
    for (var s in v) {
      var p = v[s];
      if (!s || s === "__proto__" || !isObject(p) || typeof p.epoch !== "string" || !isCount(p.offset)) continue;
      out = out || {};
      out[s] = { epoch: p.epoch, offset: p.offset };
    }
    return out;
  }

  function storageOf(opt) {
    if (opt === false || opt === null) return null;
    if (opt && typeof opt.getItem === "function" && typeof opt.setItem === "function") return opt;
    try {
      return typeof sessionStorage !== "undefined" && sessionStorage ? sessionStorage : null;
    } catch (err) {
      return null; // sandboxed: access denied
    }
  }

  function parseWelcome(text) {
    try {
      var v = JSON.parse(text);
      return v && v.type === "welcome" ? v : null;
    } catch (err) {
      return null;
    }
  }

  function positive(v, def) {
    return typeof v === "number" && v >= 0 && isFinite(v) ? v : def;
  }

  // wsURL makes url a WebSocket URL, relative to the page when it is not one.
  function wsURL(url) {
    url = String(url);
    if (/^wss?:\/\//i.test(url) || typeof location === "undefined" || typeof URL !== "function") return url;
    var u = new URL(url, location.href);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    return u.href;
  }

  root.WorkermanPush = WorkermanPush;
  if (typeof module === "object" && module && module.exports) module.exports = WorkermanPush;
})(typeof globalThis !== "undefined" ? globalThis : typeof self !== "undefined" ? self : this);
