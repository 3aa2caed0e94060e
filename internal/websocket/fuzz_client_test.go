package websocket

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/workerman-go/workerman/internal/codectest"
	"github.com/workerman-go/workerman/internal/proto"
	"github.com/workerman-go/workerman/protocol"
)

// The fuzzers of this file play the server against the WebSocket client
// codec (ws:// and wss:// AsyncConnections): everything a client parses
// comes from the network, so no byte sequence may panic it, and what it
// accepts must be what RFC 6455 allows.

// fuzzKey is RFC 6455's sample Sec-WebSocket-Key, set on the client codecs
// so that a fuzzed response can carry the matching fuzzAccept.
const (
	fuzzKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	fuzzAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// fuzzProtocols are the subprotocols the fuzzed client offers.
var fuzzProtocols = []string{"chat", "superchat"}

func newFuzzClient(compression bool) *Codec {
	cc := ClientConfig{Host: "example.com", Path: "/chat", Protocols: fuzzProtocols}
	codec := Client(Config{Compression: compression}, cc).NewCodec().(*Codec)
	copy(codec.dial.key[:], fuzzKey)
	return codec
}

// response101 is a server's valid answer to newFuzzClient, with extra
// header lines ("Name: value\r\n").
func response101(extra string) string {
	return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + fuzzAccept + "\r\n" + extra + "\r\n"
}

const deflateAnswer = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"

// establishedClient is a client codec after a valid handshake, with
// permessage-deflate in use when compressed.
func establishedClient(t *testing.T, compressed bool) *Codec {
	t.Helper()
	codec := newFuzzClient(compressed)
	resp := response101("")
	if compressed {
		resp = response101(deflateAnswer)
	}
	msgs, err := feed(codec, codectest.Conn{Max: 1 << 20}, []byte(resp), len(resp))
	if err != nil || len(msgs) != 1 || codec.Compressed() != compressed {
		t.Fatalf("handshake: %v, %d messages, compressed %v", err, len(msgs), codec.Compressed())
	}
	codec.markEstablished()
	return codec
}

// serverFrame is a frame as a server sends it: unmasked.
func serverFrame(fin bool, rsv, op byte, payload []byte) []byte {
	f := appendFrameHeader(nil, ws.OpCode(op), rsv, len(payload), nil)
	if !fin {
		f[0] &^= 0x80
	}
	return append(f, payload...)
}

func deflated(t testing.TB, p []byte) []byte {
	z, err := deflateMessage(p)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(*z)
}

// FuzzWebSocketClientHandshake feeds the client what a server answers to
// its opening handshake, followed by whatever comes next. The client
// accepts only a 101 with the right Sec-WebSocket-Accept, a subprotocol it
// offered and the extension it offered; anything else is a protocol.HandshakeError
// without an answer (a client has nobody to answer); never a panic, and the
// outcome does not depend on how the bytes arrive.
func FuzzWebSocketClientHandshake(f *testing.F) {
	f.Add([]byte(response101("")), false, 1)
	f.Add([]byte(response101(deflateAnswer)), true, 3)
	f.Add([]byte(response101(deflateAnswer)), false, 5) // not offered
	f.Add([]byte(response101("Sec-WebSocket-Protocol: superchat\r\n")), false, 7)
	f.Add([]byte(response101("Sec-WebSocket-Protocol: other\r\n")), false, 2)
	f.Add([]byte(response101("Sec-WebSocket-Extensions: permessage-deflate\r\n")), true, 4)
	f.Add([]byte(response101("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover, permessage-deflate; server_no_context_takeover\r\n")), true, 9)
	f.Add([]byte(response101("Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n")), true, 6)
	f.Add([]byte(response101("")+string(serverFrame(true, 0, 1, []byte("hello")))), false, 2)
	f.Add([]byte(response101(deflateAnswer)+string(serverFrame(true, 4, 2, deflated(f, []byte("zip"))))), true, 8)
	f.Add([]byte(strings.Replace(response101(""), fuzzAccept, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", 1)), false, 1)
	f.Add([]byte(strings.Replace(response101(""), "101 Switching Protocols", "200 OK", 1)), false, 1)
	f.Add([]byte(strings.Replace(response101(""), "Connection: Upgrade", "Connection: keep-alive, Upgrade", 1)), false, 3)
	f.Add([]byte(strings.Replace(response101(""), "HTTP/1.1", "HTTP/1.0", 1)), false, 3)
	f.Add([]byte("HTTP/1.1 101\r\n\r\n"), false, 1)
	f.Add([]byte("HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nForbidden"), false, 4)
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"), false, 1)
	f.Add([]byte("\x16\x03\x01\x02\x00\x01"), false, 1) // a TLS hello
	f.Add([]byte("HTTP/"), false, 1)
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade : websocket\r\n\x00\r\n\r\n"), false, 2)
	f.Fuzz(func(t *testing.T, stream []byte, compression bool, step int) {
		step = 1 + codectest.Abs(step)%64
		c := codectest.Conn{Max: 1 << 16}

		// One Input, one Decode: the packet boundaries of the handshake.
		codec := newFuzzClient(compression)
		n, err := codec.Input(c, stream)
		switch {
		case err != nil:
			var he *protocol.HandshakeError
			if !errors.As(err, &he) {
				t.Fatalf("Input error %v is not a protocol.HandshakeError", err)
			}
			if resp := codec.errorResponse(err); resp != nil {
				t.Fatalf("a client answered %v with %q", err, resp)
			}
			if bytes.HasPrefix(stream, []byte("HTTP/")) && !bytes.Contains(stream, []byte("\r\n\r\n")) && len(stream) < 16<<10 {
				t.Fatalf("a short response head was refused: %v", err)
			}
		case n == 0:
			if bytes.Contains(stream, []byte("\r\n\r\n")) || len(stream) >= 16<<10 {
				t.Fatalf("a complete or oversized head (%d bytes) still needs more", len(stream))
			}
		default:
			if !bytes.HasPrefix(stream, []byte("HTTP/")) || n != bytes.Index(stream, []byte("\r\n\r\n"))+4 {
				t.Fatalf("handshake packet of %d bytes in %q", n, stream)
			}
			checkClientHandshake(t, codec, compression, stream[:n])
		}

		// The whole stream, then handshake and frames as they arrive in
		// pieces: the same outcome.
		run := func(step int) ([]protocol.Message, error) {
			codec := newFuzzClient(compression)
			var out []protocol.Message
			err := codectest.Feed(codec, c, stream, step, func(m protocol.Message) {
				if m.Type == protocol.HandshakeMessage {
					codec.markEstablished()
				}
				if m.Type != protocol.NoMessage {
					m.Data = bytes.Clone(m.Data)
					out = append(out, m)
				}
			})
			return out, err
		}
		whole, errWhole := run(max(len(stream), 1))
		split, errSplit := run(step)
		compareOutcomes(t, step, whole, errWhole, split, errSplit)
	})
}

// checkClientHandshake decodes one response head and checks the verdict.
func checkClientHandshake(t *testing.T, codec *Codec, offered bool, head []byte) {
	t.Helper()
	m, err := codec.Decode(codectest.Conn{Max: 1 << 16}, bytes.Clone(head))
	if err != nil {
		var he *protocol.HandshakeError
		if !errors.As(err, &he) || !errors.Is(err, errBadResponse) {
			t.Fatalf("refusal %v is not a bad-response protocol.HandshakeError", err)
		}
		if codec.Established() || codec.Compressed() || codec.errorResponse(err) != nil {
			t.Fatalf("after refusing %q: established %v, compressed %v", head, codec.Established(), codec.Compressed())
		}
		return
	}
	r, ok := m.Value.(*protocol.WebSocketResponse)
	// What the client accepts, net/http reads alike.
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), nil)
	if err != nil {
		t.Fatalf("accepted %q, which net/http refuses: %v", head, err)
	}
	if ok && (resp.StatusCode != r.Status || !reflect.DeepEqual(resp.Header, r.Header)) {
		t.Fatalf("accepted %q as %d %v; net/http reads %d %v", head, r.Status, r.Header, resp.StatusCode, resp.Header)
	}
	switch {
	case m.Type != protocol.HandshakeMessage || !ok:
		t.Fatalf("accepted as %v with %T", m.Type, m.Value)
	case r.Status != 101:
		t.Fatalf("accepted status %d", r.Status)
	case !bytes.Contains(head, []byte(fuzzAccept)):
		t.Fatalf("accepted without the Sec-WebSocket-Accept of the key: %q", head)
	case r.Subprotocol != "" && !contains(fuzzProtocols, r.Subprotocol):
		t.Fatalf("accepted subprotocol %q that was not offered", r.Subprotocol)
	case r.Compressed && !offered:
		t.Fatal("accepted permessage-deflate that was not offered")
	case r.Compressed && !bytes.Contains(head, []byte("server_no_context_takeover")):
		t.Fatal("accepted permessage-deflate with context takeover")
	case r.Compressed != codec.Compressed():
		t.Fatalf("response says compressed %v, codec %v", r.Compressed, codec.Compressed())
	}
}

// compareOutcomes (for the server and the client fuzzers) asserts what a
// stream fed whole and fed in pieces must
// share: the same messages, the same success, and close codes a peer may
// receive.
func compareOutcomes(t *testing.T, step int, whole []protocol.Message, errWhole error, split []protocol.Message, errSplit error) {
	t.Helper()
	if (errWhole == nil) != (errSplit == nil) {
		// UTF-8 fails fast when split; a whole stream may end first.
		if !(isCode(errSplit, protocol.CloseInvalidPayload) && errWhole == nil) {
			t.Fatalf("whole: %v, split by %d: %v", errWhole, step, errSplit)
		}
	}
	for _, err := range []error{errWhole, errSplit} {
		var ce *protocol.CloseError
		if err != nil && errors.As(err, &ce) && !protocol.ValidCloseCode(ce.Code) {
			t.Fatalf("failure with close code %d", ce.Code)
		}
	}
	if errWhole == nil && errSplit == nil && len(whole) != len(split) {
		t.Fatalf("%d vs %d messages", len(whole), len(split))
	}
	for i := range min(len(whole), len(split)) {
		if whole[i].Type != split[i].Type || !bytes.Equal(whole[i].Data, split[i].Data) {
			t.Fatalf("message %d: %v %q whole, %v %q split", i, whole[i].Type, whole[i].Data, split[i].Type, split[i].Data)
		}
	}
}

// FuzzWebSocketClientFrames throws arbitrary bytes at an established client
// connection, with and without permessage-deflate. Besides what
// FuzzWebSocketFrames checks on the server side: a masked frame is refused,
// every message delivered obeys RFC 6455 and survives a round trip (a
// server's encoding read by a client, the client's encoding read by a
// server), and the close frame a failure answers with is masked and
// carries the failure's code.
func FuzzWebSocketClientFrames(f *testing.F) {
	f.Add(serverFrame(true, 0, 1, []byte("hello")), false, 1)
	f.Add(append(serverFrame(false, 0, 1, []byte{0xe2, 0x82}), serverFrame(true, 0, 0, []byte{0xac})...), false, 2)
	f.Add(append(serverFrame(false, 0, 2, []byte("ab")), append(serverFrame(true, 0, 9, []byte("ping")), serverFrame(true, 0, 0, []byte("cd"))...)...), false, 3)
	f.Add(serverFrame(true, 0, 8, []byte{0x03, 0xe8, 'b', 'y', 'e'}), false, 3)
	f.Add(serverFrame(true, 0, 8, []byte{0x03, 0xed}), false, 1) // 1005 may not be sent
	f.Add(serverFrame(true, 0, 8, []byte{0x03}), false, 1)
	f.Add(serverFrame(true, 4, 2, deflated(f, bytes.Repeat([]byte("abc"), 100))), true, 5)
	f.Add(serverFrame(true, 4, 1, deflated(f, []byte("κόσμε"))), true, 2)
	f.Add(serverFrame(true, 4, 1, deflated(f, []byte{0xff, 0xfe})), true, 2)
	f.Add(append(serverFrame(false, 4, 1, deflated(f, []byte("frag"))[:3]), serverFrame(true, 0, 0, deflated(f, []byte("frag"))[3:])...), true, 1)
	f.Add(serverFrame(true, 4, 1, []byte("not deflate")), false, 4)
	f.Add(serverFrame(true, 4, 2, bytes.Repeat([]byte{0}, 40)), true, 7)
	f.Add(maskedFrame(true, 0, 1, []byte("masked")), false, 1)
	f.Add(serverFrame(true, 0, 3, nil), false, 1)                             // reserved opcode
	f.Add(serverFrame(false, 0, 9, []byte("p")), false, 1)                    // fragmented ping
	f.Add(serverFrame(true, 0, 0, []byte("c")), false, 1)                     // continuation alone
	f.Add(serverFrame(true, 0, 10, bytes.Repeat([]byte("p"), 126)), false, 9) // long pong
	f.Add([]byte{0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 1}, false, 4)               // 64 KiB + 1
	f.Add([]byte{0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0}, false, 4)            // 2^63
	f.Add([]byte{0x82, 0x7e, 0, 0}, false, 1)                                 // non-minimal length
	f.Fuzz(func(t *testing.T, stream []byte, compressed bool, step int) {
		step = 1 + codectest.Abs(step)%64
		c := codectest.Conn{Max: 1 << 16}
		run := func(step int) ([]protocol.Message, error) {
			codec := establishedClient(t, compressed)
			var out []protocol.Message
			err := clientFeed(t, codec, c, stream, step, func(m protocol.Message) {
				if m.Type != protocol.NoMessage {
					m.Data = bytes.Clone(m.Data)
					out = append(out, m)
				}
			})
			if err != nil {
				checkClientErrorResponse(t, codec, err)
			}
			return out, err
		}
		whole, errWhole := run(max(len(stream), 1))
		split, errSplit := run(step)
		compareOutcomes(t, step, whole, errWhole, split, errSplit)
		if h, ok, _ := parseFrameHeader(stream); ok && h.masked && errWhole == nil {
			t.Fatal("a masked server frame was accepted")
		}
		for _, m := range whole {
			checkDelivered(t, m, c.Max)
			roundTrip(t, m, compressed)
		}
	})
}

// clientFeed is feedCodec with a check of every packet Input frames: an
// unmasked frame, exactly as long as its header says, with the control
// frame rules kept.
func clientFeed(t *testing.T, codec *Codec, c protocol.Conn, stream []byte, step int, got func(protocol.Message)) error {
	t.Helper()
	check := packetChecker{Codec: codec, t: t}
	return codectest.Feed(&check, c, stream, step, got)
}

type packetChecker struct {
	protocol.Codec
	t *testing.T
}

func (p *packetChecker) Decode(c protocol.Conn, packet []byte) (protocol.Message, error) {
	h, ok, err := parseFrameHeader(packet)
	switch {
	case err != nil || !ok:
		p.t.Fatalf("Input framed a packet without a header: % x (%v)", packet, err)
	case h.masked:
		p.t.Fatalf("Input framed a masked server frame")
	case uint64(len(packet)) != uint64(h.size)+h.length:
		p.t.Fatalf("packet of %d bytes, header says %d + %d", len(packet), h.size, h.length)
	case h.op.IsControl() && (!h.fin || h.length > 125):
		p.t.Fatalf("Input framed a control frame with fin %v, %d bytes", h.fin, h.length)
	}
	return p.Codec.Decode(c, packet)
}

// checkClientErrorResponse: once established, a failure is answered with
// one close frame whose code a peer may receive: the failure's own close
// code, 1009 for a size limit, 1002 for anything else. If the codec itself
// gives the answer, it is that frame and masked, as from a client.
func checkClientErrorResponse(t *testing.T, codec *Codec, err error) {
	t.Helper()
	want := protocol.CloseProtocolError
	var ce *protocol.CloseError
	switch {
	case errors.As(err, &ce):
		want = ce.Code
	case errors.Is(err, protocol.ErrPackageTooLarge):
		want = protocol.CloseMessageTooBig
	}
	if !protocol.ValidCloseCode(want) {
		t.Fatalf("error %v would be answered with close code %d", err, want)
	}
	resp := codec.errorResponse(err)
	if resp == nil {
		return // the connection sends the close frame
	}
	h, ok, perr := parseFrameHeader(resp)
	if perr != nil || !ok || h.op != ws.OpClose || !h.fin || !h.masked || uint64(len(resp)) != uint64(h.size)+h.length {
		t.Fatalf("error %v answered with % x", err, resp)
	}
	payload := bytes.Clone(resp[h.size:])
	ws.Cipher(payload, h.mask, 0)
	if code, _ := protocol.ParseClosePayload(payload); code != want {
		t.Fatalf("error %v answered with close code %d, want %d", err, code, want)
	}
}

// checkDelivered asserts what RFC 6455 allows a delivered message to be.
func checkDelivered(t *testing.T, m protocol.Message, limit int) {
	t.Helper()
	switch m.Type {
	case protocol.TextMessage:
		if !utf8.Valid(m.Data) {
			t.Fatalf("invalid UTF-8 delivered: %x", m.Data)
		}
	case protocol.BinaryMessage:
	case protocol.PingMessage, protocol.PongMessage:
		if len(m.Data) > 125 {
			t.Fatalf("%v of %d bytes delivered", m.Type, len(m.Data))
		}
	case protocol.CloseMessage:
		if len(m.Data) > 125 || len(m.Data) == 1 {
			t.Fatalf("close payload of %d bytes delivered", len(m.Data))
		}
		if code, reason := protocol.ParseClosePayload(m.Data); len(m.Data) > 0 && (!protocol.ValidCloseCode(code) || !utf8.ValidString(reason)) {
			t.Fatalf("close code %d, reason %q delivered", code, reason)
		}
	default:
		t.Fatalf("%v delivered after the handshake", m.Type)
	}
	if len(m.Data) > limit {
		t.Fatalf("message of %d bytes delivered, MaxPackageSize %d", len(m.Data), limit)
	}
}

// roundTrip: what a server encodes for m, a client decodes back to m; what
// the client encodes for m, a server decodes back to m.
func roundTrip(t *testing.T, m protocol.Message, compressed bool) {
	t.Helper()
	c := codectest.Conn{Max: 1 << 20}
	frame, err := ServerFrame(nil, protocol.Message{Type: m.Type, Data: m.Data})
	if err != nil {
		t.Fatalf("server encoding of a delivered %v: %v", m.Type, err)
	}
	back, err := feed(establishedClient(t, compressed), c, frame, len(frame))
	if err != nil || len(back) != 1 || back[0].Type != m.Type || !bytes.Equal(back[0].Data, m.Data) {
		t.Fatalf("%v %q through a server encoding: %v, %+v", m.Type, m.Data, err, back)
	}

	client := establishedClient(t, compressed)
	frame, err = client.Encode(c, nil, protocol.Message{Type: m.Type, Data: m.Data})
	if err != nil {
		t.Fatalf("client encoding of a delivered %v: %v", m.Type, err)
	}
	server := newTestCodec()
	if _, err := feed(server, c, []byte(testHandshake), len(testHandshake)); err != nil {
		t.Fatal(err)
	}
	server.markEstablished()
	back, err = feed(server, c, frame, len(frame))
	if err != nil || len(back) != 1 || back[0].Type != m.Type || !bytes.Equal(back[0].Data, m.Data) {
		t.Fatalf("%v %q through a client encoding: %v, %+v", m.Type, m.Data, err, back)
	}
}

// The client's own handshake, answered by our server codec, is accepted;
// both agree on compression and subprotocol.
func TestWebSocketClientAgainstServerCodec(t *testing.T) {
	for _, compression := range []bool{false, true} {
		client := newFuzzClient(compression)
		server := Server(Config{Compression: true, OnRequest: func(_ proto.Conn, r *protocol.WebSocketRequest) error {
			r.AcceptProtocol("superchat")
			return nil
		}}).NewCodec().(*Codec)
		c := &codectest.SessionConn{Conn: codectest.Conn{Max: 1 << 20}}
		req, err := feed(server, c, client.HandshakeRequest(), 7)
		if err != nil || len(req) != 1 {
			t.Fatalf("server: %v, %d messages", err, len(req))
		}
		resp, err := feed(client, c, req[0].Data, 5)
		if err != nil || len(resp) != 1 {
			t.Fatalf("client: %v, %d messages for %q", err, len(resp), req[0].Data)
		}
		r := resp[0].Value.(*protocol.WebSocketResponse)
		if r.Compressed != compression || server.Compressed() != compression || r.Subprotocol != "superchat" {
			t.Fatalf("compression %v: response %+v, server compressed %v", compression, r, server.Compressed())
		}
	}
}
