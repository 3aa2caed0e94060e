package workerman

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/leakcheck"
)

func TestTimerPersistentAndDel(t *testing.T) {
	leakcheck.Check(t)
	var ts TimerSet
	ticks := make(chan int32, 100)
	var n atomic.Int32
	id := ts.Add(10*time.Millisecond, func() { ticks <- n.Add(1) }, true)
	for want := int32(1); want <= 3; want++ {
		if got := wait(t, ticks, "tick"); got != want {
			t.Fatalf("tick %d, want %d", got, want)
		}
	}
	if !ts.Del(id) {
		t.Fatal("Del of a live timer returned false")
	}
	// A tick already running may still land; after it, none.
	select {
	case <-ticks:
	default:
	}
	never(t, ticks, 50*time.Millisecond, "tick after Del")
	if ts.Del(id) {
		t.Fatal("second Del returned true")
	}
	if ts.Count() != 0 {
		t.Fatalf("Count %d", ts.Count())
	}
}

func TestTimerOnceAndDelAll(t *testing.T) {
	leakcheck.Check(t)
	var ts TimerSet
	fired := make(chan int, 10)
	ts.Add(5*time.Millisecond, func() { fired <- 1 }, false)
	wait(t, fired, "one-shot timer")
	never(t, fired, 40*time.Millisecond, "one-shot timer firing twice")
	if ts.Count() != 0 {
		t.Fatalf("a fired one-shot timer is still counted: %d", ts.Count())
	}
	for range 5 {
		ts.Add(time.Hour, func() { fired <- 2 }, true)
	}
	if ts.Count() != 5 {
		t.Fatalf("Count %d, want 5", ts.Count())
	}
	ts.DelAll()
	if ts.Count() != 0 {
		t.Fatalf("Count after DelAll %d", ts.Count())
	}
}

// A slow callback never overlaps itself and a panicking one keeps its timer.
func TestTimerNoOverlapAndPanic(t *testing.T) {
	leakcheck.Check(t)
	ts := TimerSet{Logger: quietLog()}
	var running, overlaps, runs atomic.Int32
	done := make(chan struct{})
	id := ts.Add(2*time.Millisecond, func() {
		if running.Add(1) > 1 {
			overlaps.Add(1)
		}
		time.Sleep(10 * time.Millisecond) // the callback's own work, longer than the interval
		running.Add(-1)
		if runs.Add(1) == 5 {
			close(done)
		}
		panic("timer callbacks may panic")
	}, true)
	wait(t, done, "five runs")
	ts.Del(id)
	if overlaps.Load() != 0 {
		t.Fatalf("%d overlapping runs", overlaps.Load())
	}
}

func TestTimerRejectsBadInterval(t *testing.T) {
	leakcheck.Check(t)
	defer func() {
		if recover() == nil {
			t.Fatal("Add(0) did not panic")
		}
	}()
	new(TimerSet).Add(0, func() {}, true)
}
