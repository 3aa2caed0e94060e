//go:build linux

package engine

import (
	"testing"
	"time"
)

// A loop naps before parking only after it handled events and only while
// its parks are short; one nap per batch it handled, a park after a nap
// that found nothing, and a park at least every coalesceBusy.
func TestCoalescerNapsOnlyWhereTrafficIsDense(t *testing.T) {
	var c coalescer
	c.dense, c.handled = true, true
	if c.nap() {
		t.Fatal("a loop that never parked napped: it must park first")
	}
	// A short park: dense.
	c.parkedAt = time.Now()
	c.woke()
	if !c.dense {
		t.Fatal("a park shorter than coalesceDense did not count as dense")
	}
	if c.nap() {
		t.Fatal("napped with nothing handled")
	}
	c.woke() // it parked: woken at once, still dense
	c.handled = true
	if !c.nap() {
		t.Fatal("did not nap after handling input in dense traffic")
	}
	if c.nap() {
		t.Fatal("napped again although the nap found nothing")
	}
	// Dense traffic, but the loop has not parked for coalesceBusy: it
	// parks, so that the scheduler polls the network for other goroutines.
	c.parkedAt = time.Now()
	c.woke()
	c.parkedAt = time.Now().Add(-coalesceBusy)
	c.handled = true
	if c.nap() {
		t.Fatal("napped although the loop has not parked for coalesceBusy")
	}
	// A long park: sparse.
	c.parkedAt = time.Now().Add(-coalesceDense)
	c.woke()
	c.handled = true
	if c.nap() {
		t.Fatal("napped after a long park: sparse traffic must park at once")
	}
}
