package load

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// maxErrorSamples keeps the report short when a proxy fails every request.
const maxErrorSamples = 5

// tally is shared by a run's workers. Counters are atomic so the progress
// line can read them; latencies are kept per worker and merged at the end.
type tally struct {
	ops    atomic.Int64
	errs   atomic.Int64
	bytes  atomic.Int64
	mu     sync.Mutex
	errSet []string
	lats   [][]time.Duration
}

func (t *tally) recordError(err error) {
	t.errs.Add(1)
	msg := err.Error()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.errSet) < maxErrorSamples && !slices.Contains(t.errSet, msg) {
		t.errSet = append(t.errSet, msg)
	}
}

func (t *tally) addLatencies(l []time.Duration) {
	t.mu.Lock()
	t.lats = append(t.lats, l)
	t.mu.Unlock()
}

// percentiles of successful operations only; zero when there were none.
type percentiles struct{ p50, p90, p99, max time.Duration }

func (t *tally) percentiles() percentiles {
	var all []time.Duration
	for _, l := range t.lats {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return percentiles{}
	}
	slices.Sort(all)
	at := func(q float64) time.Duration {
		// Nearest-rank: the smallest sample with at least q of all at or below it.
		i := int(q*float64(len(all))+0.999999) - 1
		return all[max(0, min(i, len(all)-1))]
	}
	return percentiles{p50: at(0.50), p90: at(0.90), p99: at(0.99), max: all[len(all)-1]}
}
