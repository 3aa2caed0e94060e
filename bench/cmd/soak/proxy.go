package main

import (
	"context"
	"fmt"
	"strings"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/rs/zerolog"
)

// Half-open peers: some clients reach the server through a Toxiproxy proxy
// (the library, in this process). To make them vanish, a toxic is added to
// both directions of their proxy: nothing more reaches either side, and
// neither side sees a FIN or an RST. Two ways of vanishing alternate:
//
//   - blackhole: the proxy stops reading, so the server's writes back up
//     in the kernel and then in its send queue, as with a peer whose
//     machine is gone;
//   - timeout (Toxiproxy's, with timeout 0): the proxy reads and throws
//     everything away, as with a peer whose kernel still ACKs but whose
//     program is frozen.
//
// Only the server's heartbeat (PingInterval, PingNotResponseLimit) can
// find them.

// blackholeToxic forwards nothing and reads nothing until it is removed.
type blackholeToxic struct{}

func (*blackholeToxic) Pipe(stub *toxics.ToxicStub) { <-stub.Interrupt }

func init() { toxics.Register("blackhole", new(blackholeToxic)) }

var toxServer = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())

// halfOpenProxy is a proxy to the server for one wave of half-open peers.
type halfOpenProxy struct {
	p *toxiproxy.Proxy
}

func newHalfOpenProxy(name, upstream string) (*halfOpenProxy, error) {
	p := toxiproxy.NewProxy(toxServer, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, err
	}
	return &halfOpenProxy{p: p}, nil
}

func (h *halfOpenProxy) addr() string { return h.p.Listen }

// vanish cuts both directions without closing anything.
func (h *halfOpenProxy) vanish(mode string) error {
	attrs := ""
	if mode == "timeout" {
		attrs = `,"attributes":{"timeout":0}`
	}
	for _, dir := range []string{"upstream", "downstream"} {
		j := fmt.Sprintf(`{"name":"%s_%s","type":"%s","stream":"%s","toxicity":1%s}`, mode, dir, mode, dir, attrs)
		if _, err := h.p.Toxics.AddToxicJson(strings.NewReader(j)); err != nil {
			return fmt.Errorf("toxic %s: %w", mode, err)
		}
	}
	return nil
}

// close removes the toxics (which lets the proxy's goroutines end) and
// closes every connection of the proxy.
func (h *halfOpenProxy) close() {
	h.p.Toxics.ResetToxics(context.Background())
	h.p.Stop()
}
