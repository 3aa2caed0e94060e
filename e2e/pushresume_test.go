package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// resumePage loads workerman-push.js from the push server (%s) and logs a
// client's pushes with their streams, offsets and epochs, and its resumed
// events.
const resumePage = `<!doctype html>
<meta charset="utf-8">
<title>resume</title>
<script src="%s"></script>
<script>
window.log = [];
window.start = function (url) {
  var p = new WorkermanPush([url], {minReconnectDelay: 100, maxReconnectDelay: 300});
  p.onwelcome = function (w) { log.push({ev: "welcome", id: w.clientId}); };
  p.onmessage = function (data, meta) {
    log.push({ev: "message", text: data, stream: meta.stream, offset: meta.offset, epoch: meta.epoch});
  };
  p.onresumed = function (r) {
    var all = r.streams.all || {};
    log.push({ev: "resumed", stream: "all", recovered: all.recovered === true, offset: all.offset, epoch: all.epoch, lost: r.lost.join(",")});
  };
  window.client = p;
};
</script>
`

type resumeEvent struct {
	Ev        string `json:"ev"`
	ID        string `json:"id"`
	Text      string `json:"text"`
	Stream    string `json:"stream"`
	Offset    uint64 `json:"offset"`
	Epoch     string `json:"epoch"`
	Recovered bool   `json:"recovered"`
	Lost      string `json:"lost"`
}

func (u *user) resumeLog() []resumeEvent {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 10*time.Second)
	defer cancel()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[[]resumeEvent](`log`))
	if err != nil {
		u.t.Fatalf("reading the page's log: %v", err)
	}
	return out
}

// The JS client of a push server with history (-history-size), in
// Chromium: it keeps its position in sessionStorage, so that after a page
// reload it gets exactly the pushes it missed, then resumed, then the live
// ones; when the server restarts (SIGTERM: 1001, a new process on the same
// ports, whose memory history is new) it reconnects by itself, resumes,
// learns that the stream was lost (onresumed: recovered false, lost
// ["all"]) and goes on in the new epoch.
func TestPushJSResumeInChromium(t *testing.T) {
	bin := buildPush(t)
	const key = "resume-key"
	srv := runPush(t, bin, "-listen", "websocket://127.0.0.1:0", "-api", "http://127.0.0.1:0",
		"-api-key", key, "-node-id", "r", "-count", "1", "-history-size", "100")
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, resumePage, srv.js)
	}))
	t.Cleanup(page.Close)

	u := newUser(t, browser(t), "page")
	startClient := func() {
		u.do("open the page", chromedp.Navigate(page.URL))
		u.until("load workerman-push.js", `typeof WorkermanPush === "function"`)
		u.act("start", fmt.Sprintf(`start(%q)`, srv.clients))
		u.until("be welcomed", `log.some(e => e.ev === "welcome") && client.state === "connected"`)
	}
	messages := func(log []resumeEvent) (out []string) {
		for _, e := range log {
			switch e.Ev {
			case "message":
				out = append(out, fmt.Sprintf("%s %s#%d", e.Text, e.Stream, e.Offset))
			case "resumed":
				out = append(out, fmt.Sprintf("resumed recovered=%v #%d lost=%s", e.Recovered, e.Offset, e.Lost))
			}
		}
		return out
	}
	expect := func(what string, want ...string) []resumeEvent {
		t.Helper()
		u.until(what, fmt.Sprintf(`log.filter(e => e.ev === "message" || e.ev === "resumed").length >= %d`, len(want)))
		log := u.resumeLog()
		if got := messages(log); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("%s: got\n%q\nwant\n%q", what, got, want)
		}
		return log
	}

	startClient()
	srv.call(t, "sendToAll", map[string]any{"message": "m1"})
	srv.call(t, "sendToAll", map[string]any{"message": "m2"})
	log := expect("get two pushes", "m1 all#1", "m2 all#2")
	epoch := log[len(log)-1].Epoch

	// Away: the client closed, two pushes meanwhile, then a reload: the
	// page's new client resumes from sessionStorage.
	u.act("close the client", `client.close()`)
	srv.call(t, "sendToAll", map[string]any{"message": "m3"})
	srv.call(t, "sendToAll", map[string]any{"message": "m4"})
	startClient()
	srv.call(t, "sendToAll", map[string]any{"message": "m5"})
	log = expect("resume after the reload", "m3 all#3", "m4 all#4", "resumed recovered=true #4 lost=", "m5 all#5")
	for _, e := range log {
		if e.Ev == "message" && e.Epoch != epoch {
			t.Fatalf("epoch %q after the reload, want %q", e.Epoch, epoch)
		}
	}

	// The server restarts on the same ports: its memory history is new.
	clientsURL, _ := url.Parse(srv.clients)
	apiURL, _ := url.Parse(srv.api)
	srv.stop()
	u.until("see the server go", `client.state !== "connected"`)
	srv = runPush(t, bin, "-listen", "websocket://"+clientsURL.Host, "-api", "http://"+apiURL.Host,
		"-api-key", key, "-node-id", "r", "-count", "1", "-history-size", "100")
	u.until("be welcomed by the new server", `log.filter(e => e.ev === "welcome").length === 2 && client.state === "connected"`)
	u.until("get the answer to resume", `log.filter(e => e.ev === "resumed").length === 2`)
	srv.call(t, "sendToAll", map[string]any{"message": "m6"})
	log = expect("go on in the new epoch", "m3 all#3", "m4 all#4", "resumed recovered=true #4 lost=", "m5 all#5",
		"resumed recovered=false #0 lost=all", "m6 all#1")
	if last := log[len(log)-1]; last.Epoch == epoch || last.Epoch == "" {
		t.Fatalf("epoch %q after the restart, the old one was %q", last.Epoch, epoch)
	}
	if got := u.evalString(`JSON.stringify(client.positions())`); !strings.Contains(got, `"offset":1`) || strings.Contains(got, epoch) {
		t.Fatalf("positions after the restart: %s", got)
	}
}
