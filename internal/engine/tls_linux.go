//go:build linux

package engine

func (e *epollEngine) listenTLS(spec *Listener, accept AcceptFunc) error {
	return e.gor.Listen(spec, accept)
}

func (e *epollEngine) dialTLS(d DialRequest) DialConn {
	return e.gor.Dial(d)
}
