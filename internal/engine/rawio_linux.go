package engine

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawWrite and rawWritev are write(2) and writev(2) on a non-blocking
// socket without the runtime's system-call bookkeeping. The call cannot
// block, so nothing is gained by telling the scheduler about it, and much
// is lost: a loopback write runs the receiver's TCP path in the writer's
// thread (several microseconds), long enough for sysmon to take the P
// away (handoff, a thread woken, then parked again on return). On a push
// to thousands of connections that churn was a sixth of the server's CPU.
func rawWrite(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// rawWritev writes bufs with one writev(2), building the iovecs in *iovs
// (the caller's, reused).
func rawWritev(fd int, bufs [][]byte, iovs *[]unix.Iovec) (int, error) {
	v := (*iovs)[:0]
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		iv := unix.Iovec{Base: &b[0]}
		iv.SetLen(len(b))
		v = append(v, iv)
	}
	if len(v) == 0 {
		*iovs = v
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&v[0])), uintptr(len(v)))
	clear(v) // keep no buffer alive
	*iovs = v[:0]
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// rawRead is read(2) on a non-blocking socket, for the same reason.
func rawRead(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}
