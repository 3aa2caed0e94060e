package http1

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/workerman-go/workerman/internal/proto"
	"github.com/workerman-go/workerman/protocol"
)

// fileStream sends a file as the client reads it, Workerman-style: a piece
// at a time while the send buffer has room, the rest on each drain. It is
// touched only under the connection's send lock.
type fileStream struct {
	f         *os.File
	remaining int64
	keepAlive bool
	after     []deferred // sent meanwhile, in order
}

type deferred struct {
	m  protocol.Message
	st answer
}

const fileChunk = 64 << 10

// startFile answers with a file (caller holds the send lock).
func (c *Codec) startFile(conn proto.Conn, r *protocol.Response) error {
	st := c.state()
	f, err := os.Open(r.File)
	var info os.FileInfo
	if err == nil {
		info, err = f.Stat()
		if err == nil && info.IsDir() {
			err = os.ErrNotExist
		}
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		status := http.StatusNotFound
		if !errors.Is(err, os.ErrNotExist) {
			status = http.StatusForbidden
		}
		return c.sendComplete(conn, protocol.NewResponse(status, []byte(http.StatusText(status))))
	}
	size := info.Size()
	resp := &protocol.Response{Status: http.StatusOK, Header: r.Header.Clone()}
	if resp.Header == nil {
		resp.Header = http.Header{}
	}
	if resp.Header.Get("Content-Type") == "" {
		ct := mime.TypeByExtension(filepath.Ext(r.File))
		if ct == "" {
			ct = "application/octet-stream"
		}
		resp.Header.Set("Content-Type", ct)
	}
	resp.Header.Set("Accept-Ranges", "bytes")
	resp.Header.Set("Last-Modified", info.ModTime().UTC().Format(http.TimeFormat))
	start, length := int64(0), size
	if rg := st.rangeHdr; rg != "" {
		s, l, ok := parseRange(rg, size)
		if !ok {
			f.Close()
			bad := protocol.NewResponse(http.StatusRequestedRangeNotSatisfiable, nil)
			bad.Header.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			return c.sendComplete(conn, bad)
		}
		start, length = s, l
		resp.Status = http.StatusPartialContent
		resp.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", s, s+l-1, size))
	}
	if err := conn.Write(appendResponseHead(nil, st, resp, length), false); err != nil {
		f.Close()
		return err
	}
	if st.head || length == 0 {
		f.Close()
		if !st.keepAlive {
			conn.Close(nil)
		}
		return nil
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		f.Close()
		conn.Close(nil)
		return err
	}
	c.stream.Store(&fileStream{f: f, remaining: length, keepAlive: st.keepAlive})
	c.pump(conn)
	return nil
}

func (c *Codec) sendComplete(conn proto.Conn, r *protocol.Response) error {
	if err := proto.WriteEncoded(conn, c, conn, protocol.Message{Value: r}, false); err != nil {
		return err
	}
	if !c.state().keepAlive {
		conn.Close(nil)
	}
	return nil
}

// pump sends file data while the send buffer has room; Drained calls it
// again (caller holds the send lock).
func (c *Codec) pump(conn proto.Conn) {
	s := c.stream.Load()
	if s == nil {
		return
	}
	limit := conn.MaxSendBufferSize()
	buf := make([]byte, fileChunk)
	for s.remaining > 0 && conn.Queued() < limit && !conn.Closing() {
		n, err := s.f.Read(buf[:min(int64(len(buf)), s.remaining)])
		if n > 0 {
			if werr := conn.Write(buf[:n], false); werr != nil {
				s.remaining = 0
				break
			}
			s.remaining -= int64(n)
		}
		if err != nil {
			// The file shrank under us: the promised length cannot be
			// met, so the connection cannot be reused.
			s.remaining = 0
			s.keepAlive = false
			break
		}
	}
	if s.remaining > 0 && !conn.Closing() {
		return // continues on drain
	}
	s.f.Close()
	c.stream.Store(nil)
	if !s.keepAlive {
		conn.Close(nil)
		return
	}
	// Answer what was sent meanwhile, in order; another file may start.
	now := c.st.Load()
	defer c.st.Store(now)
	for i, d := range s.after {
		if next := c.stream.Load(); next != nil {
			next.after = append(next.after, s.after[i:]...)
			return
		}
		c.st.Store(&d.st)
		c.Send(conn, d.m, false)
	}
}

// parseRange reads a single "bytes=a-b" range (RFC 9110 section 14.1.2).
func parseRange(h string, size int64) (start, length int64, ok bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	a, b, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false
	}
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	switch {
	case a == "":
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false
		}
		n = min(n, size)
		return size - n, n, size > 0
	default:
		s, err := strconv.ParseInt(a, 10, 64)
		if err != nil || s < 0 || s >= size {
			return 0, 0, false
		}
		e := size - 1
		if b != "" {
			if e, err = strconv.ParseInt(b, 10, 64); err != nil || e < s {
				return 0, 0, false
			}
			e = min(e, size-1)
		}
		return s, e - s + 1, true
	}
}
