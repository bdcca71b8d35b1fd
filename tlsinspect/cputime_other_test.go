//go:build !unix

package tlsinspect

import "time"

// processCPU is unavailable here; benchmarks then omit cpu-ns/op.
func processCPU() time.Duration { return 0 }
