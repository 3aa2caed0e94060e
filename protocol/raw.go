package protocol

// Raw is the codec of tcp:// and unix://: no framing, every read is one
// message, and Send writes the bytes as they are (Workerman's protocol-less
// TcpConnection).
type Raw struct{}

// Input takes everything that was read.
func (Raw) Input(_ Conn, buf []byte) (int, error) { return len(buf), nil }

// Decode returns the packet unchanged.
func (Raw) Decode(_ Conn, packet []byte) (Message, error) {
	return Message{Data: packet}, nil
}

// Encode returns the data unchanged.
func (Raw) Encode(_ Conn, _ []byte, m Message) ([]byte, error) { return m.Data, nil }
