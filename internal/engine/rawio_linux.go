package engine

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The socket I/O of the loops and of direct writes, as raw system calls:
//
//   - Raw: the sockets are non-blocking, so a call cannot block and
//     nothing is gained by telling the scheduler about it, while much is
//     lost: a loopback write runs the receiver's TCP path in the writer's
//     thread (several microseconds), long enough for sysmon to take the P
//     away (handoff, a thread woken, then parked again on return).
//     The same holds for the loop's other calls that cannot block (an
//     epoll_wait that does not wait, the eventfd's counter): a call made
//     through the scheduler also wakes sysmon from the sleep it takes
//     while every P is idle (in a process whose loops are parked, each
//     time one wakes), and sysmon then wakes every 20 microseconds for a
//     millisecond, each time taking the loop's CPU from it for a moment
//     (on a busy machine, a context switch each).
//   - send, sendmsg and recv rather than write, writev and read: the
//     socket calls skip the file layer (the file position lock, the
//     access checks, fsnotify), a tenth of the kernel's time per push to
//     a connection. MSG_NOSIGNAL: a peer gone is EPIPE, not a signal.

// rawWrite writes p with one send(2).
func rawWrite(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)),
		unix.MSG_NOSIGNAL, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// rawWritev writes bufs with one sendmsg(2), building the iovecs in *iovs
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
	msg := unix.Msghdr{Iov: &v[0]}
	msg.SetIovlen(len(v))
	n, _, e := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), unix.MSG_NOSIGNAL)
	clear(v) // keep no buffer alive
	*iovs = v[:0]
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// rawRead reads into p with one recv(2); -1 with the error.
func rawRead(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// rawEpollPoll returns the events ready in the epoll set epfd, without
// waiting.
func rawEpollPoll(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// eventfdAdd adds one to the counter of the eventfd fd, which is
// non-blocking.
func eventfdAdd(fd int) {
	one := uint64(1)
	unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&one)), 8)
}

// eventfdDrain resets the counter of the eventfd fd, which is
// non-blocking.
func eventfdDrain(fd int) {
	var n uint64
	unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&n)), 8)
}
