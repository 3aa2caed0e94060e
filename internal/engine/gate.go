package engine

import "sync"

// pauseGate is the pause switch of the goroutine-driven listeners: their
// goroutines wait at it while it is paused.
type pauseGate struct {
	mu     sync.Mutex
	paused bool
	resume chan struct{} // closed, and replaced, when a pause ends
}

func newPauseGate(paused bool) pauseGate {
	return pauseGate{paused: paused, resume: make(chan struct{})}
}

func (g *pauseGate) setPaused(p bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused == p {
		return
	}
	g.paused = p
	if !p {
		close(g.resume)
		g.resume = make(chan struct{})
	}
}

// wait blocks while the gate is paused, unless closed says to give up.
// Whoever makes closed true must then unpause, to wake the waiters.
func (g *pauseGate) wait(closed func() bool) {
	for {
		g.mu.Lock()
		paused, ch := g.paused, g.resume
		g.mu.Unlock()
		if !paused || closed() {
			return
		}
		<-ch
	}
}
