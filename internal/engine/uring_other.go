//go:build !linux

package engine

import "errors"

// ErrUringUnavailable is returned by NewUring where the kernel (or a
// seccomp policy) refuses io_uring, and on other platforms.
var ErrUringUnavailable = errors.New("workerman: io_uring unavailable")

// NewUring returns the io_uring engine, which exists on Linux only.
func NewUring(cfg Config) (Engine, error) { return nil, ErrUringUnavailable }
