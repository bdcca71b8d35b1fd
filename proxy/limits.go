package proxy

import (
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"

	"github.com/egressd/egressd/acl"
)

// tenantLimiter enforces each tenant's fairness budget: concurrent requests
// and tunnels, and a token bucket of new ones. State is keyed by tenant name
// so it survives a policy reload; the limits themselves are re-read from the
// policy on every acquire, so a reload changes them at once.
type tenantLimiter struct {
	mu sync.Mutex
	m  map[string]*tenantState
}

type tenantState struct {
	open    atomic.Int64
	mu      sync.Mutex
	limiter *rate.Limiter
	rate    float64
	burst   int
}

func newTenantLimiter() *tenantLimiter { return &tenantLimiter{m: make(map[string]*tenantState)} }

// acquire reserves one request or tunnel for tenant. ok is false when the
// tenant is over its budget; otherwise release must be called when done.
func (l *tenantLimiter) acquire(tenant string, lim acl.Limits) (release func(), ok bool) {
	if lim == (acl.Limits{}) {
		return func() {}, true
	}
	l.mu.Lock()
	st := l.m[tenant]
	if st == nil {
		st = &tenantState{}
		l.m[tenant] = st
	}
	l.mu.Unlock()
	if lim.Rate > 0 && !st.allow(lim) {
		return nil, false
	}
	if lim.MaxConnections > 0 {
		if st.open.Add(1) > int64(lim.MaxConnections) {
			st.open.Add(-1)
			return nil, false
		}
		return func() { st.open.Add(-1) }, true
	}
	return func() {}, true
}

func (st *tenantState) allow(lim acl.Limits) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	burst := max(lim.Burst, 1)
	if st.limiter == nil || st.rate != lim.Rate || st.burst != burst {
		st.limiter = rate.NewLimiter(rate.Limit(lim.Rate), burst)
		st.rate, st.burst = lim.Rate, burst
	}
	return st.limiter.Allow()
}
