//go:build linux

package engine

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/fips140"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"reflect"
	"unsafe"
)

// # The engine's own TLS 1.3 record layer
//
// An idle wss:// connection was mostly crypto/tls's state: its tls.Conn
// alone is 896 bytes, beside the two ciphers that matter. After a server's
// TLS 1.3 handshake with an AES-GCM suite (the suites of every browser on
// hardware with AES instructions), the engine keeps only what the record
// layer needs (RFC 8446, section 5): each direction's AEAD, sequence number
// and traffic secret, taken from the tls.Conn, which is then dropped. It
// reads the records straight from the loop's bytes, decrypting them in
// place (no copy to a record buffer), and seals the owner's writes.
//
// After the handshake a TLS 1.3 server receives application data, alerts
// and one handshake message, KeyUpdate (section 4.6.3): it answers a
// request for one with its own and derives the next keys (section 7.2). A
// client also gets the server's session tickets (section 4.6.1), which it
// drops: it takes over only when it has no session cache to keep them in.
// Anything else gets the alert the RFC names and ends the connection.
//
// Everything else keeps crypto/tls's record layer: clients with a session
// cache, TLS 1.2, ChaCha20-Poly1305 (the
// standard library has no public implementation of it), FIPS 140-only
// mode, and any tls.Conn
// whose fields are not where this file expects them (see tlsRecordFields:
// a Go release that renames them only costs memory, and
// TestTLSRecordLayerTakesOver says so).

// tlsRecords is a connection's record layer once the engine took it over.
// in is loop-owned, out is guarded by the tlsConn's wmu.
type tlsRecords struct {
	in, out tlsHalf
	suite   uint16
	useless uint16 // records in a row that carried no application data
	client  bool
	hand    *[]byte // a handshake message split across records (rare)
}

// maxUselessRecords bounds the records in a row that carry no application
// data (empty ones, key updates), as crypto/tls does: each costs work and
// moves nothing.
const maxUselessRecords = 16

// advance counts a record without application data, failing the
// connection after too many in a row.
func (r *tlsRecords) advance(t *tlsConn) bool {
	r.useless++
	if r.useless > maxUselessRecords {
		t.fail(alertUnexpected, "too many records without application data")
		return false
	}
	return true
}

// tlsHalf is one direction's protection. aead takes the sequence number's
// 8 bytes as its nonce and applies the traffic iv itself (crypto/tls's own
// construction, which keys derived here copy).
type tlsHalf struct {
	aead   cipher.AEAD
	seq    uint64
	secret []byte
}

// Record layer constants (RFC 8446, section 5).
const (
	recordHeaderLen        = 5
	maxPlaintext           = 1 << 14
	maxCiphertext13        = maxPlaintext + 256
	recordTypeAlert        = 21
	recordTypeHS           = 22
	recordTypeData         = 23
	hsTypeKeyUpdate        = 24
	hsTypeNewSessionTicket = 4
	alertCloseNotify       = 0
	alertUnexpected        = 10
	alertBadRecordMAC      = 20
	alertOverflow          = 22
	alertDecodeError       = 50
	alertIllegalParam      = 47
	alertInternal          = 80
	alertUserCanceled      = 90
)

// tlsRecordFields are the offsets of what the engine takes from a tls.Conn
// and its halfConns (found by name and type through reflection).
var tlsRecordFields = func() (f struct {
	vers, suite, isClient, in, out   uintptr
	hcErr, hcCipher, hcSeq, hcSecret uintptr
	ok                               bool
},
) {
	ct := reflect.TypeFor[tls.Conn]()
	field := func(t reflect.Type, name string, want reflect.Type) (uintptr, bool) {
		sf, ok := t.FieldByName(name)
		if !ok || (want != nil && sf.Type != want) {
			return 0, false
		}
		return sf.Offset, true
	}
	in, ok1 := ct.FieldByName("in")
	out, ok2 := ct.FieldByName("out")
	if !ok1 || !ok2 || in.Type != out.Type || in.Type.Kind() != reflect.Struct {
		return f
	}
	hc := in.Type
	f.in, f.out = in.Offset, out.Offset
	var oks [7]bool
	f.vers, oks[0] = field(ct, "vers", reflect.TypeFor[uint16]())
	f.suite, oks[1] = field(ct, "cipherSuite", reflect.TypeFor[uint16]())
	f.isClient, oks[2] = field(ct, "isClient", reflect.TypeFor[bool]())
	f.hcErr, oks[3] = field(hc, "err", reflect.TypeFor[error]())
	f.hcCipher, oks[4] = field(hc, "cipher", reflect.TypeFor[any]())
	f.hcSeq, oks[5] = field(hc, "seq", reflect.TypeFor[[8]byte]())
	f.hcSecret, oks[6] = field(hc, "trafficSecret", reflect.TypeFor[[]byte]())
	f.ok = tlsBuffersFound
	for _, ok := range oks {
		f.ok = f.ok && ok
	}
	return f
}()

// takeTLSRecords takes tc's record layer over after its handshake (the
// handshake's goroutine, before the loop reads again), when it is a TLS 1.3
// connection with an AES-GCM suite, a server's or a client's that keeps no
// session tickets (cacheless: its tls.Config has no ClientSessionCache),
// and nothing waits in its buffers but whole or partial records. It
// returns the records crypto/tls read but did not open (they came with the
// peer's last flight), to be read first. ok false: tc keeps its record
// layer.
func takeTLSRecords(tc *tls.Conn, cacheless bool) (r *tlsRecords, pending []byte, ok bool) {
	f := &tlsRecordFields
	if !f.ok || fips140.Enforced() {
		// In FIPS 140-only mode GCM with the nonces a key update needs
		// is refused outside crypto/tls: it keeps its record layer.
		return nil, nil, false
	}
	p := unsafe.Pointer(tc)
	vers := *(*uint16)(unsafe.Add(p, f.vers))
	suite := *(*uint16)(unsafe.Add(p, f.suite))
	client := *(*bool)(unsafe.Add(p, f.isClient))
	if vers != tls.VersionTLS13 || client && !cacheless {
		return nil, nil, false
	}
	if suite != tls.TLS_AES_128_GCM_SHA256 && suite != tls.TLS_AES_256_GCM_SHA384 {
		return nil, nil, false
	}
	raw, input, hand := tlsBuffers(tc)
	if input.Len() != 0 || hand.Len() != 0 {
		return nil, nil, false
	}
	half := func(off uintptr) (tlsHalf, bool) {
		hp := unsafe.Add(p, off)
		if *(*error)(unsafe.Add(hp, f.hcErr)) != nil {
			return tlsHalf{}, false
		}
		aead, ok := (*(*any)(unsafe.Add(hp, f.hcCipher))).(cipher.AEAD)
		secret := *(*[]byte)(unsafe.Add(hp, f.hcSecret))
		if !ok || aead.NonceSize() != 8 || len(secret) == 0 {
			return tlsHalf{}, false
		}
		seq := *(*[8]byte)(unsafe.Add(hp, f.hcSeq))
		return tlsHalf{aead: aead, seq: binary.BigEndian.Uint64(seq[:]), secret: secret}, true
	}
	in, ok1 := half(f.in)
	out, ok2 := half(f.out)
	if !ok1 || !ok2 {
		return nil, nil, false
	}
	if raw.Len() > 0 {
		pending = raw.Bytes()
	}
	return &tlsRecords{in: in, out: out, suite: suite, client: client}, pending, true
}

// suiteHash is the suite's hash: SHA-256, or SHA-384 for AES-256-GCM.
func (r *tlsRecords) suiteHash() (func() hash.Hash, int) {
	if r.suite == tls.TLS_AES_256_GCM_SHA384 {
		return sha512.New384, 32
	}
	return sha256.New, 16
}

// expandLabel is HKDF-Expand-Label (RFC 8446, section 7.1) with an empty
// context.
func expandLabel(h func() hash.Hash, secret []byte, label string, n int) []byte {
	info := make([]byte, 0, 4+6+len(label))
	info = binary.BigEndian.AppendUint16(info, uint16(n))
	info = append(info, byte(6+len(label)))
	info = append(info, "tls13 "...)
	info = append(info, label...)
	info = append(info, 0) // context
	out, err := hkdf.Expand(h, secret, string(info), n)
	if err != nil {
		panic("workerman: TLS: HKDF-Expand-Label: " + err.Error())
	}
	return out
}

// next derives a half's keys after a KeyUpdate (RFC 8446, section 7.2).
func (r *tlsRecords) next(hf *tlsHalf) error {
	h, keyLen := r.suiteHash()
	secret := expandLabel(h, hf.secret, "traffic upd", h().Size())
	key := expandLabel(h, secret, "key", keyLen)
	iv := expandLabel(h, secret, "iv", 12)
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return err // a FIPS 140-only mode, say
	}
	x := &xorNonce{aead: gcm}
	copy(x.iv[:], iv)
	*hf = tlsHalf{aead: x, secret: secret}
	return nil
}

// xorNonce is an AEAD keyed after a KeyUpdate: its nonce is the record's
// sequence number, XORed into the traffic iv (RFC 8446, section 5.3).
type xorNonce struct {
	iv   [12]byte
	aead cipher.AEAD
}

func (x *xorNonce) NonceSize() int { return 8 }
func (x *xorNonce) Overhead() int  { return x.aead.Overhead() }

func (x *xorNonce) nonce(seq []byte) [12]byte {
	n := x.iv
	for i, b := range seq {
		n[4+i] ^= b
	}
	return n
}

func (x *xorNonce) Seal(dst, seq, plaintext, ad []byte) []byte {
	n := x.nonce(seq)
	return x.aead.Seal(dst, n[:], plaintext, ad)
}

func (x *xorNonce) Open(dst, seq, ciphertext, ad []byte) ([]byte, error) {
	n := x.nonce(seq)
	return x.aead.Open(dst, n[:], ciphertext, ad)
}

// tlsAlert is a fatal alert the engine sends, and the error the connection
// ends with.
type tlsAlert struct {
	desc byte
	why  string
}

func (a *tlsAlert) Error() string { return "workerman: TLS: " + a.why }

// errTLSTruncated ends a connection whose peer closed the socket in the
// middle of a record.
var errTLSTruncated = fmt.Errorf("workerman: TLS: %w", io.ErrUnexpectedEOF)

// ---- reading (loop goroutine) ----

// onRecords is OnRead with the engine's record layer; in is nil when
// reading resumes. The records crypto/tls read but did not open (t.left)
// come before the loop's bytes.
func (t *tlsConn) onRecords(in []byte) (int, int) {
	n, need := len(in), 0
	if t.left == nil {
		if len(in) > 0 {
			n, need = t.readRecords(in)
			t.partial = need > 0
		}
	} else {
		b := appendPooled(t.left, in)
		t.left = nil
		m, nd := t.readRecords(*b)
		t.partial = nd > 0
		rest := (*b)[m:]
		switch {
		case len(rest) == 0 || t.fd.state.Load() != stOpen || t.eof:
			bufferPut(b)
		case len(rest) <= len(in):
			// The rest is in's tail, not opened: the fdConn keeps it, as
			// any incomplete record, and reading is zero-copy again.
			bufferPut(b)
			n, need = len(in)-len(rest), nd
		default:
			nb := bufferGet(len(rest))
			copy(*nb, rest)
			bufferPut(b)
			t.left = nb
		}
	}
	if t.endOfRecords() {
		t.deliverEOF()
	}
	return n, need
}

// endOfRecords turns the peer's FIN into the end of the stream once the
// records before it were read: EOF at a record boundary, errTLSTruncated
// inside one. It reports whether the connection goes on.
func (t *tlsConn) endOfRecords() bool {
	if !t.rawEOF || t.eof || t.fd.paused.Load() != 0 || t.fd.state.Load() != stOpen {
		return true
	}
	if t.partial || t.left != nil {
		t.fd.Destroy(errTLSTruncated)
		return false
	}
	t.eof = true
	return true
}

// readRecords opens the records in data and hands their contents over
// until the owner pauses, the connection closes, the peer ends its stream
// or a record is incomplete. It returns what it consumed and, for an
// incomplete record, the bytes the whole record needs. Records are opened
// in place: data is the loop's buffer or the fdConn's, both consumed here.
func (t *tlsConn) readRecords(data []byte) (consumed, need int) {
	r := t.rec
	if t.eof {
		return len(data), 0 // RFC 8446, 6.1: what follows close_notify is ignored
	}
	off := 0
	for !t.eof && t.fd.paused.Load() == 0 && t.fd.state.Load() == stOpen {
		rest := data[off:]
		if len(rest) < recordHeaderLen {
			if len(rest) > 0 {
				need = recordHeaderLen
			}
			break
		}
		n := int(binary.BigEndian.Uint16(rest[3:5]))
		if n > maxCiphertext13 {
			t.fail(alertOverflow, "record too long")
			return len(data), 0
		}
		if rest[0] != recordTypeData {
			// Alerts and handshake messages are encrypted after the
			// handshake; a change_cipher_spec is only allowed before it.
			t.fail(alertUnexpected, fmt.Sprintf("unexpected record type %d after the handshake", rest[0]))
			return len(data), 0
		}
		if len(rest) < recordHeaderLen+n {
			need = recordHeaderLen + n
			break
		}
		rec := rest[:recordHeaderLen+n]
		off += len(rec)
		var seq [8]byte
		binary.BigEndian.PutUint64(seq[:], r.in.seq)
		plain, err := r.in.aead.Open(rec[recordHeaderLen:recordHeaderLen], seq[:], rec[recordHeaderLen:], rec[:recordHeaderLen])
		if err != nil {
			t.fail(alertBadRecordMAC, "bad record MAC")
			return len(data), 0
		}
		r.in.seq++
		if len(plain) > maxPlaintext+1 {
			t.fail(alertOverflow, "record too long")
			return len(data), 0
		}
		i := len(plain) - 1
		for i >= 0 && plain[i] == 0 {
			i--
		}
		if i < 0 {
			t.fail(alertUnexpected, "record with no content type")
			return len(data), 0
		}
		typ := plain[i]
		plain = plain[:i]
		if r.hand != nil && typ != recordTypeHS {
			t.fail(alertUnexpected, "handshake message interleaved with another record type")
			return len(data), 0
		}
		switch typ {
		case recordTypeData:
			if len(plain) == 0 {
				if !r.advance(t) {
					return len(data), 0
				}
				continue
			}
			r.useless = 0
			if t.in != nil {
				t.in = appendPooled(t.in, plain)
				t.deliver(*t.in, false)
			} else {
				t.deliver(plain, true)
			}
		case recordTypeAlert:
			if len(plain) != 2 {
				t.fail(alertUnexpected, "malformed alert")
				return len(data), 0
			}
			switch plain[1] {
			case alertCloseNotify:
				t.eof = true // what follows is ignored
				return len(data), 0
			case alertUserCanceled:
				// A closure alert, not an error: a close_notify
				// follows (RFC 8446, section 6.1).
				if !r.advance(t) {
					return len(data), 0
				}
				continue
			}
			t.fd.Destroy(fmt.Errorf("workerman: TLS: remote error: alert %d", plain[1]))
			return len(data), 0
		case recordTypeHS:
			if len(plain) == 0 {
				// RFC 8446, section 5.1: no zero-length handshake fragments.
				t.fail(alertUnexpected, "empty handshake record")
				return len(data), 0
			}
			if !r.advance(t) || !t.readHandshakeMsgs(plain) {
				return len(data), 0
			}
		default:
			t.fail(alertUnexpected, fmt.Sprintf("unexpected record content type %d", typ))
			return len(data), 0
		}
	}
	return off, need
}

// readHandshakeMsgs handles post-handshake messages: KeyUpdate, and on a
// client NewSessionTicket (dropped: the client has no session cache). It
// reports whether the connection goes on.
func (t *tlsConn) readHandshakeMsgs(p []byte) bool {
	r := t.rec
	if r.hand != nil {
		p = append(*r.hand, p...)
		r.hand = nil
	}
	for len(p) > 0 {
		typ := p[0]
		if typ != hsTypeKeyUpdate && (typ != hsTypeNewSessionTicket || !r.client) {
			t.fail(alertUnexpected, fmt.Sprintf("unexpected handshake message %d after the handshake", typ))
			return false
		}
		if len(p) < 4 {
			r.keepHand(p) // split across records
			return true
		}
		n := int(p[1])<<16 | int(p[2])<<8 | int(p[3])
		if typ == hsTypeKeyUpdate && n != 1 || n > maxPostHandshakeMsg {
			t.fail(alertDecodeError, fmt.Sprintf("malformed handshake message %d after the handshake", typ))
			return false
		}
		if len(p) < 4+n {
			r.keepHand(p)
			return true
		}
		body := p[4 : 4+n]
		p = p[4+n:]
		if typ == hsTypeNewSessionTicket {
			if !validTicket(body) {
				t.fail(alertDecodeError, "malformed NewSessionTicket")
				return false
			}
			continue
		}
		req := body[0]
		if req > 1 {
			t.fail(alertIllegalParam, "KeyUpdate with an illegal request_update")
			return false
		}
		if len(p) > 0 {
			// A key change must end its record (RFC 8446, section 5.1).
			t.fail(alertUnexpected, "KeyUpdate not at the end of its record")
			return false
		}
		var err error
		if req == 1 {
			// Answered with the current keys, then ours change.
			t.wmu.Lock()
			if t.state.Load() == tlsReady {
				t.sealLocked(recordTypeHS, []byte{hsTypeKeyUpdate, 0, 0, 1, 0})
				err = r.next(&r.out)
			}
			t.wmu.Unlock()
		}
		if err == nil {
			err = r.next(&r.in)
		}
		if err != nil {
			t.fail(alertInternal, "KeyUpdate: "+err.Error())
			return false
		}
	}
	return true
}

// validTicket checks the framing of a NewSessionTicket's body (RFC 8446,
// section 4.6.1): lifetime, age_add, ticket_nonce<0..255>,
// ticket<1..2^16-1>, extensions<0..2^16-2>, each extension's type and
// length.
func validTicket(b []byte) bool {
	if len(b) < 9 {
		return false
	}
	b = b[8:]
	n := int(b[0])
	b = b[1:]
	if len(b) < n+2 {
		return false
	}
	b = b[n:]
	n = int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if n == 0 || len(b) < n+2 {
		return false
	}
	b = b[n:]
	n = int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) != n {
		return false
	}
	for len(b) > 0 {
		if len(b) < 4 {
			return false
		}
		n = int(binary.BigEndian.Uint16(b[2:]))
		if len(b) < 4+n {
			return false
		}
		b = b[4+n:]
	}
	return true
}

// maxPostHandshakeMsg bounds a post-handshake message's body, as crypto/tls
// bounds handshake messages.
const maxPostHandshakeMsg = 64 << 10

// keepHand keeps the start of a handshake message the next record goes on
// with.
func (r *tlsRecords) keepHand(p []byte) {
	b := append(make([]byte, 0, max(len(p), 8)), p...)
	r.hand = &b
}

// fail sends a fatal alert and destroys the connection (loop goroutine).
func (t *tlsConn) fail(desc byte, why string) {
	t.wmu.Lock()
	if t.state.CompareAndSwap(tlsReady, tlsFailed) {
		t.sealLocked(recordTypeAlert, []byte{2, desc})
	}
	t.wmu.Unlock()
	t.fd.Destroy(&tlsAlert{desc: desc, why: why})
}

// ---- writing (wmu held) ----

// sealLocked writes p as records of type typ, in one write to the socket.
func (t *tlsConn) sealLocked(typ byte, p []byte) error {
	r := t.rec
	over := 1 + r.out.aead.Overhead()
	n := max(1, (len(p)+maxPlaintext-1)/maxPlaintext)
	b := bufferGet(len(p) + n*(recordHeaderLen+over))
	out := (*b)[:0]
	var seq [8]byte
	for first := true; first || len(p) > 0; first = false {
		chunk := p[:min(len(p), maxPlaintext)]
		p = p[len(chunk):]
		start := len(out)
		out = append(out, recordTypeData, 3, 3, 0, 0)
		binary.BigEndian.PutUint16(out[start+3:], uint16(len(chunk)+over))
		body := len(out)
		out = append(out, chunk...)
		out = append(out, typ)
		binary.BigEndian.PutUint64(seq[:], r.out.seq)
		r.out.seq++
		out = r.out.aead.Seal(out[:body], seq[:], out[body:], out[start:body])
	}
	*b = out
	_, err := t.fd.Write(out, 0, false)
	bufferPut(b)
	return err
}
