package e2e

import (
	"context"
	"encoding/json"
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

// startChat serves a new chat; a restart is a second startChat on the same
// address, with the state of the first one gone.
func startChat(t *testing.T, listen string) (*chatserver.Chat, *workerman.Worker) {
	t.Helper()
	ch := new(chatserver.Chat)
	w := ch.Worker(listen)
	if err := w.Listen(); err != nil {
		t.Fatalf("chat: %v", err)
	}
	t.Cleanup(func() { stop(w) })
	return ch, w
}

func stop(w *workerman.Worker) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w.Shutdown(ctx)
}

// browser starts one headless Chromium for the test, with extra options.
func browser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
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
	opts = append(opts, extra...)
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

// until waits, for at most 30 s, for a JavaScript condition in the user's
// page. It evaluates the condition every 50 ms instead of using
// chromedp.Poll, which runs in the execution context chromedp saw created
// last: a page restored from the back/forward cache creates none, and a
// poll in it never ends. An evaluation that fails, as while a navigation
// replaces the document, is tried again.
func (u *user) until(what, js string) {
	u.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(u.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!(`+js+`)`))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			if err != nil {
				u.t.Fatalf("%s: %s: still false after 30 s (the last evaluation failed: %v)", u.name, what, err)
			}
			u.t.Fatalf("%s: %s: still false after 30 s", u.name, what)
		}
		<-tick.C
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

func (u *user) evalString(js string) string {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
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

// open loads the page and waits for its WebSocket.
func (u *user) open(url string) {
	u.t.Helper()
	u.do("open the page", chromedp.Navigate(url))
	u.until("connect", `document.querySelector("#status").dataset.state === "connected"`)
}

// submit fills in the join form and sends it, as a person would.
func (u *user) submit(nick, room string) {
	u.t.Helper()
	u.act("join "+room+" as "+nick, fmt.Sprintf(`
		document.querySelector("#nick").value = %q;
		document.querySelector("#room").value = %q;
		document.querySelector("#join").click()`, nick, room))
}

func (u *user) join(url, room string) {
	u.t.Helper()
	u.open(url)
	u.submit(u.name, room)
	u.until("be in "+room, inRoom(room))
}

// refused submits a join the server refuses with message, and checks that
// the page and the server still agree on where u is: in stillIn, or in no
// room when stillIn is "".
func (u *user) refused(chat *chatserver.Chat, nick, room, message, stillIn string) {
	u.t.Helper()
	u.submit(nick, room)
	u.until("be told "+message, fmt.Sprintf(`document.querySelector("#error").textContent === %q`, message))
	if stillIn == "" && !u.eval(inNoRoom) {
		u.t.Fatalf("%s: refused %s in %s, the page acts as if in a room", u.name, nick, room)
	}
	if stillIn != "" && !u.eval(inRoom(stillIn)) {
		u.t.Fatalf("%s: refused %s in %s, the page left %s", u.name, nick, room, stillIn)
	}
	if got := chat.RoomOf(u.name); got != stillIn {
		u.t.Fatalf("%s: refused %s in %s, the server has %s in %q, the page in %q", u.name, nick, room, u.name, got, stillIn)
	}
}

// awayAndBack navigates to another page, runs meanwhile, and goes back. It
// reports whether the chat page came back from Chromium's back/forward
// cache, script state and all, rather than loaded anew.
func (u *user) awayAndBack(meanwhile func()) (cached bool) {
	u.t.Helper()
	u.act("mark the page", `window.cached = true`)
	u.do("go elsewhere", chromedp.Navigate("about:blank"))
	meanwhile()
	// Later, so that the evaluation returns before the page goes.
	u.act("go back", `setTimeout(() => history.back())`)
	u.until("be back", `document.querySelector("#status") !== null`)
	return u.eval(`window.cached === true`)
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

// onlineExactly is true when the who-is-online list is names, in order.
func onlineExactly(names ...string) string {
	want, _ := json.Marshal(names)
	return fmt.Sprintf(`JSON.stringify([...document.querySelectorAll("#users li")].map(li => li.textContent)) === %q`, want)
}

// inRoom is true when the page shows room as its own and lets the user
// talk there.
func inRoom(room string) string {
	return fmt.Sprintf(`document.querySelector("#roomname").dataset.room === %q && !document.querySelector("#send").disabled`, room)
}

// inNoRoom is true when the page shows no room and does not let the user
// talk.
const inNoRoom = `document.querySelector("#roomname").dataset.room === "" && document.querySelector("#send").disabled`

// lines counts the log lines of a class ("msg" or "notice") with text.
func lines(class, text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll("#log li.%s .text")].filter(e => e.textContent === %q).length`, class, text)
}

func (u *user) count(class, text string) int {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 10*time.Second)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](lines(class, text)))
	if err != nil {
		u.t.Fatalf("%s: counting %q: %v", u.name, text, err)
	}
	return n
}

// eventually polls the server's state, for at most 30 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30 s for %s", what)
		}
		<-tick.C
	}
}

// Two people in the same room see each other's messages; a third in another
// room does not; a late joiner gets the history; and when the server
// restarts, the pages reconnect and rejoin on their own.
func TestChatInChromium(t *testing.T) {
	_, w := startChat(t, "http://127.0.0.1:0")
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
	startChat(t, "http://"+addr)
	alice.until("reconnect and rejoin", `document.querySelector("#status").dataset.state === "connected" && !document.querySelector("#send").disabled`)
	bob.until("reconnect and rejoin", online("alice", "bob"))
	alice.say("after the restart")
	bob.until("see the message after the restart", sawMessage("alice", "after the restart"))
}

// A nickname is one person's, whatever its case and room: a second tab is
// told so, stays out of every room and picks another name. The name is free
// again once its holder has gone.
func TestChatRefusesANicknameInUse(t *testing.T) {
	chat, w := startChat(t, "http://127.0.0.1:0")
	url := "http://" + w.Addr().String() + "/"
	b := browser(t)

	alice := newUser(t, b, "alice")
	alice.join(url, "lobby")

	tab := newUser(t, b, "bob")
	tab.open(url)
	for _, tc := range []struct{ nick, room string }{
		{"alice", "lobby"},
		{"ALICE", "lobby"},
		{"Alice", "other"},
	} {
		tab.refused(chat, tc.nick, tc.room, "the nickname "+tc.nick+" is in use: pick another", "")
		if !tab.eval(`document.activeElement === document.querySelector("#nick")`) {
			t.Fatalf("refused %s, the page does not offer to change the nickname", tc.nick)
		}
		if got := chat.RoomOf("alice"); got != "lobby" {
			t.Fatalf("refused %s, the server has alice in %q", tc.nick, got)
		}
	}

	tab.submit("bob", "lobby")
	tab.until("join with a name of its own", inRoom("lobby"))
	if tab.evalString(`document.querySelector("#error").textContent`) != "" {
		t.Fatal("the refusal is still shown after joining")
	}
	alice.until("see bob, and only one alice", onlineExactly("alice", "bob"))
	tab.until("see alice and bob", onlineExactly("alice", "bob"))
	for _, tc := range []struct {
		notice string
		want   int
	}{{"alice joined", 1}, {"ALICE joined", 0}, {"Alice joined", 0}} {
		if n := alice.count("notice", tc.notice); n != tc.want {
			t.Fatalf("alice saw %q %d times, want %d", tc.notice, n, tc.want)
		}
	}

	// Alice goes to another page: hers lets the name go, and someone takes
	// it. When she comes back, the name is no longer hers.
	cached := alice.awayAndBack(func() {
		eventually(t, "the server to free alice", func() bool { return chat.RoomOf("alice") == "" })
		other := newUser(t, b, "Alice")
		other.join(url, "lobby")
		tab.until("see the new Alice", onlineExactly("Alice", "bob"))
	})
	if cached {
		alice.until("be refused her old name", `document.querySelector("#error").textContent === "the nickname alice is in use: pick another"`)
	} else {
		t.Log("Chromium loaded the page anew instead of taking it from its back/forward cache")
		alice.until("connect", `document.querySelector("#status").dataset.state === "connected"`)
	}
	if !alice.eval(inNoRoom) {
		t.Fatal("alice's page acts as if in a room")
	}
	if got := chat.RoomOf("alice"); got != "lobby" {
		t.Fatalf("the new Alice is in %q", got)
	}
}

// Joining the room one is in again changes nothing: nobody sees a left
// and a joined, and the page keeps its log (no history replayed over it).
func TestChatJoiningTheSameRoomAgainIsQuiet(t *testing.T) {
	chat, w := startChat(t, "http://127.0.0.1:0")
	url := "http://" + w.Addr().String() + "/"
	b := browser(t)

	alice := newUser(t, b, "alice")
	bob := newUser(t, b, "bob")
	alice.join(url, "lobby")
	bob.join(url, "lobby")
	alice.until("see bob", onlineExactly("alice", "bob"))
	alice.say("before")
	bob.until("see before", sawMessage("alice", "before"))
	alice.until("see before", sawMessage("alice", "before"))

	alice.submit("alice", "lobby")
	// The server takes a page's messages in order: once "after" is seen,
	// whatever the join made it say has been said.
	alice.say("after")
	bob.until("see after", sawMessage("alice", "after"))
	alice.until("see after", sawMessage("alice", "after"))

	for _, tc := range []struct {
		who         *user
		class, text string
		want        int
	}{
		{alice, "notice", "alice left", 0},
		{alice, "notice", "alice joined", 1},
		{alice, "notice", "bob joined", 1},
		{alice, "msg", "before", 1},
		{bob, "notice", "alice left", 0},
		{bob, "notice", "alice joined", 0},
		{bob, "notice", "bob joined", 1},
		{bob, "msg", "before", 1},
	} {
		if n := tc.who.count(tc.class, tc.text); n != tc.want {
			t.Errorf("%s's log has %d lines %q, want %d", tc.who.name, n, tc.text, tc.want)
		}
	}
	if !alice.eval(inRoom("lobby")) || chat.RoomOf("alice") != "lobby" {
		t.Fatal("alice is no longer in the lobby")
	}
}

// A refused join leaves the page where the server has it, so that after a
// lost connection, and after a server restart, the page rejoins that room
// and hears what is said there.
func TestChatRejoinsTheAcceptedRoomAfterARefusal(t *testing.T) {
	chat, w := startChat(t, "http://127.0.0.1:0")
	addr := w.Addr().String()
	url := "http://" + addr + "/"
	b := browser(t)

	alice := newUser(t, b, "alice")
	bob := newUser(t, b, "bob")
	carol := newUser(t, b, "carol")
	alice.join(url, "lobby")
	bob.join(url, "lobby")
	carol.join(url, "other")

	alice.refused(chat, "alice", "no spaces!", "a room name has 1 to 32 letters, digits, - or _", "lobby")
	alice.refused(chat, "carol", "other", "the nickname carol is in use: pick another", "lobby")

	// The browser loses the connection.
	alice.act("drop the connection", `window.dropped = ws; ws.close()`)
	alice.until("reconnect and rejoin", `ws !== window.dropped && `+inRoom("lobby"))
	if got := chat.RoomOf("alice"); got != "lobby" {
		t.Fatalf("after the reconnect the server has alice in %q", got)
	}
	bob.say("welcome back")
	alice.until("hear bob in the lobby", sawMessage("bob", "welcome back"))

	alice.refused(chat, "bob", "other", "the nickname bob is in use: pick another", "lobby")

	// The server restarts, with no memory of anyone.
	stop(w)
	alice.until("notice the server is gone", `document.querySelector("#status").dataset.state !== "connected"`)
	chat, _ = startChat(t, "http://"+addr)
	for _, u := range []struct {
		*user
		room string
	}{{alice, "lobby"}, {bob, "lobby"}, {carol, "other"}} {
		u.until("rejoin "+u.room, inRoom(u.room))
		if got := chat.RoomOf(u.name); got != u.room {
			t.Fatalf("after the restart the server has %s in %q, want %s", u.name, got, u.room)
		}
	}
	bob.say("after the restart")
	alice.until("hear bob after the restart", sawMessage("bob", "after the restart"))
	carol.say("carol after the restart")
	carol.until("hear herself", sawMessage("carol", "carol after the restart"))
	if carol.eval(sawMessage("bob", "after the restart")) {
		t.Fatal("carol, in another room, heard bob")
	}

	// Alice goes to another page and comes back.
	alice.refused(chat, "carol", "other", "the nickname carol is in use: pick another", "lobby")
	cached := alice.awayAndBack(func() {
		eventually(t, "the server to see alice go", func() bool { return chat.RoomOf("alice") == "" })
	})
	if !cached {
		t.Log("Chromium loaded the page anew instead of taking it from its back/forward cache")
		return
	}
	alice.until("rejoin", inRoom("lobby"))
	if got := chat.RoomOf("alice"); got != "lobby" {
		t.Fatalf("back on the page, the server has alice in %q", got)
	}
	bob.say("welcome back again")
	alice.until("hear bob", sawMessage("bob", "welcome back again"))
}
