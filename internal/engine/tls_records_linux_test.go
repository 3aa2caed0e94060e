//go:build linux

package engine

// These tests pin what a TLS 1.3 server (RFC 8446) does with the records a
// client sends after the handshake, whichever record layer the engine uses:
// they talk to the server through sockets, crypto/tls clients and records
// the test seals itself with the client's traffic secret (learnt from the
// client's key log).

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/testcert"
)

// TLS record content types and handshake message types (RFC 8446, 5.1 and
// 4).
const (
	recChangeCipherSpec = 20
	recAlert            = 21
	recHandshake        = 22
	recApplicationData  = 23

	hsNewSessionTicket = 4
	hsKeyUpdate        = 24
)

// recordIO is how long a test waits for the server's answer.
const recordIO = 5 * time.Second

// ---- the test's own TLS 1.3 record protection (RFC 8446, 5 and 7) ----

// hkdfExpandLabel is HKDF-Expand-Label (RFC 8446, 7.1).
func hkdfExpandLabel(h func() hash.Hash, secret []byte, label string, context []byte, length int) []byte {
	full := "tls13 " + label
	info := make([]byte, 0, 4+len(full)+len(context))
	info = binary.BigEndian.AppendUint16(info, uint16(length))
	info = append(info, byte(len(full)))
	info = append(info, full...)
	info = append(info, byte(len(context)))
	info = append(info, context...)
	out, err := hkdf.Expand(h, secret, string(info), length)
	if err != nil {
		panic(err)
	}
	return out
}

// recordKeys protects the records of one direction: a traffic secret, its
// key and iv (RFC 8446, 7.3), and the sequence number of the next record.
type recordKeys struct {
	hash   func() hash.Hash
	keyLen int
	secret []byte
	aead   cipher.AEAD
	iv     []byte
	seq    uint64
}

func newRecordKeys(t *testing.T, suite uint16, secret []byte) *recordKeys {
	t.Helper()
	k := &recordKeys{}
	switch suite {
	case tls.TLS_AES_128_GCM_SHA256:
		k.hash, k.keyLen = sha256.New, 16
	case tls.TLS_AES_256_GCM_SHA384:
		k.hash, k.keyLen = sha512.New384, 32
	default:
		t.Fatalf("no record keys for suite %s", tls.CipherSuiteName(suite))
	}
	k.setSecret(secret)
	return k
}

func (k *recordKeys) setSecret(secret []byte) {
	k.secret = secret
	block, err := aes.NewCipher(hkdfExpandLabel(k.hash, secret, "key", nil, k.keyLen))
	if err != nil {
		panic(err)
	}
	k.aead, err = cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	k.iv = hkdfExpandLabel(k.hash, secret, "iv", nil, 12)
	k.seq = 0
}

// update moves to the next traffic secret, as a KeyUpdate does (RFC 8446,
// 7.2): the sequence number starts again at 0.
func (k *recordKeys) update() {
	k.setSecret(hkdfExpandLabel(k.hash, k.secret, "traffic upd", nil, k.hash().Size()))
}

// nonce is the iv XOR the sequence number (RFC 8446, 5.3).
func (k *recordKeys) nonce() []byte {
	n := bytes.Clone(k.iv)
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], k.seq)
	for i := range s {
		n[len(n)-8+i] ^= s[i]
	}
	return n
}

// seal makes a TLSCiphertext record of TLSInnerPlaintext content || typ ||
// padding zero bytes (RFC 8446, 5.2).
func (k *recordKeys) seal(typ byte, content []byte, padding int) []byte {
	inner := make([]byte, 0, len(content)+1+padding)
	inner = append(inner, content...)
	inner = append(inner, typ)
	inner = append(inner, make([]byte, padding)...)
	return k.sealInner(inner)
}

// sealInner seals a TLSInnerPlaintext as it is given.
func (k *recordKeys) sealInner(inner []byte) []byte {
	n := len(inner) + k.aead.Overhead()
	hdr := []byte{recApplicationData, 3, 3, byte(n >> 8), byte(n)}
	rec := k.aead.Seal(hdr, k.nonce(), inner, hdr)
	k.seq++
	return rec
}

// open decrypts a record, strips the padding and returns the inner type
// and content.
func (k *recordKeys) open(rec []byte) (byte, []byte, error) {
	inner, err := k.aead.Open(nil, k.nonce(), rec[5:], rec[:5])
	if err != nil {
		return 0, nil, err
	}
	k.seq++
	i := len(inner) - 1
	for i >= 0 && inner[i] == 0 {
		i--
	}
	if i < 0 {
		return 0, nil, errors.New("an inner plaintext of zeros")
	}
	return inner[i], inner[:i], nil
}

// keyLog keeps a crypto/tls client's NSS key log.
type keyLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *keyLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// secret returns the secret a line "LABEL <client random> <secret>" holds.
func (l *keyLog) secret(t *testing.T, label string) []byte {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for line := range strings.Lines(l.b.String()) {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == label {
			s, err := hex.DecodeString(f[2])
			if err != nil {
				t.Fatalf("key log line %q: %v", line, err)
			}
			return s
		}
	}
	t.Fatalf("the key log has no %s:\n%s", label, l.b.String())
	return nil
}

// recConn keeps every byte the client reads, for the test to decrypt the
// server's records.
type recConn struct {
	net.Conn
	mu sync.Mutex
	in []byte
}

func (c *recConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.in = append(c.in, p[:n]...)
	c.mu.Unlock()
	return n, err
}

func (c *recConn) read() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.in)
}

// rawClient is a crypto/tls 1.3 client that, after its handshake, writes
// the records the test seals on the socket and reads with its tls.Conn.
type rawClient struct {
	t     *testing.T
	nc    *recConn
	tc    *tls.Conn
	suite uint16
	out   *recordKeys // the client's application traffic keys
	log   *keyLog
}

// dialRaw connects and does a TLS 1.3 handshake; it skips the test when
// the server did not choose an AES-GCM suite.
func dialRaw(t *testing.T, addr string, cfg *tls.Config) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &rawClient{t: t, nc: &recConn{Conn: nc}, log: &keyLog{}}
	cfg = cfg.Clone()
	cfg.ServerName = "127.0.0.1"
	cfg.MinVersion = tls.VersionTLS13
	cfg.KeyLogWriter = c.log
	c.tc = tls.Client(c.nc, cfg)
	c.tc.SetDeadline(time.Now().Add(recordIO))
	if err := c.tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	cs := c.tc.ConnectionState()
	if cs.Version != tls.VersionTLS13 {
		t.Fatalf("version %x, want TLS 1.3", cs.Version)
	}
	c.suite = cs.CipherSuite
	if c.suite != tls.TLS_AES_128_GCM_SHA256 && c.suite != tls.TLS_AES_256_GCM_SHA384 {
		t.Skipf("the server chose %s, not an AES-GCM suite", tls.CipherSuiteName(c.suite))
	}
	c.out = newRecordKeys(t, c.suite, c.log.secret(t, "CLIENT_TRAFFIC_SECRET_0"))
	return c
}

// send writes records in one socket write.
func (c *rawClient) send(recs ...[]byte) error {
	_, err := c.nc.Write(bytes.Join(recs, nil))
	return err
}

func (c *rawClient) mustSend(recs ...[]byte) {
	c.t.Helper()
	if err := c.send(recs...); err != nil {
		c.t.Fatal(err)
	}
}

// data seals application data under the current key.
func (c *rawClient) data(s string) []byte { return c.out.seal(recApplicationData, []byte(s), 0) }

// expect reads want with the tls.Conn.
func (c *rawClient) expect(want string) {
	c.t.Helper()
	c.tc.SetReadDeadline(time.Now().Add(recordIO))
	got := make([]byte, len(want))
	if n, err := io.ReadFull(c.tc, got); err != nil {
		c.t.Fatalf("reading the echo of %q: %v (after %q)", want, err, got[:n])
	}
	if string(got) != want {
		c.t.Fatalf("echo %q, want %q", got, want)
	}
}

// expectClosed reads until the server ends the connection, which it must
// do within the deadline, and returns how the read ended. With alerts, the
// end must be a remote alert whose text holds one of them.
func (c *rawClient) expectClosed(what string, alerts ...string) error {
	c.t.Helper()
	got, err := c.readToEnd()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.t.Fatalf("%s: the server did not close the connection (read %q)", what, got)
	}
	if len(got) > 0 {
		c.t.Fatalf("%s: the server sent %q before closing", what, got)
	}
	if len(alerts) > 0 && !containsAny(err.Error(), alerts) {
		c.t.Fatalf("%s: the read ended with %v, want a remote alert (%s)", what, err, strings.Join(alerts, " or "))
	}
	return err
}

// readToEnd reads with the tls.Conn until the read fails (the server's
// close, an alert, or recordIO without either) and returns what it read
// and how the read ended.
func (c *rawClient) readToEnd() ([]byte, error) {
	c.tc.SetReadDeadline(time.Now().Add(recordIO))
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.tc.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got, err
		}
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// serverEvent is what the test found in one of the server's records after
// the handshake.
type serverEvent struct {
	kind string // "ticket", "keyupdate", "data", "alert", "other"
	req  byte   // a KeyUpdate's request_update
	data string
}

// serverEvents decrypts the server's records the client read, with
// SERVER_TRAFFIC_SECRET_0 and the key updates it finds: the records before
// the first one it opens are the handshake's.
func (c *rawClient) serverEvents() []serverEvent {
	c.t.Helper()
	keys := newRecordKeys(c.t, c.suite, c.log.secret(c.t, "SERVER_TRAFFIC_SECRET_0"))
	in := c.nc.read()
	var evs []serverEvent
	started := false
	for len(in) >= 5 {
		n := int(in[3])<<8 | int(in[4])
		if len(in) < 5+n {
			break
		}
		rec := in[:5+n]
		in = in[5+n:]
		if rec[0] != recApplicationData {
			if started {
				c.t.Fatalf("the server sent a record of type %d after the handshake", rec[0])
			}
			continue
		}
		typ, content, err := keys.open(rec)
		if err != nil {
			if started {
				c.t.Fatalf("a record of the server's does not open: %v", err)
			}
			continue // the handshake keys'
		}
		started = true
		switch typ {
		case recApplicationData:
			evs = append(evs, serverEvent{kind: "data", data: string(content)})
		case recAlert:
			evs = append(evs, serverEvent{kind: "alert", data: string(content)})
		case recHandshake:
			update := false
			for len(content) >= 4 {
				l := int(content[1])<<16 | int(content[2])<<8 | int(content[3])
				if len(content) < 4+l {
					c.t.Fatalf("a handshake message of the server's spans records")
				}
				msg := content[:4+l]
				content = content[4+l:]
				switch msg[0] {
				case hsNewSessionTicket:
					evs = append(evs, serverEvent{kind: "ticket"})
				case hsKeyUpdate:
					if l != 1 {
						c.t.Fatalf("the server's KeyUpdate has length %d", l)
					}
					if len(content) > 0 {
						c.t.Fatalf("the server's KeyUpdate is not at the end of its record (RFC 8446, 5.1)")
					}
					evs = append(evs, serverEvent{kind: "keyupdate", req: msg[4]})
					update = true
				default:
					evs = append(evs, serverEvent{kind: "other", req: msg[0]})
				}
			}
			if update {
				keys.update()
			}
		default:
			evs = append(evs, serverEvent{kind: "other", req: typ})
		}
	}
	return evs
}

func keyUpdateMsg(req byte) []byte { return []byte{hsKeyUpdate, 0, 0, 1, req} }

// keyUpdate seals a KeyUpdate (request_update req, padding zero bytes)
// under the client's current key and moves the client to the next key.
func (c *rawClient) keyUpdate(req byte, padding int) []byte {
	rec := c.out.seal(recHandshake, keyUpdateMsg(req), padding)
	c.out.update()
	return rec
}

// acceptRaw dials a raw client and returns it with the server's handler
// for it.
func acceptRaw(t *testing.T, addr string, cfg *tls.Config, handlers chan *recordsEcho) (*rawClient, *recordsEcho) {
	t.Helper()
	c := dialRaw(t, addr, cfg)
	return c, waitFor(t, handlers, "accept")
}

// recordsEcho is an echo handler that reports its OnEOF and OnClose; with
// closeAfter it closes once it has echoed that many bytes.
type recordsEcho struct {
	c          Conn
	n          int
	closeAfter int
	eof        chan struct{}
	closed     chan error
}

func (h *recordsEcho) OnRead(in []byte) (int, int) {
	h.c.Write(in, 1<<30, false)
	h.n += len(in)
	if h.closeAfter > 0 && h.n >= h.closeAfter {
		h.c.Close()
	}
	return len(in), 0
}
func (h *recordsEcho) OnEOF()            { close(h.eof); h.c.Close() }
func (h *recordsEcho) OnDrain()          {}
func (h *recordsEcho) OnClose(err error) { h.closed <- err }

// recordsServer serves recordsEcho handlers, which it hands to the test in
// the order of the connections.
func recordsServer(t *testing.T, eng Engine, closeAfter int) (string, *tls.Config, chan *recordsEcho) {
	t.Helper()
	handlers := make(chan *recordsEcho, 100)
	addr, cfg := tlsServer(t, eng, func(c Conn, _ int) Handler {
		h := &recordsEcho{c: c, closeAfter: closeAfter, eof: make(chan struct{}), closed: make(chan error, 1)}
		handlers <- h
		return h
	})
	return addr, cfg, handlers
}

// echoBack writes msgs, each with one Write, while it reads them back; the
// stream read must be their concatenation.
func echoBack(t *testing.T, c *tls.Conn, msgs [][]byte) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	wrote := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if _, err := c.Write(m); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	want := bytes.Join(msgs, nil)
	got := make([]byte, len(want))
	n, err := io.ReadFull(c, got)
	if err != nil {
		t.Fatalf("read %d bytes of %d: %v", n, len(want), err)
	}
	if i := firstDiff(got, want); i >= 0 {
		t.Fatalf("the echo differs at byte %d of %d", i, len(want))
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

func pattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + seed*7 + i>>8)
	}
	return b
}

// goodClientEchoes checks that a well-behaved client is served.
func goodClientEchoes(t *testing.T, addr string, cfg *tls.Config, handlers chan *recordsEcho) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("a good client after a bad one: %v", err)
	}
	defer c.Close()
	waitFor(t, handlers, "the good client's accept")
	echoBack(t, c, [][]byte{[]byte("still serving")})
}

// dialTLSVersion dials with crypto/tls limited to TLS version vers and
// checks the server chose it.
func dialTLSVersion(t *testing.T, addr string, cfg *tls.Config, vers uint16) *tls.Conn {
	t.Helper()
	cfg = cfg.Clone()
	cfg.MinVersion, cfg.MaxVersion = vers, vers
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if v := c.ConnectionState().Version; v != vers {
		t.Fatalf("version %x, want %x", v, vers)
	}
	return c
}

// ---- the tests ----

// A crypto/tls 1.3 client's bytes come back in order whatever the sizes of
// its records: empty to 40 bytes, around the 16 KiB record limit, up to a
// MiB; a thousand one-byte records; fifty 3000-byte writes sent before
// anything is read.
func TestTLSRecordsEchoSizes(t *testing.T) {
	tlsEngines(t, func(t *testing.T, eng Engine) {
		addr, cfg, handlers := recordsServer(t, eng, 0)
		c := dialTLSVersion(t, addr, cfg, tls.VersionTLS13)
		h := waitFor(t, handlers, "accept")

		var msgs [][]byte
		for n := 0; n <= 40; n++ {
			msgs = append(msgs, pattern(n, n))
		}
		echoBack(t, c, msgs)
		for i, n := range []int{16383, 16384, 16385, 32768 + 7, 100000, 1 << 20} {
			echoBack(t, c, [][]byte{pattern(n, i)})
		}

		// A thousand records of a byte each.
		msgs = msgs[:0]
		for i := range 1000 {
			msgs = append(msgs, []byte{byte(i % 251)})
		}
		echoBack(t, c, msgs)

		// Pipelined: everything is written before anything is read.
		c.SetDeadline(time.Now().Add(10 * time.Second))
		var want []byte
		for i := range 50 {
			m := pattern(3000, i+100)
			want = append(want, m...)
			if _, err := c.Write(m); err != nil {
				t.Fatal(err)
			}
		}
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		if i := firstDiff(got, want); i >= 0 {
			t.Fatalf("the pipelined echo differs at byte %d", i)
		}

		// close_notify ends it cleanly.
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("read after close_notify: %d, %v, want io.EOF", n, err)
		}
		if err := waitFor(t, h.closed, "OnClose"); err != nil {
			t.Fatalf("OnClose(%v), want nil", err)
		}
	})
}

// A client's KeyUpdate (RFC 8446, 4.6.3): its records after it are under
// the next traffic secret, sequence numbers from 0. When it requests an
// update, the server sends a KeyUpdate of its own (update_not_requested)
// before its next application data, and switches its own key. The message
// may be split over records; an inner plaintext may be padded.
func TestTLSRecordsKeyUpdate(t *testing.T) {
	tlsEngines(t, func(t *testing.T, eng Engine) {
		addr, cfg, handlers := recordsServer(t, eng, 0)

		// checkServer checks the server's records after the handshake:
		// its tickets, then, per requested update, a KeyUpdate
		// (update_not_requested) before the data that answers it.
		checkServer := func(t *testing.T, c *rawClient, want []serverEvent) {
			t.Helper()
			var got []serverEvent
			for _, ev := range c.serverEvents() {
				if ev.kind != "ticket" {
					got = append(got, ev)
				}
			}
			// The server may split an echo over records: join them.
			var joined []serverEvent
			for _, ev := range got {
				if n := len(joined); n > 0 && ev.kind == "data" && joined[n-1].kind == "data" {
					joined[n-1].data += ev.data
					continue
				}
				joined = append(joined, ev)
			}
			if fmt.Sprint(joined) != fmt.Sprint(want) {
				t.Fatalf("the server's records after the handshake: %v, want %v", joined, want)
			}
		}

		t.Run("requested", func(t *testing.T) {
			c, _ := acceptRaw(t, addr, cfg, handlers)
			c.mustSend(c.data("before;"))
			c.expect("before;")
			ku := c.keyUpdate(1, 0)
			c.mustSend(ku, c.data("ping-after-update"))
			c.expect("ping-after-update")
			// Again, twice, each update in its own write.
			for _, s := range []string{"second", "third"} {
				c.mustSend(c.keyUpdate(1, 0))
				c.mustSend(c.data(s))
				c.expect(s)
			}
			checkServer(t, c, []serverEvent{
				{kind: "data", data: "before;"},
				{kind: "keyupdate", req: 0},
				{kind: "data", data: "ping-after-update"},
				{kind: "keyupdate", req: 0},
				{kind: "data", data: "second"},
				{kind: "keyupdate", req: 0},
				{kind: "data", data: "third"},
			})
		})

		t.Run("not requested", func(t *testing.T) {
			c, _ := acceptRaw(t, addr, cfg, handlers)
			ku := c.keyUpdate(0, 0)
			c.mustSend(ku, c.data("ping-after-update"))
			c.expect("ping-after-update")
			c.mustSend(c.data(";more"))
			c.expect(";more")
			for _, ev := range c.serverEvents() {
				if ev.kind == "keyupdate" && ev.req != 0 {
					t.Fatalf("the server requested an update: %v", ev)
				}
			}
		})

		t.Run("split over two records", func(t *testing.T) {
			c, _ := acceptRaw(t, addr, cfg, handlers)
			// halves seals a KeyUpdate as two records and moves to the
			// next key.
			halves := func() (first, second []byte) {
				msg := keyUpdateMsg(1)
				first = c.out.seal(recHandshake, msg[:2], 0)
				second = c.out.seal(recHandshake, msg[2:], 0)
				c.out.update()
				return first, second
			}
			// The halves in separate writes, then everything at once on
			// a second update.
			first, second := halves()
			c.mustSend(first)
			c.mustSend(second, c.data("ping-after-update"))
			c.expect("ping-after-update")
			first, second = halves()
			c.mustSend(first, second, c.data("again"))
			c.expect("again")
			checkServer(t, c, []serverEvent{
				{kind: "keyupdate", req: 0},
				{kind: "data", data: "ping-after-update"},
				{kind: "keyupdate", req: 0},
				{kind: "data", data: "again"},
			})
		})

		t.Run("padded", func(t *testing.T) {
			c, _ := acceptRaw(t, addr, cfg, handlers)
			ku := c.keyUpdate(1, 100)
			// Padding on the data too, to the largest inner plaintext
			// allowed (2^14 + 1 bytes).
			padded := c.out.seal(recApplicationData, []byte("ping-after-update"), 100)
			full := c.out.seal(recApplicationData, []byte("|"), 1<<14-1)
			c.mustSend(ku, padded, full)
			c.expect("ping-after-update|")
			checkServer(t, c, []serverEvent{
				{kind: "keyupdate", req: 0},
				{kind: "data", data: "ping-after-update|"},
			})
		})

		t.Run("while echoing", func(t *testing.T) {
			// The update comes while the server is sending a big echo:
			// its KeyUpdate goes among its records, at a record boundary
			// and before the echo of what followed the client's update.
			c, _ := acceptRaw(t, addr, cfg, handlers)
			before := pattern(200<<10, 1)
			var recs [][]byte
			for rest := before; len(rest) > 0; rest = rest[min(len(rest), 1<<14):] {
				recs = append(recs, c.out.seal(recApplicationData, rest[:min(len(rest), 1<<14)], 0))
			}
			recs = append(recs, c.keyUpdate(1, 0))
			recs = append(recs, c.data("after the update"))
			sent := make(chan error, 1)
			go func() { sent <- c.send(recs...) }()
			want := append(bytes.Clone(before), "after the update"...)
			c.tc.SetReadDeadline(time.Now().Add(recordIO))
			got := make([]byte, len(want))
			if n, err := io.ReadFull(c.tc, got); err != nil {
				t.Fatalf("read %d bytes of %d: %v", n, len(want), err)
			}
			if i := firstDiff(got, want); i >= 0 {
				t.Fatalf("the echo differs at byte %d", i)
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			var data []byte
			updateAt := -1
			for _, ev := range c.serverEvents() {
				switch ev.kind {
				case "data":
					data = append(data, ev.data...)
				case "keyupdate":
					if updateAt >= 0 || ev.req != 0 {
						t.Fatalf("a second KeyUpdate, or one that requests an update: %v", ev)
					}
					updateAt = len(data)
				case "ticket":
				default:
					t.Fatalf("the server sent %v", ev)
				}
			}
			if !bytes.Equal(data, want) {
				t.Fatalf("the server's records hold %d bytes, not the echo", len(data))
			}
			if updateAt < 0 || updateAt > len(before) {
				t.Fatalf("the server's KeyUpdate came after %d bytes of echo, want it before the echo of what followed the client's (%d)", updateAt, len(before))
			}
		})

		t.Run("empty application data records", func(t *testing.T) {
			// Zero-length application data may be sent (RFC 8446, 5.1).
			c, _ := acceptRaw(t, addr, cfg, handlers)
			c.mustSend(c.data(""), c.data(""), c.data("after two empty records"))
			c.expect("after two empty records")
		})
	})
}

// Records a TLS 1.3 server must refuse: the server closes that connection,
// sending the alert RFC 8446 prescribes where it prescribes one (5.2: a bad
// AEAD tag is bad_record_mac; a record or inner plaintext over its limit is
// record_overflow; 5.4: no content type is unexpected_message; 5.1: a
// handshake message interleaved with other records or not ending at a key
// change is unexpected_message), and goes on serving other clients.
func TestTLSRecordsBadRecords(t *testing.T) {
	const (
		badMAC     = "bad record MAC"
		overflow   = "record overflow"
		unexpected = "unexpected message"
	)
	cases := []struct {
		name    string
		records func(c *rawClient) [][]byte
		alerts  []string // one of these; none: any end of the connection
	}{
		{"flipped ciphertext bit", func(c *rawClient) [][]byte {
			r := c.data("this record was tampered with")
			r[5+3] ^= 0x10
			return [][]byte{r}
		}, []string{badMAC}},
		{"flipped tag bit", func(c *rawClient) [][]byte {
			r := c.data("this record was tampered with")
			r[len(r)-1] ^= 1
			return [][]byte{r}
		}, []string{badMAC}},
		{"ciphertext over 2^14+256", func(c *rawClient) [][]byte {
			const n = 1<<14 + 256 + 1
			r := append([]byte{recApplicationData, 3, 3, n >> 8, n & 0xff}, make([]byte, n)...)
			return [][]byte{r}
		}, []string{overflow}},
		{"inner plaintext over 2^14+1", func(c *rawClient) [][]byte {
			return [][]byte{c.out.seal(recApplicationData, make([]byte, 1<<14+1), 0)}
		}, []string{overflow}},
		{"inner plaintext over 2^14+1 by its padding", func(c *rawClient) [][]byte {
			return [][]byte{c.out.seal(recApplicationData, []byte("x"), 1<<14)}
		}, []string{overflow}},
		{"inner plaintext of zeros", func(c *rawClient) [][]byte {
			return [][]byte{c.out.sealInner(make([]byte, 10))}
		}, []string{unexpected}},
		{"unknown inner content type", func(c *rawClient) [][]byte {
			return [][]byte{c.out.seal(99, []byte("what"), 0)}
		}, []string{unexpected}},
		{"plaintext handshake record", func(c *rawClient) [][]byte {
			return [][]byte{append([]byte{recHandshake, 3, 3, 0, 5}, keyUpdateMsg(0)...)}
		}, []string{unexpected, badMAC}},
		{"unknown handshake message", func(c *rawClient) [][]byte {
			return [][]byte{c.out.seal(recHandshake, []byte{200, 0, 0, 2, 1, 2}, 0)}
		}, []string{unexpected}},
		{"post-handshake ClientHello", func(c *rawClient) [][]byte {
			// A truncated one: decode_error is an answer too.
			return [][]byte{c.out.seal(recHandshake, []byte{1, 0, 0, 2, 3, 3}, 0)}
		}, []string{unexpected, "error decoding message"}},
		{"KeyUpdate with request_update 2", func(c *rawClient) [][]byte {
			return [][]byte{c.out.seal(recHandshake, keyUpdateMsg(2), 0)}
		}, nil},
		{"KeyUpdate not at a record boundary", func(c *rawClient) [][]byte {
			return [][]byte{c.out.seal(recHandshake, append(keyUpdateMsg(0), hsKeyUpdate, 0), 0)}
		}, []string{unexpected}},
		{"handshake message interleaved with data", func(c *rawClient) [][]byte {
			msg := keyUpdateMsg(0)
			return [][]byte{c.out.seal(recHandshake, msg[:2], 0), c.data("in between"), c.out.seal(recHandshake, msg[2:], 0)}
		}, []string{unexpected}},
		{"empty handshake record", func(c *rawClient) [][]byte {
			// RFC 8446, 5.1: handshake records are never empty.
			return [][]byte{c.out.seal(recHandshake, nil, 0)}
		}, []string{unexpected, "error decoding message"}},
		{"record under a key not yet updated", func(c *rawClient) [][]byte {
			c.out.update()
			return [][]byte{c.data("too early")}
		}, []string{badMAC}},
		{"replayed sequence number", func(c *rawClient) [][]byte {
			c.out.seq--
			return [][]byte{c.data("replayed")}
		}, []string{badMAC}},
	}
	tlsEngines(t, func(t *testing.T, eng Engine) {
		addr, cfg, handlers := recordsServer(t, eng, 0)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c, h := acceptRaw(t, addr, cfg, handlers)
				c.mustSend(c.data("first"))
				c.expect("first")
				c.send(tc.records(c)...) // the server may close while it is written
				c.expectClosed(tc.name, tc.alerts...)
				if err := waitFor(t, h.closed, "OnClose"); err == nil {
					t.Errorf("OnClose(nil) after a bad record, want an error")
				}
				select {
				case <-h.eof:
					t.Errorf("OnEOF after a bad record")
				default:
				}
				goodClientEchoes(t, addr, cfg, handlers)
			})
		}

		// RFC 8446, 5: a change_cipher_spec record after the peer's
		// Finished must be treated as an unexpected record type. crypto/tls
		// ignores it (as it ignores those in the handshake), up to 16 in a
		// row: the test accepts either, but not a server that takes it as
		// data or stops answering.
		t.Run("change_cipher_spec after the handshake", func(t *testing.T) {
			c, h := acceptRaw(t, addr, cfg, handlers)
			c.mustSend(c.data("first"))
			c.expect("first")
			c.send([]byte{recChangeCipherSpec, 3, 3, 0, 1, 1}, c.data("after CCS"))
			c.tc.SetReadDeadline(time.Now().Add(recordIO))
			buf := make([]byte, len("after CCS"))
			n, err := io.ReadFull(c.tc, buf)
			switch {
			case err == nil && string(buf) == "after CCS":
				t.Log("the server ignored a change_cipher_spec record after the handshake (RFC 8446, 5: it must close with unexpected_message)")
			case err == nil:
				t.Fatalf("read %q after a change_cipher_spec record", buf)
			case n > 0 || !strings.Contains(err.Error(), unexpected):
				t.Fatalf("after a change_cipher_spec record: %q, %v; want the echo or an unexpected_message alert", buf[:n], err)
			default:
				waitFor(t, h.closed, "OnClose")
			}
			goodClientEchoes(t, addr, cfg, handlers)
		})
	})
}

// close_notify both ways (RFC 8446, 6.1): the client's makes the handler's
// OnEOF; the handler's Close sends the echo and then close_notify, which the
// client reads as io.EOF, not a truncation. An error alert from the client
// closes the connection, with an error and no OnEOF.
func TestTLSRecordsCloseNotify(t *testing.T) {
	tlsEngines(t, func(t *testing.T, eng Engine) {
		t.Run("client close_notify", func(t *testing.T) {
			addr, cfg, handlers := recordsServer(t, eng, 0)
			c, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			h := waitFor(t, handlers, "accept")
			c.SetDeadline(time.Now().Add(recordIO))
			if _, err := c.Write([]byte("bye")); err != nil {
				t.Fatal(err)
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, h.eof, "OnEOF after close_notify")
			got, err := io.ReadAll(c) // nil: it ended with io.EOF
			if err != nil || string(got) != "bye" {
				t.Fatalf("read %q, %v; want bye and io.EOF", got, err)
			}
			if err := waitFor(t, h.closed, "OnClose"); err != nil {
				t.Fatalf("OnClose(%v), want nil", err)
			}
		})

		t.Run("server close", func(t *testing.T) {
			const msg = "echoed, then closed"
			addr, cfg, handlers := recordsServer(t, eng, len(msg))
			for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
				cfg.MaxVersion = v
				c, err := tls.Dial("tcp", addr, cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				h := waitFor(t, handlers, "accept")
				c.SetDeadline(time.Now().Add(recordIO))
				if _, err := c.Write([]byte(msg)); err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(c)
				if err != nil || string(got) != msg {
					t.Fatalf("version %x: read %q, %v; want %q and io.EOF (a close_notify)", v, got, err, msg)
				}
				if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
					t.Fatalf("version %x: read again: %d, %v; want io.EOF", v, n, err)
				}
				if err := waitFor(t, h.closed, "OnClose"); err != nil {
					t.Fatalf("OnClose(%v), want nil", err)
				}
			}
		})

		t.Run("client error alert", func(t *testing.T) {
			addr, cfg, handlers := recordsServer(t, eng, 0)
			for _, desc := range []byte{40, 80} { // handshake_failure, internal_error
				c, h := acceptRaw(t, addr, cfg, handlers)
				c.mustSend(c.data("first"))
				c.expect("first")
				c.send(c.out.seal(recAlert, []byte{2, desc}, 0))
				c.expectClosed(fmt.Sprintf("alert %d", desc))
				if err := waitFor(t, h.closed, "OnClose"); err == nil {
					t.Errorf("alert %d: OnClose(nil), want an error", desc)
				}
				select {
				case <-h.eof:
					t.Errorf("alert %d: OnEOF after an error alert", desc)
				default:
				}
			}
			goodClientEchoes(t, addr, cfg, handlers)
		})

		t.Run("user_canceled then close_notify", func(t *testing.T) {
			// RFC 8446, 6.1: user_canceled should be followed by a
			// close_notify, which closes the connection cleanly.
			addr, cfg, handlers := recordsServer(t, eng, 0)
			c, h := acceptRaw(t, addr, cfg, handlers)
			c.mustSend(c.data("first"))
			c.expect("first")
			c.mustSend(c.out.seal(recAlert, []byte{1, 90}, 0), c.out.seal(recAlert, []byte{1, 0}, 0))
			if err := c.expectClosed("close_notify"); err != io.EOF {
				t.Fatalf("after close_notify the client read %v, want io.EOF", err)
			}
			select {
			case <-h.eof:
			default:
				t.Fatal("no OnEOF before the close")
			}
			if err := waitFor(t, h.closed, "OnClose"); err != nil {
				t.Fatalf("OnClose(%v), want nil", err)
			}
		})
	})
}

// A TLS 1.2 client (the engine's own record layer is only for TLS 1.3) is
// served as before.
func TestTLSRecordsTLS12(t *testing.T) {
	tlsEngines(t, func(t *testing.T, eng Engine) {
		addr, cfg, handlers := recordsServer(t, eng, 0)
		c := dialTLSVersion(t, addr, cfg, tls.VersionTLS12)
		h := waitFor(t, handlers, "accept")
		for i, n := range []int{0, 1, 16385, 100000} {
			echoBack(t, c, [][]byte{pattern(n, i)})
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, h.eof, "OnEOF after close_notify")
		if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("read after close_notify: %d, %v; want io.EOF", n, err)
		}
		if err := waitFor(t, h.closed, "OnClose"); err != nil {
			t.Fatalf("OnClose(%v), want nil", err)
		}
	})
}

// holdConn sends the first write (the ClientHello) and holds back the
// others (the client's second flight, ending with its Finished).
type holdConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
	held   []byte
}

func (c *holdConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	if c.writes == 1 {
		return c.Conn.Write(p)
	}
	c.held = append(c.held, p...)
	return len(p), nil
}

// The client's first application data comes in the same segment as its
// Finished: the server reads it after the handshake.
func TestTLSRecordsDataWithFinished(t *testing.T) {
	tlsEngines(t, func(t *testing.T, eng Engine) {
		addr, cfg, handlers := recordsServer(t, eng, 0)
		for _, big := range []bool{false, true} {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			hc := &holdConn{Conn: nc}
			log := &keyLog{}
			ccfg := cfg.Clone()
			ccfg.ServerName = "127.0.0.1"
			ccfg.MinVersion = tls.VersionTLS13
			ccfg.KeyLogWriter = log
			tc := tls.Client(hc, ccfg)
			tc.SetDeadline(time.Now().Add(recordIO))
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			suite := tc.ConnectionState().CipherSuite
			if suite != tls.TLS_AES_128_GCM_SHA256 && suite != tls.TLS_AES_256_GCM_SHA384 {
				t.Skipf("the server chose %s, not an AES-GCM suite", tls.CipherSuiteName(suite))
			}
			h := waitFor(t, handlers, "accept")
			keys := newRecordKeys(t, suite, log.secret(t, "CLIENT_TRAFFIC_SECRET_0"))
			hc.mu.Lock()
			held := hc.held
			hc.mu.Unlock()
			if len(held) == 0 {
				t.Fatal("the client's Finished was not held back")
			}
			want := []byte("first data, with the Finished;")
			if big {
				want = append(want, pattern(40000, 3)...)
			}
			seg := bytes.Clone(held)
			for rest := want; len(rest) > 0; {
				n := min(len(rest), 1<<14)
				seg = append(seg, keys.seal(recApplicationData, rest[:n], 0)...)
				rest = rest[n:]
			}
			seg = append(seg, keys.seal(recApplicationData, []byte("second record"), 0)...)
			want = append(want, "second record"...)
			if _, err := nc.Write(seg); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(want))
			if n, err := io.ReadFull(tc, got); err != nil {
				t.Fatalf("read %d bytes of %d: %v", n, len(want), err)
			}
			if i := firstDiff(got, want); i >= 0 {
				t.Fatalf("the echo differs at byte %d", i)
			}
			// close_notify, sealed by the test (the tls.Conn's sequence
			// numbers were used by the test's records).
			if _, err := nc.Write(keys.seal(recAlert, []byte{1, 0}, 0)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, h.eof, "OnEOF")
			if err := waitFor(t, h.closed, "OnClose"); err != nil {
				t.Fatalf("OnClose(%v), want nil", err)
			}
		}
	})
}

// A dialed TLS 1.3 connection whose config keeps no session tickets (no
// ClientSessionCache) takes the record layer over too: it drops the
// server's tickets, reads the greeting that came with them, echoes
// messages of every size across records in order and hears the server's
// close_notify as the end of the stream. With a session cache, or over
// TLS 1.2, it keeps crypto/tls's.
func TestTLSRecordsDial(t *testing.T) {
	sizes := []int{1, 100, 16384, 16385, 100000}
	total := 0
	for _, n := range sizes {
		total += n
	}
	addr, pool := serveTLS(t, func(c net.Conn) {
		c.Write([]byte("greeting;"))
		io.CopyN(c, c, int64(total))
	})
	tlsEngines(t, func(t *testing.T, eng Engine) {
		for _, tc := range []struct {
			name  string
			cfg   *tls.Config
			taken bool
		}{
			{"cacheless", &tls.Config{}, true},
			{"session cache", &tls.Config{ClientSessionCache: tls.NewLRUClientSessionCache(2)}, false},
			{"TLS 1.2", &tls.Config{MaxVersion: tls.VersionTLS12}, false},
		} {
			cfg := tc.cfg
			cfg.RootCAs, cfg.ServerName = pool, "127.0.0.1"
			dc := eng.Dial(DialRequest{Network: "tcp", Address: addr, Timeout: 5 * time.Second, TLS: cfg})
			h := &collector{in: make(chan []byte, 1000), eof: make(chan struct{}, 1), closed: make(chan error, 1)}
			up := make(chan error, 1)
			dc.Start(h, func(err error) { up <- err })
			if err := waitFor(t, up, "dial"); err != nil {
				t.Fatal(err)
			}
			if c, ok := dc.(*tlsConn); ok {
				if taken := c.rec != nil; taken != tc.taken {
					t.Fatalf("%s: the engine's record layer took over: %v, want %v", tc.name, taken, tc.taken)
				}
			}
			var want []byte
			want = append(want, "greeting;"...)
			for i, n := range sizes {
				p := bytes.Repeat([]byte{byte('a' + i)}, n)
				want = append(want, p...)
				dc.Write(p, 1<<30, false)
			}
			var got []byte
			for len(got) < len(want) {
				got = append(got, waitFor(t, h.in, "echo")...)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: echo differs at byte %d of %d", tc.name, firstDiff(got, want), len(want))
			}
			waitFor(t, h.eof, "OnEOF at the server's close")
			dc.Close()
			waitFor(t, h.closed, "OnClose") // the server is gone: our close_notify may meet a reset
		}
	})
}

// A dialed connection that took the record layer over gets what a TLS 1.3
// server may send after the handshake: a session ticket split across two
// records (dropped), data, and a KeyUpdate that requests one back. It
// echoes the data; the server's crypto/tls reads the echo of what came
// after the update only if the client answered with its own KeyUpdate and
// derived its new key as crypto/tls does. A malformed ticket gets a
// decode_error alert and closes the connection, as crypto/tls's does.
func TestTLSRecordsDialPostHandshake(t *testing.T) {
	cert, pool := testcert.Pair(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	tlsEngines(t, func(t *testing.T, eng Engine) {
		for _, malformed := range []bool{false, true} {
			served := make(chan error, 1)
			go func() {
				served <- func() error {
					nc, err := ln.Accept()
					if err != nil {
						return err
					}
					defer nc.Close()
					log := &keyLog{}
					sc := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{cert}, SessionTicketsDisabled: true, KeyLogWriter: log})
					sc.SetDeadline(time.Now().Add(recordIO))
					if err := sc.Handshake(); err != nil {
						return err
					}
					suite := sc.ConnectionState().CipherSuite
					if suite != tls.TLS_AES_128_GCM_SHA256 && suite != tls.TLS_AES_256_GCM_SHA384 {
						return fmt.Errorf("suite %s: %w", tls.CipherSuiteName(suite), errSkip)
					}
					out := newRecordKeys(t, suite, log.secret(t, "SERVER_TRAFFIC_SECRET_0"))
					// lifetime, age_add, a 4-byte nonce, a 280-byte ticket, an
					// early_data extension: 300 bytes in all.
					body := []byte{0, 0, 0, 60, 1, 2, 3, 4, 4, 9, 9, 9, 9, 1, 24}
					body = append(body, pattern(280, 7)...)
					body = append(body, 0, 8, 0, 42, 0, 4, 0, 0, 64, 0)
					if malformed {
						body[8] = 200 // a nonce longer than the message
					}
					ticket := append([]byte{hsNewSessionTicket, 0, byte(len(body) >> 8), byte(len(body))}, body...)
					var recs []byte
					recs = append(recs, out.seal(recHandshake, ticket[:100], 0)...)
					recs = append(recs, out.seal(recHandshake, ticket[100:], 0)...)
					recs = append(recs, out.seal(recApplicationData, []byte("one;"), 0)...)
					recs = append(recs, out.seal(recHandshake, keyUpdateMsg(1), 0)...)
					out.update()
					recs = append(recs, out.seal(recApplicationData, []byte("two;"), 0)...)
					if _, err := nc.Write(recs); err != nil {
						return err
					}
					got := make([]byte, len("one;two;"))
					_, err = io.ReadFull(sc, got)
					if malformed {
						if err == nil || !strings.Contains(err.Error(), "error decoding message") {
							return fmt.Errorf("after a malformed ticket the client answered %q, %v; want a decode_error alert", got, err)
						}
						return nil
					}
					if err != nil {
						return fmt.Errorf("reading the echo: %w", err)
					}
					if string(got) != "one;two;" {
						return fmt.Errorf("echo %q, want %q", got, "one;two;")
					}
					return nil
				}()
			}()
			cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
			dc := eng.Dial(DialRequest{Network: "tcp", Address: ln.Addr().String(), Timeout: 5 * time.Second, TLS: cfg})
			closed := make(chan error, 1)
			up := make(chan error, 1)
			dc.Start(&echoHandler{c: dc, closed: closed}, func(err error) { up <- err })
			if err := waitFor(t, up, "dial"); err != nil {
				t.Fatal(err)
			}
			if err := waitFor(t, served, "the server"); errors.Is(err, errSkip) {
				t.Skip(err)
			} else if err != nil {
				t.Fatal(err)
			}
			if malformed {
				// The client closes on its own, with the error.
				if err := waitFor(t, closed, "OnClose after a malformed ticket"); err == nil {
					t.Fatal("a malformed ticket: OnClose(nil), want the error")
				}
				continue
			}
			dc.Close()
			waitFor(t, closed, "OnClose")
		}
	})
}

var errSkip = errors.New("skipped")
