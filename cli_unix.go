//go:build unix

package workerman

import (
	"os"
	"os/signal"
	"syscall"
)

// daemonAttr detaches the daemon from the terminal's session.
func daemonAttr() (*syscall.SysProcAttr, error) {
	return &syscall.SysProcAttr{Setsid: true}, nil
}

// signalStop asks the server to stop: SIGTERM, or SIGQUIT for a graceful
// stop (Workerman's signals).
func signalStop(pid int, graceful bool) error {
	sig := syscall.SIGTERM
	if graceful {
		sig = syscall.SIGQUIT
	}
	return syscall.Kill(pid, sig)
}

// notifyGraceful delivers SIGQUIT, the graceful stop, to ch.
func notifyGraceful(ch chan<- os.Signal) {
	signal.Notify(ch, syscall.SIGQUIT)
}
