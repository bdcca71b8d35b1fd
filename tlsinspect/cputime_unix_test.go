//go:build unix

package tlsinspect

import (
	"syscall"
	"time"
)

// processCPU is user+system CPU time of this process. Benchmarks report it
// per op next to ns/op because the shared build machines are heavily
// loaded and wall time there says more about neighbours than about us.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
