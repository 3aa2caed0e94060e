//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package engine

import (
	"errors"
	"syscall"
)

func reusePortControl(network, address string, rc syscall.RawConn) error {
	return errors.New("workerman: ReusePort is not supported on this platform")
}
