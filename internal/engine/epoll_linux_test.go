//go:build linux

package engine

import (
	"testing"
)

// A burst of tasks (thousands of accepted connections handed to a loop at
// once) leaves no task list sized for it behind.
func TestLoopTaskListsShrinkAfterABurst(t *testing.T) {
	e := &loopEngine{cfg: Config{}.withDefaults()}
	l := &loop{e: e, listeners: make(map[int]*fdListener)}
	if err := l.setupEpoll(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.release)
	run := func(n int) {
		for range n {
			l.post(task{kind: taskPauseListen, fd: -1}) // no such listener: nothing to do
		}
		l.runTasks() // the loop is not running: this test is its goroutine
	}
	run(5000)
	if c := cap(l.spare); c > maxSpareTasks {
		t.Fatalf("after a burst of 5000 tasks the spare list keeps room for %d", c)
	}
	run(maxSpareTasks / 2)
	run(maxSpareTasks / 2)
	if c := cap(l.spare) + cap(l.tasks); c > 2*maxSpareTasks {
		t.Fatalf("the task lists keep room for %d tasks", c)
	}
}

func (c *fdConn) queueMemory() (queued, held int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.out == nil {
		return 0, 0
	}
	return c.out.off + c.out.len(), c.out.held()
}
