package protocol

import (
	"bytes"
	"fmt"
)

// Text is Workerman's Text protocol (text://): every message ends with "\n".
// Decode strips the trailing "\r" and "\n" bytes (PHP's rtrim($buf, "\r\n")),
// Encode appends "\n". A line longer than MaxPackageSize closes the
// connection.
type Text struct{}

// Input returns the length up to and including the first "\n".
func (Text) Input(c Conn, buf []byte) (int, error) {
	max := c.MaxPackageSize()
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		if len(buf) >= max {
			return 0, fmt.Errorf("%w: line longer than %d bytes", ErrPackageTooLarge, max)
		}
		return 0, nil
	}
	return i + 1, nil
}

// Decode strips the line ending.
func (Text) Decode(_ Conn, packet []byte) (Message, error) {
	return Message{Data: bytes.TrimRight(packet, "\r\n")}, nil
}

// Encode appends "\n".
func (Text) Encode(_ Conn, dst []byte, m Message) ([]byte, error) {
	dst = append(dst, m.Data...)
	return append(dst, '\n'), nil
}
