package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/workerman-go/workerman/internal/testcert"
)

// Chromium against the push server over TLS (-tls-cert, -tls-key): the page
// loads workerman-push.js over https://, its client connects to wss:// (a
// relative URL on an https page), and gets what the backend pushes; TLS on
// the server's event loops, end to end in a real browser.
func TestPushOverTLSInChromium(t *testing.T) {
	certFile, keyFile, _ := testcert.Files(t, t.TempDir())
	const key = "e2e-tls-key"
	p := runPush(t, buildPush(t), "-listen", "wss://127.0.0.1:0", "-api", "http://127.0.0.1:0",
		"-api-key", key, "-node-id", "tls", "-count", "1", "-tls-cert", certFile, "-tls-key", keyFile)
	if !strings.HasPrefix(p.clients, "wss://") || !strings.HasPrefix(p.js, "https://") {
		t.Fatalf("started with clients %s, js %s", p.clients, p.js)
	}
	// The certificate is the test's own: the browser is told to accept it.
	b := browser(t, chromedp.Flag("ignore-certificate-errors", true))
	u := newUser(t, b, "tls")
	u.do("open the script's origin", chromedp.Navigate(p.js))
	u.act("load workerman-push.js", `
		window.got = [];
		var s = document.createElement("script");
		s.src = "/workerman-push.js";
		s.onload = function () {
			var c = new WorkermanPush("/");
			c.onwelcome = function (w) { window.welcome = w; window.url = w.url; };
			c.onmessage = function (data) { window.got.push(data); };
		};
		document.head.appendChild(s)`)
	u.until("the welcome over wss", `window.welcome && window.url.indexOf("wss://") === 0`)
	p.call(t, "sendToAll", map[string]any{"message": "over TLS, in the loop"})
	u.until("the push", `window.got.length === 1 && window.got[0] === "over TLS, in the loop"`)
}
