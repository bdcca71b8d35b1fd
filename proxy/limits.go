package proxy

import (
	"sync"

	"golang.org/x/time/rate"

	"github.com/egressd/egressd/acl"
)

// tenantLimiter enforces each tenant's request budget: a token bucket of
// new requests and tunnels (open connections are capped by connCounts).
// State is keyed by tenant name
// so it survives a policy reload; the limits themselves are re-read from the
// policy on every acquire, so a reload changes them at once.
type tenantLimiter struct {
	mu sync.Mutex
	m  map[string]*tenantState
}

type tenantState struct {
	mu      sync.Mutex
	limiter *rate.Limiter
	rate    float64
	burst   int
}

func newTenantLimiter() *tenantLimiter { return &tenantLimiter{m: make(map[string]*tenantState)} }

// allow takes one request or tunnel from tenant's bucket; false when the
// tenant is over its rate.
func (l *tenantLimiter) allow(tenant string, lim acl.Limits) bool {
	if lim.Rate <= 0 {
		return true
	}
	l.mu.Lock()
	st := l.m[tenant]
	if st == nil {
		st = &tenantState{}
		l.m[tenant] = st
	}
	l.mu.Unlock()
	return st.allow(lim)
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
