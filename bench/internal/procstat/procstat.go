// Package procstat reads a process's resident memory and CPU time from
// /proc (Linux).
package procstat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// RSS is the resident set size of process pid in bytes (VmRSS), 0 if it
// cannot be read.
func RSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// clockTicks is USER_HZ on Linux.
const clockTicks = 100

// CPU is the CPU time (user and system, all threads) process pid used.
func CPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// utime and stime are fields 14 and 15 of the line, 12 and 13 after
	// the ")" that ends the command name.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks
}
