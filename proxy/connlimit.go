package proxy

import (
	"math"
	"sync"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/egressd/egressd/metrics"
)

// connCounts counts open client connections per tenant once the tenant
// is known (issue 13, item 2): limits.max_connections and
// proxy.tenant_connection_share cap connections, idle keep-alives and
// tunnels included, not requests in flight. "" is the bucket of callers
// no tenant recognises; it has a share like any tenant.
type connCounts struct {
	mu   sync.Mutex
	open map[string]int
	log  *logSampler
}

func newConnCounts() *connCounts {
	return &connCounts{open: map[string]int{}, log: &logSampler{lim: rate.NewLimiter(1, 20)}}
}

// connCap is tenant's cap: its share of the global cap, lowered by its
// own limits.max_connections. At least 1, so a tiny global cap still
// lets every tenant in.
func (s *Server) connCap(tenant string) int {
	share := max(1, int(math.Floor(s.cfg.TenantConnectionShare*float64(s.cfg.MaxConnections))))
	if lim := s.currentPolicy().Limits(tenant).MaxConnections; lim > 0 {
		return min(lim, share)
	}
	return share
}

// chargeConn moves the connection's charge to tenant. It reports false
// when tenant is at its cap; the old charge is then kept, and the caller
// refuses and closes the connection.
func (c *clientConn) chargeConn(tenant string) bool {
	if c.charged && c.chargedTo == tenant {
		return true
	}
	s, cc := c.s, c.s.tenantConns
	limit := s.connCap(tenant)
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.open[tenant] >= limit {
		return false
	}
	cc.open[tenant]++
	if c.charged {
		cc.dropLocked(c.chargedTo)
	}
	c.charged, c.chargedTo = true, tenant
	return true
}

// releaseConn returns the connection's charge; it runs once, at close.
func (c *clientConn) releaseConn() {
	if !c.charged {
		return
	}
	cc := c.s.tenantConns
	cc.mu.Lock()
	cc.dropLocked(c.chargedTo)
	cc.mu.Unlock()
	c.charged = false
}

func (cc *connCounts) dropLocked(tenant string) {
	if cc.open[tenant] <= 1 {
		delete(cc.open, tenant)
		return
	}
	cc.open[tenant]--
}

// TenantConnections is how many client connections tenant holds ("" for
// callers no tenant recognises).
func (s *Server) TenantConnections(tenant string) int {
	s.tenantConns.mu.Lock()
	defer s.tenantConns.mu.Unlock()
	return s.tenantConns.open[tenant]
}

// refuseConnCap answers a connection over its tenant's cap with 503 and
// closes it. Only this tenant is told; its neighbours keep their slots.
// The event line is sampled, since a tenant at its cap can trigger it
// once per connection; the metric counts every refusal.
func (c *clientConn) refuseConnCap(tenant string) {
	s := c.s
	s.metrics.LimitRejected(metrics.ScopeTenantConnections, tenant)
	name := tenant
	if name == "" {
		name = "unknown"
	}
	if ok, suppressed := s.tenantConns.log.allow(); ok {
		fields := []zap.Field{zap.String(fieldTenant, name), zap.String(fieldError, outcomeConnLimit.String()),
			zap.Int("open", s.TenantConnections(tenant)), zap.Int("limit", s.connCap(tenant)),
			zap.Stringer(fieldClient, c.id.Client)}
		if suppressed > 0 {
			fields = append(fields, zap.Int64("suppressed", suppressed))
		}
		s.log.Warn("connection refused: tenant over its connection limit", fields...)
	}
	o := outcomeConnLimit
	writeStatus(c.bw, o.status(), o.String(), o.say(), s.newRequestID(), true, "Retry-After", "1")
	c.bw.Flush()
}
