package workerman

import (
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

// TimerSet is a set of timers, Workerman's Timer class. Timer is the
// process-wide set; a program may make its own with new(TimerSet).
//
// A timer's callback runs on a goroutine of its own, concurrently with
// connection callbacks: guard shared state as in any Go program. A
// persistent timer never runs its callback twice at the same time: the next
// run is due one interval after the previous one was due, or at once when
// the callback took longer than the interval.
type TimerSet struct {
	// Logger receives panics of timer callbacks (default slog.Default()).
	Logger *slog.Logger

	mu     sync.Mutex
	lastID int
	timers map[int]*timerEntry
}

// Timer is the process-wide TimerSet (Workerman's static Timer). RunAll
// deletes its timers when it stops the workers, as Workerman's stopAll does.
var Timer = new(TimerSet)

type timerEntry struct {
	t          *time.Timer
	interval   time.Duration
	fn         func()
	persistent bool
	due        time.Time
	removed    bool
}

// Add calls fn after interval, and every interval after that when
// persistent is true (Workerman's Timer::add). It returns the timer's ID for
// Del. It panics if interval is not positive, as time.NewTicker does.
func (s *TimerSet) Add(interval time.Duration, fn func(), persistent bool) int {
	if interval <= 0 {
		panic("workerman: Timer.Add needs a positive interval")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timers == nil {
		s.timers = make(map[int]*timerEntry)
	}
	s.lastID++
	id := s.lastID
	e := &timerEntry{interval: interval, fn: fn, persistent: persistent, due: time.Now().Add(interval)}
	e.t = time.AfterFunc(interval, func() { s.fire(id, e) })
	s.timers[id] = e
	return id
}

func (s *TimerSet) fire(id int, e *timerEntry) {
	s.mu.Lock()
	if e.removed {
		s.mu.Unlock()
		return
	}
	if !e.persistent {
		e.removed = true
		delete(s.timers, id)
	}
	s.mu.Unlock()

	func() {
		defer func() {
			if v := recover(); v != nil {
				log := s.Logger
				if log == nil {
					log = slog.Default()
				}
				log.Error("workerman: timer callback panicked", "timer", id, "panic", v, "stack", string(debug.Stack()))
			}
		}()
		e.fn()
	}()

	if !e.persistent {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.removed {
		return
	}
	now := time.Now()
	e.due = e.due.Add(e.interval)
	if e.due.Before(now) {
		e.due = now
	}
	e.t.Reset(e.due.Sub(now))
}

// Del stops timer id (Workerman's Timer::del). It reports whether the timer
// existed. A callback already running finishes.
func (s *TimerSet) Del(id int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.timers[id]
	if !ok {
		return false
	}
	e.removed = true
	e.t.Stop()
	delete(s.timers, id)
	return true
}

// DelAll stops every timer of the set (Workerman's Timer::delAll).
func (s *TimerSet) DelAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, e := range s.timers {
		e.removed = true
		e.t.Stop()
		delete(s.timers, id)
	}
}

// Count is the number of active timers.
func (s *TimerSet) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.timers)
}
