package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

type check struct {
	name   string
	ok     bool
	detail string
	na     bool // cannot apply to this server: reported, not counted
}

// totals adds up what the client processes reported.
type totals struct {
	sessions, connectFails, verified, resets, unicast, broadcast, violations uint64
	unfinished                                                               int
	samples                                                                  []string
	ended                                                                    []endedConn
	endedOverflow                                                            int
	lat                                                                      [2][nPhases]hist
	faults                                                                   faultReport
	steadySessions, churnSessions, churnFails, churnSkipped                  uint64
}

func (s *suite) totals() totals {
	var t totals
	for _, r := range s.reports {
		t.sessions += r.Sessions
		t.connectFails += r.ConnectFails
		t.verified += r.Verified
		t.resets += r.Resets
		t.unicast += r.Unicast
		t.broadcast += r.Broadcast
		t.violations += r.Violations
		t.unfinished += r.Unfinished
		t.samples = append(t.samples, r.Samples...)
		t.ended = append(t.ended, r.Ended...)
		t.endedOverflow += r.EndedOverflow
		for i := range r.Latency {
			for ph := range r.Latency[i] {
				t.lat[i][ph].merge(r.Latency[i][ph])
			}
		}
		switch r.Role {
		case "steady":
			t.steadySessions += r.Sessions
		case "churn":
			t.churnSessions += r.Sessions
			t.churnFails += r.ConnectFails
			t.churnSkipped += r.Churn["skipped"]
		case "faults":
			if r.Faults != nil {
				t.faults = *r.Faults
			}
		}
	}
	return t
}

// checkEnded matches the connections that ended without an answer to bye
// against the server's report at the restart: a connection the server
// reported must have received exactly what it said it sent; any other one
// must have ended at the restart before it was registered.
func (s *suite) checkEnded(t *totals) (atRestart, unregistered int) {
	bad := func(format string, args ...any) {
		t.violations++
		if len(t.samples) < 60 {
			t.samples = append(t.samples, fmt.Sprintf(format, args...))
		}
	}
	r := s.restart
	if s.o.target == "push" {
		return s.checkEndedPush(t, bad)
	}
	for _, e := range t.ended {
		fc, ok := s.frozen[e.CID]
		switch {
		case ok && fc.finished:
			bad("%s %s: the server answered bye before the restart, the client never got the answer", e.Kind, e.CID)
		case ok && !fc.registered:
			if e.U != 0 || e.Welcomed {
				bad("%s %s: unregistered at the restart but got %d unicasts (welcome %v)", e.Kind, e.CID, e.U, e.Welcomed)
			}
			unregistered++
		case ok:
			atRestart++
			if !e.Welcomed || e.BStart != fc.bStart {
				bad("%s %s: welcome %v at %d, the server registered it at %d", e.Kind, e.CID, e.Welcomed, e.BStart, fc.bStart)
			}
			if e.U != fc.sent {
				bad("%s %s: received unicast 1..%d before the kill, the server sent 1..%d", e.Kind, e.CID, e.U, fc.sent)
			}
			if fc.bLast > fc.bStart {
				if e.BLast != fc.bLast || e.BFirst == 0 || e.BFirst > fc.bStart+1 {
					bad("%s %s: received broadcasts %d..%d before the kill, the server sent %d..%d", e.Kind, e.CID, e.BFirst, e.BLast, fc.bStart+1, fc.bLast)
				}
			} else if e.BLast > fc.bStart {
				bad("%s %s: broadcast %d after the server's last %d", e.Kind, e.CID, e.BLast, fc.bLast)
			}
		case r.done && e.At >= r.freezeAt.UnixNano() && e.At <= r.readyAt.Add(5*time.Second).UnixNano() && e.U == 0 && !e.Welcomed:
			unregistered++ // was still in its handshake when the server froze
		default:
			bad("%s %s: closed by the server (%s) at %s with no reason (after unicast %d)", e.Kind, e.CID, e.Err,
				time.Unix(0, e.At).Format("15:04:05.000"), e.U)
		}
	}
	if t.endedOverflow > 0 {
		bad("%d more connections ended without an answer to bye (not listed)", t.endedOverflow)
	}
	return atRestart, unregistered
}

// checkEndedPush is checkEnded for -target push: without history nothing
// is resumed, so a connection the kill ended must have received a prefix
// (in order, checked as it came) of the unicasts the backend had sent it;
// one the backend did not know yet must have received none. Any other
// well-behaved connection the server ended is a failure.
func (s *suite) checkEndedPush(t *totals, bad func(string, ...any)) (atRestart, unregistered int) {
	r := s.restart
	inWindow := func(e endedConn) bool {
		return r.done && e.At >= r.freezeAt.UnixNano() && e.At <= r.readyAt.Add(5*time.Second).UnixNano()
	}
	for _, e := range t.ended {
		sent, known := backend.atKill[e.PID]
		switch {
		case known && inWindow(e):
			atRestart++
			if e.U > sent {
				bad("%s %s: received unicast 1..%d before the kill, the backend had sent 1..%d", e.Kind, e.CID, e.U, sent)
			}
			s.pushLost += sent - min(sent, e.U)
		case inWindow(e) && e.U == 0:
			unregistered++ // not yet known to the backend when it froze
		default:
			bad("%s %s (%s): closed by the server (%s) at %s with no reason (after unicast %d)", e.Kind, e.CID, e.PID, e.Err,
				time.Unix(0, e.At).Format("15:04:05.000"), e.U)
		}
	}
	if t.endedOverflow > 0 {
		bad("%d more connections ended without an answer to bye (not listed)", t.endedOverflow)
	}
	return atRestart, unregistered
}

// merged server counters of both server processes.
func addMaps(a, b map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range a {
		out[k] += v
	}
	for k, v := range b {
		out[k] += v
	}
	return out
}

func (s *suite) finish() int {
	t := s.totals()
	atRestart, unregistered := s.checkEnded(&t)
	sb, se := s.statsBefore, s.statsEnd
	drops := addMaps(sb.Drops, se.Drops)
	full := addMaps(sb.BufferFull, se.BufferFull)
	hb := addMaps(sb.HeartbeatTimeouts, se.HeartbeatTimeouts)
	closeErrs := addMaps(sb.CloseErrors, se.CloseErrors)
	other := addMaps(sb.OtherErrors, se.OtherErrors)
	hsTimeouts := sb.HandshakeTimeouts + se.HandshakeTimeouts
	badHS := sb.HandshakeErrors + se.HandshakeErrors
	sent := sb.UnicastSent + se.UnicastSent
	bcasts := sb.Broadcasts + se.Broadcasts
	var faultLat hist
	faultLat.merge(t.lat[0][phaseFaults])
	faultLat.merge(t.lat[1][phaseFaults])
	o := s.o
	f := t.faults

	var checks []check
	add := func(name string, ok bool, format string, args ...any) {
		checks = append(checks, check{name, ok, fmt.Sprintf(format, args...), false})
	}
	push := o.target == "push"
	na := func(name, why string) { checks = append(checks, check{name, true, "n/a (push server): " + why, true}) }
	for _, m := range s.fatal {
		add("run completed", false, "%s", m)
	}
	add("server never crashed", !s.crashed, "")
	add("every message to a well-behaved client arrived once, in order", t.violations == 0 && t.unfinished == 0 && len(s.reports) == len(s.clients),
		"%d violations, %d long-lived clients unfinished, %d of %d processes reported", t.violations, t.unfinished, len(s.reports), len(s.clients))
	wbDrops := drops[kindSteady] + drops[kindChurn] + drops[kindReset]
	if push {
		na("no drops for clients that read", "it does not expose its drop counter (a loss would fail the delivery check above)")
	} else {
		add("no drops for clients that read", wbDrops == 0, "%d dropped", wbDrops)
	}
	if o.nonreaders > 0 && push {
		na("non-readers' messages dropped and counted (OnError ErrSendBufferFull, OnBufferFull)", "it does not expose its drop counter")
	} else if o.nonreaders > 0 {
		add("non-readers' messages dropped and counted (OnError ErrSendBufferFull, OnBufferFull)", drops[kindNonreader] > 0 && full[kindNonreader] > 0,
			"%d drops, %d buffer-full events", drops[kindNonreader], full[kindNonreader])
	}
	if o.slowloris > 0 {
		add("slowloris handshakes cut by the server in time", f.Slowloris.Late == 0 && f.Slowloris.Got101 == 0 && f.Slowloris.Closed > 0,
			"%d cut, %d late, %d upgraded; bound %v", f.Slowloris.Closed, f.Slowloris.Late, f.Slowloris.Got101, o.handshakeTimeout+o.ping+2*time.Second)
	}
	if o.garbage > 0 {
		add("garbage handshakes refused and closed in time", f.Garbage.Late == 0 && f.Garbage.Got101 == 0 && f.Garbage.Closed > 0,
			"%d closed, %d late, %d upgraded; bound %v", f.Garbage.Closed, f.Garbage.Late, f.Garbage.Got101, garbageBound)
		add("invalid frames after the handshake closed in time", f.BadFrame.Late == 0 && f.BadFrame.Closed > 0,
			"%d closed, %d late; bound %v", f.BadFrame.Closed, f.BadFrame.Late, garbageBound)
	}
	if o.halfOpen > 0 {
		ok, detected := len(s.waves) > 0, 0
		var worst time.Duration
		for _, w := range s.waves {
			ok = ok && w.detected && w.conns > 0
			if w.detected {
				detected++
			}
			worst = max(worst, w.took)
		}
		detail := fmt.Sprintf("%d of %d waves, slowest %v; bound %v", detected, len(s.waves), worst.Round(time.Millisecond), o.detectBound())
		if len(s.waves) == 0 {
			detail = "no wave fitted in the fault phase: give a longer -duration"
		}
		add("half-open peers closed by the server's heartbeat", ok, "%s", detail)
	}
	if o.restart {
		add("restart: every long-lived client reconnected", s.restart.done && s.restart.reconnectedOK,
			"after %v (bound 30s)", s.restart.reconnected.Round(time.Millisecond))
	}
	add("after the faults only the long-lived clients remain", s.settleOK, "within %v", s.settled.Round(time.Millisecond))
	p99 := faultLat.quantile(0.99)
	budgetMet := faultLat.N > 0 && p99 <= o.p99Budget
	budgetLine := fmt.Sprintf("p99 delivery latency during the faults %v, budget %v", p99.Round(10*time.Microsecond), o.p99Budget)
	if o.latencyAssert {
		add("p99 delivery latency during the faults within budget", budgetMet, "%s", budgetLine)
	}
	pct := func(a, b int64) string {
		if b == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%+.1f%%", 100*float64(a-b)/float64(b))
	}
	add("server RSS back within tolerance", s.after.RSS > 0 && withinSlack(s.after.RSS, s.before.RSS, o.tolerance, o.rssSlack),
		"%s → %s (%s; at most +%.0f%% or +%s)", human(s.before.RSS), human(s.after.RSS), pct(s.after.RSS, s.before.RSS), o.tolerance*100, human(o.rssSlack))
	if push {
		na("server goroutines back within tolerance", "it does not expose its goroutine count")
	} else {
		add("server goroutines back within tolerance", s.after.Goroutines > 0 && within(int64(s.after.Goroutines), int64(s.before.Goroutines), o.tolerance), "%d → %d", s.before.Goroutines, s.after.Goroutines)
	}
	add("server open fds back within tolerance", s.after.FDs > 0 && within(int64(s.after.FDs), int64(s.before.FDs), o.tolerance), "%d → %d", s.before.FDs, s.after.FDs)

	// The summary.
	out := os.Stdout
	target := "the plain library's websocket:// Worker"
	if push {
		target = "cmd/workerman-push (fed through its HTTP API)"
	}
	fmt.Fprintf(out, "\nserver under test: %s", target)
	fmt.Fprintf(out, "\n== soak summary: %d long-lived clients in %d processes, %v (warm-up %v), set up in %v ==\n\n",
		o.clients, o.procs, o.duration, o.warmup(), s.setupT.Round(100*time.Millisecond))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	row := func(cols ...string) { fmt.Fprintln(tw, strings.Join(cols, "\t")+"\t") }
	row("clients and faults", "")
	row("long-lived clients", fmt.Sprintf("%d (%d sessions, %d failed connects)", o.clients, t.steadySessions, t.connectFails-t.churnFails))
	row("churn", fmt.Sprintf("%d connections (%d/s), %d ended with an RST, %d connects failed, %d skipped", t.churnSessions, o.churn, t.resets, t.churnFails, t.churnSkipped))
	if push {
		row("non-readers", fmt.Sprintf("%d connections; the push server's drops: n/a (not exposed)", f.Nonreaders))
	} else {
		row("non-readers", fmt.Sprintf("%d connections; server: %d messages dropped (OnError ErrSendBufferFull), %d OnBufferFull", f.Nonreaders, drops[kindNonreader], full[kindNonreader]))
	}
	row("slowloris", faultLine(f.Slowloris))
	row("garbage handshakes", faultLine(f.Garbage))
	row("bad frames", faultLine(f.BadFrame))
	for i, w := range s.waves {
		row(fmt.Sprintf("half-open wave %d", i), fmt.Sprintf("%s, %d peers, closed by the server: %v after %v", w.mode, w.conns, w.detected, w.took.Round(time.Millisecond)))
	}
	if s.restart.done {
		row("restart", fmt.Sprintf("%d connections frozen and killed; listening again after %v; all long-lived clients back after %v",
			s.restart.frozenConns, s.restart.readyAt.Sub(s.restart.killAt).Round(time.Millisecond), s.restart.reconnected.Round(time.Millisecond)))
	}
	if s.cpuTotal > 0 {
		row("CPU during the faults", fmt.Sprintf("machine %.0f%% busy, %.0f%% of it by the suite's processes (the rest is other work on this machine)",
			100*float64(s.cpuBusy)/float64(s.cpuTotal), 100*float64(s.cpuSuite)/float64(max(s.cpuBusy, 1))))
	}
	if n := sb.Broadcasts + se.Broadcasts; n > 0 {
		row("server timing", fmt.Sprintf("Worker.Broadcast to every connection: mean %.1f ms, slowest %.1f ms; a round of unicast pushes: mean %.1f ms, slowest %.1f ms",
			float64(sb.BroadcastNs+se.BroadcastNs)/float64(n)/1e6, float64(max(sb.BroadcastMaxNs, se.BroadcastMaxNs))/1e6,
			float64(sb.TickNs+se.TickNs)/float64(max(1, sb.Ticks+se.Ticks))/1e6, float64(max(sb.TickMaxNs, se.TickMaxNs))/1e6))
		if all := sb.BroadcastAllNs + se.BroadcastAllNs; all > 0 {
			// Where a broadcast's time goes: each loopback write runs the
			// TCP path of both ends in the writer's thread, and the
			// receivers need the same cores to read.
			row("broadcast CPU", fmt.Sprintf("the server's CPU time during a Worker.Broadcast: mean %.1f ms (%.1f us per connection); the machine was %.0f%% busy meanwhile (%d cores)",
				float64(sb.BroadcastCPUNs+se.BroadcastCPUNs)/float64(n)/1e6,
				float64(sb.BroadcastCPUNs+se.BroadcastCPUNs)/float64(max(1, sb.BroadcastTaken+se.BroadcastTaken))/1e3,
				100*float64(sb.BroadcastBusyNs+se.BroadcastBusyNs)/float64(all), runtime.NumCPU()))
		}
	}
	if push {
		backend.errMu.Lock()
		row("server errors", fmt.Sprintf("n/a (push server: not exposed); the backend's API errors %v, %d calls answered 404 (client gone)", backend.apiErrs, backend.notFound.Load()))
		backend.errMu.Unlock()
	} else {
		row("server errors", fmt.Sprintf("heartbeat timeouts %v, handshake timeouts %d, bad handshakes %d, close codes %v, other %v", hb, hsTimeouts, badHS, closeErrs, other))
	}
	tw.Flush()
	fmt.Fprintln(out)

	row("delivery to well-behaved clients", "")
	if push {
		row("messages sent by the backend", fmt.Sprintf("%d unicast (sendToClient answered 200), %d broadcasts (sendToAll), %d byes answered", backend.unicastSent.Load(), backend.broadcasts.Load(), backend.byes.Load()))
	} else {
		row("messages sent by the server", fmt.Sprintf("%d unicast (Send accepted), %d broadcasts", sent, bcasts))
	}
	row("messages received", fmt.Sprintf("%d unicast, %d broadcast", t.unicast, t.broadcast))
	if push {
		row("connections checked exactly", fmt.Sprintf("%d against the answer to bye; %d ended by the kill checked as a prefix of what the backend sent (%d unicasts lost with the server), %d more not yet known to the backend", t.verified, atRestart, s.pushLost, unregistered))
	} else {
		row("connections checked exactly", fmt.Sprintf("%d against the answer to bye, %d against the server's report at the kill (%d more killed before registration)", t.verified, atRestart, unregistered))
	}
	row("connections checked for order only", fmt.Sprintf("%d that ended with their own RST", t.resets))
	row("violations", fmt.Sprint(t.violations))
	tw.Flush()
	for _, v := range t.samples {
		fmt.Fprintln(out, "  ", v)
	}
	fmt.Fprintln(out)

	row("latency (send to receipt)", "n", "p50", "p90", "p99", "p99.9", "max")
	for ph := range nPhases {
		var h hist
		h.merge(t.lat[0][ph])
		h.merge(t.lat[1][ph])
		latRow(row, phaseNames[ph]+", all", h)
	}
	latRow(row, "faults, unicast", t.lat[0][phaseFaults])
	latRow(row, "faults, broadcast", t.lat[1][phaseFaults])
	tw.Flush()
	fmt.Fprintln(out)

	row("server", "before faults", "during (peak)", "after", "change", "tolerance")
	row("RSS", human(s.before.RSS), human(s.peak.RSS), human(s.after.RSS), pct(s.after.RSS, s.before.RSS), fmt.Sprintf("+%.0f%% (at least +%s)", o.tolerance*100, human(o.rssSlack)))
	row("  of which anonymous", human(s.before.RSSAnon), "", human(s.after.RSSAnon), pct(s.after.RSSAnon, s.before.RSSAnon), "")
	if !push { // the push server does not tell its heap
		row("  Go heap in use", human(s.before.HeapInuse), human(s.peak.HeapInuse), human(s.after.HeapInuse), pct(s.after.HeapInuse, s.before.HeapInuse), "")
		row("    of which live objects", human(s.before.HeapAlloc), "", human(s.after.HeapAlloc), pct(s.after.HeapAlloc, s.before.HeapAlloc), "")
		row("    heap objects", fmt.Sprint(s.before.HeapObjs), "", fmt.Sprint(s.after.HeapObjs), pct(s.after.HeapObjs, s.before.HeapObjs), "")
		row("    free room in its spans", human(s.before.HeapUnused), "", human(s.after.HeapUnused), pct(s.after.HeapUnused, s.before.HeapUnused), "(fragmentation)")
		row("  Go heap free, not released", human(s.before.HeapFree), "", human(s.after.HeapFree), pct(s.after.HeapFree, s.before.HeapFree), "")
		row("  runtime metadata", human(s.before.Metadata), "", human(s.after.Metadata), pct(s.after.Metadata, s.before.Metadata), "(span descriptors, GC and page metadata)")
		row("    of which span descriptors", human(s.before.SpanMeta), "", human(s.after.SpanMeta), pct(s.after.SpanMeta, s.before.SpanMeta), "(as many as the heap ever had spans)")
		row("  goroutine stacks", human(s.before.StackInuse), "", human(s.after.StackInuse), pct(s.after.StackInuse, s.before.StackInuse), "")
		row("    OS threads", fmt.Sprint(s.before.Threads), "", fmt.Sprint(s.after.Threads), pct(s.after.Threads, s.before.Threads), "(each keeps 48 KiB of stacks)")
	}
	if push {
		row("goroutines", "n/a", "n/a", "n/a", "", "(the push server does not expose them)")
	} else {
		row("goroutines", fmt.Sprint(s.before.Goroutines), fmt.Sprint(s.peak.Goroutines), fmt.Sprint(s.after.Goroutines), pct(int64(s.after.Goroutines), int64(s.before.Goroutines)), fmt.Sprintf("+%.0f%%", o.tolerance*100))
		row("  most at once in the process", fmt.Sprint(s.before.GoPeak), "", fmt.Sprint(s.after.GoPeak), pct(s.after.GoPeak, s.before.GoPeak), "(sampled every 10 ms; about 500 B each stay)")
	}
	row("open fds", fmt.Sprint(s.before.FDs), fmt.Sprint(s.peak.FDs), fmt.Sprint(s.after.FDs), pct(int64(s.after.FDs), int64(s.before.FDs)), fmt.Sprintf("+%.0f%%", o.tolerance*100))
	row("connections", fmt.Sprint(s.before.Conns), fmt.Sprint(s.peak.Conns), fmt.Sprint(s.after.Conns), "", "")
	tw.Flush()
	fmt.Fprintln(out)

	verdict := "MET"
	if !budgetMet {
		verdict = "MISSED"
	}
	fmt.Fprintf(out, "latency budget %s: %s (at %d long-lived clients)\n\n", verdict, budgetLine, o.clients)

	failed := 0
	for _, c := range checks {
		res := "PASS"
		if c.na {
			res = "N/A"
		}
		if !c.ok {
			res = "FAIL"
			failed++
		}
		row(res, c.name, c.detail)
	}
	tw.Flush()
	if failed > 0 {
		fmt.Fprintf(out, "\nsoak: FAIL: %d of %d checks failed\n", failed, len(checks))
		return 1
	}
	fmt.Fprintf(out, "\nsoak: PASS: %d checks\n", len(checks))
	return 0
}

func latRow(row func(...string), name string, h hist) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
	row(name, fmt.Sprint(h.N), ms(h.quantile(0.5)), ms(h.quantile(0.9)), ms(h.quantile(0.99)), ms(h.quantile(0.999)), ms(time.Duration(h.MaxNs)))
}

func faultLine(f faultStat) string {
	var st []string
	for k, v := range f.Statuses {
		st = append(st, fmt.Sprintf("%q ×%d", k, v))
	}
	sort.Strings(st)
	return fmt.Sprintf("%d started, %d cut by the restart, %d closed by the server in time (slowest %v), %d late, %d upgraded; %s",
		f.Started, f.Restart, f.Closed, time.Duration(f.MaxNs).Round(time.Millisecond), f.Late, f.Got101, strings.Join(st, ", "))
}
