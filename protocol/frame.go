package protocol

import (
	"encoding/binary"
	"fmt"
)

// Frame is Workerman's Frame protocol (frame://): a 4-byte big-endian total
// length, header included, then the payload.
type Frame struct{}

// FrameHeaderSize is the length of the Frame header.
const FrameHeaderSize = 4

// Input reads the total length from the header.
func (Frame) Input(_ Conn, buf []byte) (int, error) {
	if len(buf) < FrameHeaderSize {
		return 0, nil
	}
	n := binary.BigEndian.Uint32(buf)
	if n < FrameHeaderSize {
		return 0, fmt.Errorf("%w: frame length %d is shorter than its header", ErrBadPacket, n)
	}
	if uint64(n) > uint64(maxInt) {
		return 0, fmt.Errorf("%w: frame length %d", ErrPackageTooLarge, n)
	}
	return int(n), nil
}

const maxInt = int(^uint(0) >> 1)

// Decode strips the header.
func (Frame) Decode(_ Conn, packet []byte) (Message, error) {
	return Message{Data: packet[FrameHeaderSize:]}, nil
}

// Encode prepends the header.
func (Frame) Encode(_ Conn, dst []byte, m Message) ([]byte, error) {
	total := uint64(len(m.Data)) + FrameHeaderSize
	if total > 1<<32-1 {
		return nil, fmt.Errorf("%w: %d bytes do not fit a frame", ErrPackageTooLarge, len(m.Data))
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(total))
	return append(dst, m.Data...), nil
}
