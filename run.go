package workerman

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"slices"
	"sort"
	"sync"
	"syscall"
)

// The process-wide list of workers, Workerman's Worker::$workers.
var (
	globalMu sync.Mutex
	declared []*Worker            // made with NewWorker, started by RunAll
	running  = map[*Worker]bool{} // started and not yet stopped
	stopAll  chan struct{}        // closed by StopAll while RunAll runs
)

func declare(w *Worker) {
	globalMu.Lock()
	declared = append(declared, w)
	globalMu.Unlock()
}

// setRunning lists or unlists w. A worker is unlisted once stopped, when
// its figures are final: they move to stoppedStats at the same time, so
// that ProcessStats counts them once and never goes down.
func setRunning(w *Worker, on bool) {
	var final Stats
	if !on {
		final = w.Stats()
		// Nothing is open or queued any more, unless a callback blocked
		// the stop: those connections are no longer the process's.
		final.Connections, final.PoolQueued = 0, 0
	}
	globalMu.Lock()
	if on {
		running[w] = true
	} else if running[w] {
		delete(running, w)
		stoppedStats.add(final)
	}
	globalMu.Unlock()
}

// RunAll starts every worker made with NewWorker that is not running yet,
// then blocks until SIGINT or SIGTERM (or StopAll), and stops every running
// worker gracefully, each within its StopTimeout. Workers started later with
// Listen (from an OnWorkerStart, say) are stopped too.
func RunAll() error {
	return RunAllContext(context.Background())
}

// RunAllContext is RunAll that also stops when ctx is done. It is the way
// to run workers from a program that handles signals itself.
func RunAllContext(ctx context.Context) error {
	return runAll(ctx, nil)
}

// runAll is RunAllContext; started, when set, is called once every worker
// listens, before it blocks.
func runAll(ctx context.Context, started func()) error {
	ctx, cancel := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer cancel()

	globalMu.Lock()
	if stopAll != nil {
		globalMu.Unlock()
		return errors.New("workerman: RunAll is already running")
	}
	stop := make(chan struct{})
	stopAll = stop
	todo := append([]*Worker(nil), declared...)
	globalMu.Unlock()
	defer func() {
		globalMu.Lock()
		stopAll = nil
		globalMu.Unlock()
	}()

	var err error
	for _, w := range todo {
		w.mu.Lock()
		idle := w.state == stateIdle
		w.mu.Unlock()
		if !idle {
			continue
		}
		if err = w.Listen(); err != nil {
			break
		}
	}
	if err == nil {
		if started != nil {
			started()
		}
		select {
		case <-ctx.Done():
		case <-stop:
		}
	}
	err = errors.Join(err, stopRunning())
	Timer.DelAll()
	return err
}

// StopAll asks every running worker to stop gracefully and returns at once;
// RunAll returns when they have stopped. It may be called from a callback.
func StopAll() {
	globalMu.Lock()
	defer globalMu.Unlock()
	if stopAll != nil {
		select {
		case <-stopAll:
		default:
			close(stopAll)
		}
		return
	}
	go stopRunning()
}

// stopRunning closes every AsyncConnection and stops every running worker
// concurrently, and waits.
func stopRunning() error {
	closeAsyncs()
	ws := runningWorkers()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), w.stopTimeout())
			defer cancel()
			if err := w.Shutdown(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// runningWorkers lists the running workers in the order they started.
func runningWorkers() []*Worker {
	globalMu.Lock()
	ws := make([]*Worker, 0, len(running))
	for w := range running {
		ws = append(ws, w)
	}
	globalMu.Unlock()
	sort.Slice(ws, func(i, j int) bool { return ws[i].startTime().Before(ws[j].startTime()) })
	return ws
}

// AllWorkers returns every worker made with NewWorker and every worker
// running (started with Listen): Workerman's Worker::getAllWorkers().
func AllWorkers() []*Worker {
	globalMu.Lock()
	all := append([]*Worker(nil), declared...)
	globalMu.Unlock()
	for _, w := range runningWorkers() {
		if !slices.Contains(all, w) {
			all = append(all, w)
		}
	}
	return all
}
