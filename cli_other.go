//go:build !unix

package workerman

import (
	"errors"
	"os"
	"syscall"
)

var errCLIPlatform = errors.New("workerman: not supported on this platform (run in the foreground and stop with Ctrl+C)")

func daemonAttr() (*syscall.SysProcAttr, error) { return nil, errCLIPlatform }

func signalStop(pid int, graceful bool) error { return errCLIPlatform }

func notifyGraceful(chan<- os.Signal) {}
