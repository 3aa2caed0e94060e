//go:build linux

package engine

import (
	"testing"
	"time"
)

// A loop waits before parking only after it handled events and only while
// its parks are short; one wait per batch it handled, a park after a wait
// that found nothing, and a park at least every coalesceBusy.
func TestCoalescerWaitsOnlyWhereTrafficIsDense(t *testing.T) {
	var c coalescer
	c.handled = true
	if c.linger() {
		t.Fatal("a loop that never parked counts as busy: it must park first")
	}
	// A short park: dense.
	c.parkedAt = time.Now()
	c.woke()
	if !c.dense {
		t.Fatal("a park shorter than coalesceDense did not count as dense")
	}
	if c.linger() {
		t.Fatal("waited with nothing handled")
	}
	c.woke() // it parked: woken at once, still dense
	c.handled = true
	start := time.Now()
	if !c.linger() {
		t.Fatal("did not wait after handling input in dense traffic")
	}
	if d := time.Since(start); d < coalesceWait {
		t.Fatalf("waited %v, less than coalesceWait", d)
	}
	if c.linger() {
		t.Fatal("waited again although the wait found nothing")
	}
	// Dense traffic, but the loop has not parked for coalesceBusy: it
	// parks, so that the scheduler polls the network for other goroutines.
	c.parkedAt = time.Now()
	c.woke()
	c.parkedAt = time.Now().Add(-coalesceBusy)
	c.handled = true
	if c.linger() {
		t.Fatal("waited although the loop has not parked for coalesceBusy")
	}
	// A long park: sparse.
	c.parkedAt = time.Now().Add(-coalesceDense)
	c.woke()
	c.handled = true
	if c.linger() {
		t.Fatal("waited after a long park: sparse traffic must park at once")
	}
}
