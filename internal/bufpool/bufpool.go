// Package bufpool keeps byte buffers in power-of-two size classes so that the
// hot paths (packets handed to callbacks, encoded frames, queued output) reuse
// memory instead of allocating per message.
//
// Buffers are handled as *[]byte so that putting one back does not allocate.
// A buffer whose capacity is not exactly a class size (grown by append, or
// larger than the biggest class) is left to the garbage collector.
package bufpool

import (
	"math/bits"
	"sync"
)

const (
	minShift = 6  // 64 B
	maxShift = 20 // 1 MiB
)

var classes [maxShift - minShift + 1]sync.Pool

// Get returns a buffer with len(*b) == n. Its contents are undefined.
func Get(n int) *[]byte {
	if n < 0 {
		panic("bufpool: negative size")
	}
	c := class(n)
	if c < 0 {
		b := make([]byte, n)
		return &b
	}
	if v := classes[c].Get(); v != nil {
		b := v.(*[]byte)
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<(c+minShift))
	return &b
}

// Put returns b to its class. b must not be used afterwards.
func Put(b *[]byte) {
	if b == nil {
		return
	}
	c := class(cap(*b))
	if c < 0 || cap(*b) != 1<<(c+minShift) {
		return
	}
	*b = (*b)[:0]
	classes[c].Put(b)
}

// class returns the index of the smallest class that holds n bytes, or -1
// when n is larger than the biggest class.
func class(n int) int {
	if n <= 1<<minShift {
		return 0
	}
	s := bits.Len(uint(n - 1))
	if s > maxShift {
		return -1
	}
	return s - minShift
}
