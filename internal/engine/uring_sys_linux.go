//go:build linux

package engine

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The few pieces of the io_uring interface the io_uring engine uses, on raw
// system calls: setup, the two mapped rings, enter, and a ring of provided
// buffers that multishot receives fill. The layouts are the kernel's
// (include/uapi/linux/io_uring.h).

const (
	iouSetupSubmitAll = 1 << 7
	iouSetupCQSize    = 1 << 3

	iouFeatSingleMmap = 1 << 0
	iouFeatNoDrop     = 1 << 1

	iouEnterGetEvents = 1 << 0

	iouOffSQRing = 0
	iouOffCQRing = 0x8000000
	iouOffSQEs   = 0x10000000

	iouOpNop         = 0
	iouOpPollAdd     = 6
	iouOpAsyncCancel = 14
	iouOpSend        = 26
	iouOpRecv        = 27

	iosqeBufferSelect = 1 << 5

	iouPollAddMulti      = 1 << 0
	iouRecvMultishot     = 1 << 1
	iouAsyncCancelAll    = 1 << 0
	iouAsyncCancelAny    = 1 << 2
	iouEnterExtArg       = 1 << 3
	iouCQEFBuffer        = 1 << 0
	iouCQEFMore          = 1 << 1
	iouCQEBufferShift    = 16
	iouRegisterEventfd   = 4
	iouRegisterPbufRing  = 22
	iouRegisterPbufUnreg = 23
)

type iouSQRingOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type iouCQRingOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type iouParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  iouSQRingOffsets
	cqOff                                                                  iouCQRingOffsets
}

// iouSQE is struct io_uring_sqe (64 bytes).
type iouSQE struct {
	opcode   uint8
	flags    uint8
	ioprio   uint16
	fd       int32
	off      uint64
	addr     uint64
	len      uint32
	opFlags  uint32
	userData uint64
	bufGroup uint16
	pers     uint16
	spliceFD int32
	addr3    uint64
	_        uint64
}

// iouCQE is struct io_uring_cqe (16 bytes).
type iouCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

type iouBufReg struct {
	ringAddr    uint64
	ringEntries uint32
	bgid        uint16
	flags       uint16
	resv        [3]uint64
}

// iouBuf is struct io_uring_buf; the tail of a buffer ring overlays the
// last field of its first entry.
type iouBuf struct {
	addr uint64
	len  uint32
	bid  uint16
	resv uint16
}

var (
	_ [64]byte  = [unsafe.Sizeof(iouSQE{})]byte{}
	_ [16]byte  = [unsafe.Sizeof(iouCQE{})]byte{}
	_ [120]byte = [unsafe.Sizeof(iouParams{})]byte{}
	_ [40]byte  = [unsafe.Sizeof(iouBufReg{})]byte{}
)

// ring is one io_uring instance, owned by its loop's goroutine.
type ring struct {
	fd       int
	sqMem    []byte
	cqMem    []byte // == sqMem with a single mapping
	sqeMem   []byte
	sqHead   *uint32
	sqTail   *uint32
	sqFlags  *uint32
	sqMask   uint32
	sqes     []iouSQE
	cqHead   *uint32
	cqTail   *uint32
	cqMask   uint32
	cqes     []iouCQE
	tail     uint32 // local SQ tail, published by flush
	toSubmit uint32
}

// iouSetup is io_uring_setup(2); tests replace it to play a kernel that
// refuses io_uring.
var iouSetup = func(entries uint32, p *iouParams) (int, error) {
	fd, _, e := unix.RawSyscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(p)), 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

// newRing sets up a ring with entries submission slots and cqEntries
// completion slots.
func newRing(entries, cqEntries uint32) (*ring, error) {
	var (
		p   iouParams
		fd  int
		err error
	)
	// No deferred or cooperative task running: the loops park in the
	// netpoller, not in io_uring_enter, and the kernel must run the
	// receives' task work (interrupting the submitting thread) without
	// waiting for the loop to enter.
	for _, flags := range []uint32{iouSetupSubmitAll | iouSetupCQSize, iouSetupCQSize} {
		p = iouParams{flags: flags, cqEntries: cqEntries}
		fd, err = iouSetup(entries, &p)
		if err != unix.EINVAL {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("workerman: io_uring_setup: %w", err)
	}
	if p.features&iouFeatSingleMmap == 0 || p.features&iouFeatNoDrop == 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("workerman: io_uring: kernel too old: %w", unix.ENOSYS)
	}
	r := &ring{fd: fd}
	sqSize := int(p.sqOff.array + p.sqEntries*4)
	cqSize := int(p.cqOff.cqes + p.cqEntries*uint32(unsafe.Sizeof(iouCQE{})))
	size := max(sqSize, cqSize)
	r.sqMem, err = unix.Mmap(fd, iouOffSQRing, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("workerman: io_uring mmap: %w", err)
	}
	r.cqMem = r.sqMem
	r.sqeMem, err = unix.Mmap(fd, iouOffSQEs, int(p.sqEntries)*int(unsafe.Sizeof(iouSQE{})),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		unix.Munmap(r.sqMem)
		unix.Close(fd)
		return nil, fmt.Errorf("workerman: io_uring mmap: %w", err)
	}
	base := unsafe.Pointer(&r.sqMem[0])
	r.sqHead = (*uint32)(unsafe.Add(base, p.sqOff.head))
	r.sqTail = (*uint32)(unsafe.Add(base, p.sqOff.tail))
	r.sqFlags = (*uint32)(unsafe.Add(base, p.sqOff.flags))
	r.sqMask = *(*uint32)(unsafe.Add(base, p.sqOff.ringMask))
	array := unsafe.Slice((*uint32)(unsafe.Add(base, p.sqOff.array)), p.sqEntries)
	for i := range array {
		array[i] = uint32(i) // slot i of the array is always SQE i
	}
	r.sqes = unsafe.Slice((*iouSQE)(unsafe.Pointer(&r.sqeMem[0])), p.sqEntries)
	r.cqHead = (*uint32)(unsafe.Add(base, p.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(base, p.cqOff.tail))
	r.cqMask = *(*uint32)(unsafe.Add(base, p.cqOff.ringMask))
	r.cqes = unsafe.Slice((*iouCQE)(unsafe.Add(base, p.cqOff.cqes)), p.cqEntries)
	r.tail = atomic.LoadUint32(r.sqTail)
	return r, nil
}

func (r *ring) close() {
	unix.Munmap(r.sqeMem)
	unix.Munmap(r.sqMem)
	unix.Close(r.fd)
}

// sqe returns the next free submission slot, zeroed, entering the kernel
// to submit what is pending when the ring is full.
func (r *ring) sqe() *iouSQE {
	for r.tail-atomic.LoadUint32(r.sqHead) > r.sqMask {
		r.enter(0)
	}
	s := &r.sqes[r.tail&r.sqMask]
	*s = iouSQE{}
	r.tail++
	r.toSubmit++
	return s
}

// enter publishes the pending submissions and submits them, without
// waiting. It reports errors other than an interruption.
func (r *ring) enter(uint32) error {
	atomic.StoreUint32(r.sqTail, r.tail)
	for {
		// Raw: submitting never blocks (see rawio_linux.go).
		n, _, e := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(r.toSubmit), 0, 0, 0, 0)
		if e == 0 {
			r.toSubmit -= min(uint32(n), r.toSubmit)
			if r.toSubmit == 0 {
				return nil
			}
			continue
		}
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN, unix.EBUSY:
			// Completions must be reaped first (the caller does).
			return nil
		}
		return e
	}
}

// wait submits what is pending and blocks until a completion is ready or
// d has passed (used when a loop stops, never on its hot path).
func (r *ring) wait(d time.Duration) {
	atomic.StoreUint32(r.sqTail, r.tail)
	ts := unix.NsecToTimespec(d.Nanoseconds())
	arg := struct {
		sigmask   uint64
		sigmaskSz uint32
		minWait   uint32
		ts        uint64
	}{ts: uint64(uintptr(unsafe.Pointer(&ts)))}
	n, _, e := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(r.toSubmit), 1,
		iouEnterGetEvents|iouEnterExtArg, uintptr(unsafe.Pointer(&arg)), unsafe.Sizeof(arg))
	if e == 0 {
		r.toSubmit -= min(uint32(n), r.toSubmit)
	}
	runtime.KeepAlive(&ts)
}

// cancelsAll tells whether the kernel cancels as the loops need (every
// match, or anything, and completions of successful requests skipped:
// Linux 5.19): a cancel of anything, which finds nothing, must complete
// with a count, a no-op that skips its completion must post none. Both
// complete inside the submitting call.
func (r *ring) cancelsAll() bool {
	s := r.sqe()
	s.opcode = iouOpAsyncCancel
	s.fd = -1
	s.opFlags = iouAsyncCancelAll | iouAsyncCancelAny
	s.userData = 1
	s = r.sqe()
	s.opcode = iouOpNop
	s.flags = iosqeCQESkipSuc
	s.userData = 2
	if r.enter(0) != nil {
		return false
	}
	ok := false
	for cqe := r.peek(); cqe != nil; cqe = r.peek() {
		ud, res := cqe.userData, cqe.res
		r.advance()
		switch ud {
		case 1:
			ok = res >= 0
		case 2:
			return false // the flag was refused, or ignored
		}
	}
	return ok
}

// iouSQCQOverflow is IORING_SQ_CQ_OVERFLOW: completions wait in the kernel
// for room in the completion queue.
const iouSQCQOverflow = 1 << 1

// flushOverflow moves the completions that did not fit the completion
// queue into it, if there are any, and reports whether there were
// (without blocking; the caller reaps them).
func (r *ring) flushOverflow() bool {
	if atomic.LoadUint32(r.sqFlags)&iouSQCQOverflow == 0 {
		return false
	}
	unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), 0, 0, iouEnterGetEvents, 0, 0)
	return true
}

// peek returns the next completion, if any; advance releases it.
func (r *ring) peek() *iouCQE {
	head := *r.cqHead // only we write it
	if head == atomic.LoadUint32(r.cqTail) {
		return nil
	}
	return &r.cqes[head&r.cqMask]
}

func (r *ring) advance() {
	atomic.StoreUint32(r.cqHead, *r.cqHead+1)
}

// bufRing is a ring of equal buffers the kernel picks from for multishot
// receives (group 0). A buffer goes back to the ring once its bytes were
// handed over.
type bufRing struct {
	mem     []byte // the ring of iouBuf entries
	data    []byte // the buffers, size bytes each
	entries []iouBuf
	size    int
	tail    uint16
	mask    uint16
}

func newBufRing(r *ring, count, size int, flags uint16) (*bufRing, error) {
	mem, err := unix.Mmap(-1, 0, count*int(unsafe.Sizeof(iouBuf{})), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, err
	}
	data, err := unix.Mmap(-1, 0, count*size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		unix.Munmap(mem)
		return nil, err
	}
	b := &bufRing{
		mem:     mem,
		data:    data,
		entries: unsafe.Slice((*iouBuf)(unsafe.Pointer(&mem[0])), count),
		size:    size,
		mask:    uint16(count - 1),
	}
	reg := iouBufReg{ringAddr: uint64(uintptr(unsafe.Pointer(&mem[0]))), ringEntries: uint32(count), flags: flags}
	_, _, e := unix.RawSyscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), iouRegisterPbufRing,
		uintptr(unsafe.Pointer(&reg)), 1, 0, 0)
	if e != 0 {
		b.free()
		return nil, fmt.Errorf("workerman: io_uring buffer ring: %w", e)
	}
	for i := range count {
		b.put(uint16(i))
	}
	b.publish()
	return b, nil
}

// buf returns buffer id's first n bytes.
func (b *bufRing) buf(id uint16, n int) []byte {
	off := int(id) * b.size
	return b.data[off : off+n : off+b.size]
}

// put queues buffer id for the kernel; publish hands the queued ones over.
func (b *bufRing) put(id uint16) {
	e := &b.entries[b.tail&b.mask]
	e.addr = uint64(uintptr(unsafe.Pointer(&b.data[int(id)*b.size])))
	e.len = uint32(b.size)
	e.bid = id
	b.tail++
}

func (b *bufRing) publish() {
	// The tail overlays entry 0's last field; the kernel reads it (with
	// acquire) from whatever thread runs a receive, so store it with
	// release, after the entries: one 32-bit store of entry 0's buffer id,
	// unchanged, and the tail.
	var w [4]byte
	binary.NativeEndian.PutUint16(w[0:], b.entries[0].bid)
	binary.NativeEndian.PutUint16(w[2:], b.tail)
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&b.entries[0].bid)), binary.NativeEndian.Uint32(w[:]))
}

// registerEventfd has the kernel signal fd when it posts completions.
func (r *ring) registerEventfd(fd int) error {
	v := int32(fd)
	_, _, e := unix.RawSyscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), iouRegisterEventfd,
		uintptr(unsafe.Pointer(&v)), 1, 0, 0)
	if e != 0 {
		return fmt.Errorf("workerman: io_uring eventfd: %w", e)
	}
	return nil
}

// unregister takes the ring of buffers back from the kernel.
func (b *bufRing) unregister(r *ring) {
	reg := iouBufReg{}
	unix.RawSyscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), iouRegisterPbufUnreg,
		uintptr(unsafe.Pointer(&reg)), 1, 0, 0)
}

func (b *bufRing) free() {
	unix.Munmap(b.mem)
	unix.Munmap(b.data)
}
