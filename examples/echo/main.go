// Command echo sends every message back to its sender, for any scheme the
// library serves:
//
//	go run ./examples/echo -listen text://127.0.0.1:9000 -count 2
//
// Try it with: printf 'hello\n' | nc -q1 127.0.0.1 9000
//
// Over UDP: -listen udp://127.0.0.1:9000 (a datagram is a message), or
// -listen text://127.0.0.1:9000 -transport udp; try: nc -u 127.0.0.1 9000
//
// Over TLS (any stream scheme: wss:// for websocket://, and so on), from PEM
// files, on the event loop like plain connections:
//
//	go run ./examples/echo -listen websocket://127.0.0.1:9443 -cert cert.pem -key key.pem
//
// Try it with: openssl s_client -connect 127.0.0.1:9000 (for text://).
package main

import (
	"crypto/tls"
	"flag"
	"log"

	"github.com/workerman-go/workerman"
)

func main() {
	listen := flag.String("listen", "text://127.0.0.1:9000", "listen URI (tcp://, text://, frame://, websocket://, http://, udp://, unix:///path)")
	count := flag.Int("count", 1, "event-loop instances")
	transport := flag.String("transport", "", "udp: carry the codec of -listen in datagrams")
	certFile := flag.String("cert", "", "TLS certificate chain (PEM): serve -listen over TLS")
	keyFile := flag.String("key", "", "TLS private key (PEM), with -cert")
	flag.Parse()

	w := workerman.NewWorker(*listen)
	w.Name = "echo"
	w.Count = *count
	w.Transport = *transport
	if *certFile != "" || *keyFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Fatalf("echo: -cert/-key: %v", err)
		}
		w.Transport = "ssl"
		w.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	w.OnWorkerStart = func(w *workerman.Worker, id int) {
		if id == 0 {
			over := ""
			if w.TLSConfig != nil {
				over = " over TLS"
			}
			log.Printf("echo: listening on %s (%s%s) with %d instance(s)", w.Addr(), *listen, over, w.Count)
		}
	}
	w.OnMessage = func(c *workerman.Connection, data []byte) {
		// Answer with the type the message came with (text or binary for
		// WebSocket; other codecs have one type).
		c.SendMessage(c.MessageType(), data)
	}
	if err := workerman.RunAll(); err != nil {
		log.Fatal(err)
	}
}
