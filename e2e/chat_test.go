package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/examples/chat/chatserver"
)

// chromium finds the browser; the test is skipped without one (CI installs
// Debian's chromium package).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("E2E_REQUIRE_BROWSER") != "" {
		t.Fatal("no Chromium found, and E2E_REQUIRE_BROWSER is set")
	}
	t.Skip("no Chromium found: install it (apt-get install chromium) or set CHROMIUM")
	return ""
}

func startChat(t *testing.T, listen string) *workerman.Worker {
	t.Helper()
	w := chatserver.New(listen)
	if err := w.Listen(); err != nil {
		t.Fatalf("chat: %v", err)
	}
	t.Cleanup(func() { stop(w) })
	return w
}

func stop(w *workerman.Worker) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w.Shutdown(ctx)
}

// browser starts one headless Chromium for the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	var copts []chromedp.ContextOption
	if os.Getenv("CDP_DEBUG") != "" {
		copts = append(copts, chromedp.WithDebugf(t.Logf))
	}
	ctx, cancel := chromedp.NewContext(alloc, copts...)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// user is one person in a browser context of their own (separate cookies
// and storage, like a separate browser profile).
type user struct {
	t    *testing.T
	name string
	ctx  context.Context
}

func newUser(t *testing.T, b context.Context, name string) *user {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first action creates the tab, which lives as long as the context
	// of that call: no timeout on this one.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("%s: opening a tab: %v", name, err)
	}
	return &user{t: t, name: name, ctx: ctx}
}

func (u *user) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		u.t.Fatalf("%s: %s: %v", u.name, what, err)
	}
}

// until waits for a JavaScript condition in the user's page. A poll that
// started while a navigation replaced the document is started again.
func (u *user) until(what, js string) {
	u.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithDeadline(u.ctx, deadline)
		err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(50*time.Millisecond)))
		cancel()
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "Cannot find context") || time.Now().After(deadline) {
			u.t.Fatalf("%s: %s: %v", u.name, what, err)
		}
	}
}

func (u *user) eval(js string) bool {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
	if err != nil {
		u.t.Fatalf("%s: evaluating %s: %v", u.name, js, err)
	}
	return v
}

// act runs a statement in the page. The page is driven through its DOM
// (values set, buttons clicked with click()), so the browser fires the same
// events as for a person.
func (u *user) act(what, js string) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { `+js+`; return true })()`)); err != nil {
		u.t.Fatalf("%s: %s: %v", u.name, what, err)
	}
}

func (u *user) join(url, room string) {
	u.t.Helper()
	u.do("open the page", chromedp.Navigate(url))
	u.until("connect", `document.querySelector("#status").dataset.state === "connected"`)
	u.act("join "+room, fmt.Sprintf(`
		document.querySelector("#nick").value = %q;
		document.querySelector("#room").value = %q;
		document.querySelector("#join").click()`, u.name, room))
	u.until("see the room", fmt.Sprintf(`document.querySelector("#roomname").textContent.includes(%q) && !document.querySelector("#send").disabled`, room))
}

func (u *user) say(text string) {
	u.t.Helper()
	u.act("say "+text, fmt.Sprintf(`
		document.querySelector("#text").value = %q;
		document.querySelector("#send").click()`, text))
}

func sawMessage(nick, text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll("#log li.msg")].some(li => li.dataset.nick === %q && li.querySelector(".text").textContent === %q)`, nick, text)
}

func online(names ...string) string {
	var checks []string
	for _, n := range names {
		checks = append(checks, fmt.Sprintf(`users.includes(%q)`, n))
	}
	return fmt.Sprintf(`(users => %s)([...document.querySelectorAll("#users li")].map(li => li.textContent))`, strings.Join(checks, " && "))
}

// Two people in the same room see each other's messages; a third in another
// room does not; a late joiner gets the history; and when the server
// restarts, the pages reconnect and rejoin on their own.
func TestChatInChromium(t *testing.T) {
	w := startChat(t, "http://127.0.0.1:0")
	addr := w.Addr().String()
	url := "http://" + addr + "/"
	b := browser(t)

	alice := newUser(t, b, "alice")
	bob := newUser(t, b, "bob")
	carol := newUser(t, b, "carol")
	alice.join(url, "lobby")
	bob.join(url, "lobby")
	carol.join(url, "other")

	bob.until("see who is online", online("alice", "bob"))
	if carol.eval(online("alice")) {
		t.Fatal("carol's room lists alice")
	}

	alice.say("hello from alice")
	bob.until("see alice's message", sawMessage("alice", "hello from alice"))
	alice.until("see her own message", sawMessage("alice", "hello from alice"))

	// Carol's room is separate: once her own message is back, alice's
	// (sent earlier) has had every chance to arrive, and must not have.
	carol.say("carol here")
	carol.until("see her own message", sawMessage("carol", "carol here"))
	if carol.eval(sawMessage("alice", "hello from alice")) {
		t.Fatal("carol, in another room, got alice's message")
	}
	if bob.eval(sawMessage("carol", "carol here")) {
		t.Fatal("bob got carol's message from another room")
	}

	dave := newUser(t, b, "dave")
	dave.join(url, "lobby")
	dave.until("see the history", sawMessage("alice", "hello from alice"))

	// Restart the server on the same address.
	stop(w)
	alice.until("notice the server is gone", `document.querySelector("#status").dataset.state !== "connected"`)
	w2 := startChat(t, "http://"+addr)
	_ = w2
	alice.until("reconnect and rejoin", `document.querySelector("#status").dataset.state === "connected" && !document.querySelector("#send").disabled`)
	bob.until("reconnect and rejoin", online("alice", "bob"))
	alice.say("after the restart")
	bob.until("see the message after the restart", sawMessage("alice", "after the restart"))
}
