package metrics

import (
	"sync"
	"time"

	"github.com/egressd/egressd/acl"
)

// Request describes one finished request for ObserveRequest. The proxy fills
// it where it writes the access log line, so both carry the same values.
type Request struct {
	// Tenant is the configured tenant name (Decision.Tenant once the policy
	// ran); "" or an unconfigured name is counted as "unknown".
	Tenant string
	Kind   Kind
	// Method is the request method as received; it is classed into
	// GET/HEAD/POST/PUT/DELETE/CONNECT/OTHER.
	Method   string
	Decision acl.Decision
	// Refused is set when the proxy refused a request the policy allowed.
	Refused Refusal
	// Failed is set when an allowed request could not be completed (dial,
	// upstream or tunnel setup error); it is counted as decision="error".
	Failed bool
	// Inspected is set for requests seen inside a TLS-inspected tunnel.
	Inspected bool
	// Status is the status code sent to the client, 0 if none was sent.
	Status int
	// BytesUp and BytesDown are body bytes relayed for plain HTTP. Tunnels
	// report theirs through Tunnel instead.
	BytesUp, BytesDown int64
	Duration           time.Duration
}

// outcome folds the policy decision and the proxy's own verdict into the
// decision and denial reason labels. A refusal wins over the policy because
// it is what the client saw; a failure only counts for allowed requests.
func (r *Request) outcome() (decision, reason int) {
	switch {
	case r.Refused == RefusedLimit:
		return decisionDeny, reasonLimit
	case r.Refused == RefusedTLS:
		return decisionDeny, reasonTLS
	case r.Decision.Action == acl.AuthRequired:
		return decisionAuthRequired, -1
	case r.Decision.Action != acl.Allow:
		return decisionDeny, aclReason(r.Decision.Reason)
	case r.Failed:
		return decisionError, -1
	case r.Decision.WouldDeny:
		return decisionWouldDeny, -1
	default:
		return decisionAllow, -1
	}
}

// ObserveRequest records a finished request: the request counter, its
// duration, a denial when it was refused, bytes, and whether it was bumped.
// It does not allocate once the tenant's series exist.
func (m *Metrics) ObserveRequest(r Request) {
	if m == nil {
		return
	}
	t := m.lookup(r.Tenant)
	decision, reason := r.outcome()
	t.request(methodClass(r.Method), decision, statusClass(r.Status)).Inc()
	t.requestDuration(r.Kind).Observe(r.Duration.Seconds())
	if reason >= 0 {
		t.denial(reason).Inc()
	}
	if r.BytesUp > 0 {
		t.bytesUp.Add(float64(r.BytesUp))
	}
	if r.BytesDown > 0 {
		t.bytesDown.Add(float64(r.BytesDown))
	}
	if r.Inspected {
		t.bumpedRequests().Inc()
	}
	m.ruleHit(r.Decision)
}

// Tunnel tracks one open CONNECT tunnel. It is a value so opening one does
// not allocate; call Closed exactly once (defer it right after TunnelOpened).
type Tunnel struct {
	t     *tenant
	start time.Time
}

// TunnelOpened counts a tunnel once the 200 is sent and marks it open.
func (m *Metrics) TunnelOpened(tenant string) Tunnel {
	if m == nil {
		return Tunnel{}
	}
	t := m.lookup(tenant)
	t.tunnels.Inc()
	t.openTunnels.Inc()
	return Tunnel{t: t, start: time.Now()}
}

// Transferred adds bytes relayed so far (up: client to upstream, down:
// upstream to client). Long tunnels can report as they go so traffic graphs
// do not show one spike at close; bytes reported here must not be reported
// again to Closed.
func (tu Tunnel) Transferred(up, down int64) {
	if tu.t == nil {
		return
	}
	if up > 0 {
		tu.t.bytesUp.Add(float64(up))
	}
	if down > 0 {
		tu.t.bytesDown.Add(float64(down))
	}
}

// Closed records the bytes not yet reported and the tunnel's lifetime, and
// marks it closed. It uses the tenant the tunnel was opened with, so a config
// reload in between cannot unbalance the open-tunnels gauge.
func (tu Tunnel) Closed(up, down int64) {
	if tu.t == nil {
		return
	}
	tu.Transferred(up, down)
	tu.t.openTunnels.Dec()
	tu.t.tunnelLifetime().Observe(time.Since(tu.start).Seconds())
}

// Conn tracks one accepted client connection. Its tenant becomes known only
// at the first request (the policy maps the LinkID to a tenant), so the
// global gauge counts it from accept and the per-tenant gauge from Identified.
type Conn struct {
	m      *Metrics
	mu     sync.Mutex // orders Identified against Closed
	t      *tenant
	closed bool
}

// ConnOpened counts an accepted connection (including load balancer probes)
// and returns its handle; call Closed when the connection ends, however it
// ends. It allocates one small handle per connection.
func (m *Metrics) ConnOpened() *Conn {
	if m == nil {
		return nil
	}
	m.connections.Inc()
	m.openConnections.Inc()
	return &Conn{m: m}
}

// Identified attributes the connection to tenant. Only the first call counts:
// a connection does not change tenant, and keep-alive requests call this
// again harmlessly. After Closed it does nothing.
func (c *Conn) Identified(tenant string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.t != nil {
		return
	}
	c.t = c.m.lookup(tenant)
	c.t.openConnections.Inc()
}

// Closed marks the connection closed. It is idempotent, because the
// http.Server state hook and a hijacked tunnel's own close can both report it.
func (c *Conn) Closed() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.m.openConnections.Dec()
	if c.t != nil {
		c.t.openConnections.Dec()
	}
}

// SetConnectionLimit exports the configured connection limit (0: unlimited)
// so alerts can compare egressd_open_connections with it.
func (m *Metrics) SetConnectionLimit(n int) {
	if m == nil {
		return
	}
	m.connectionLimit.Set(float64(n))
}

// ObserveDNS records how long a host name lookup took, whatever its result.
func (m *Metrics) ObserveDNS(d time.Duration) {
	if m == nil {
		return
	}
	m.dnsDuration.Observe(d.Seconds())
}

// ObserveDial records a successful upstream TCP connect.
func (m *Metrics) ObserveDial(d time.Duration) {
	if m == nil {
		return
	}
	m.dialDuration.Observe(d.Seconds())
}

// DialFailed counts an upstream connection that could not be made; use
// DialFailureOf(err) for errors and DialSSRF when every address was blocked.
func (m *Metrics) DialFailed(f DialFailure) {
	if m == nil {
		return
	}
	if f >= numDialFailures {
		f = DialOther
	}
	m.dialErrors[f].Inc()
}

// ProxyHeader counts the outcome of reading a connection's PROXY header;
// HeaderNone counts nothing.
func (m *Metrics) ProxyHeader(r HeaderResult) {
	if m == nil || r == HeaderNone {
		return
	}
	if r >= numCountedHeaders {
		r = HeaderMalformed
	}
	m.proxyHeaders[r].Inc()
}

// LimitRejected counts a connection or request turned away by a limit.
// Pass "" as tenant when the rejection happened before identification.
func (m *Metrics) LimitRejected(scope LimitScope, tenant string) {
	if m == nil {
		return
	}
	if scope >= numScopes {
		scope = ScopeGlobal
	}
	m.lookup(tenant).limitRejections[scope].Inc()
}

// AuthFailed counts credentials that were presented and rejected. A request
// without credentials that gets the 407 challenge is not a failure.
func (m *Metrics) AuthFailed(tenant string) {
	if m == nil {
		return
	}
	m.lookup(tenant).authFailures.Inc()
}

// ConfigLoaded records a configuration load, at startup or on reload. On
// success hash (any short stable digest of the config) becomes the only
// egressd_config_info series; on failure the previous hash stays, because
// the previous configuration is still in force.
func (m *Metrics) ConfigLoaded(hash string, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.reloads[1].Inc()
		m.lastReloadOK.Set(0)
		return
	}
	m.configMu.Lock()
	if hash != m.configHash {
		m.configInfo.DeleteLabelValues(m.configHash)
	}
	m.configInfo.WithLabelValues(hash).Set(1)
	m.configHash = hash
	m.configMu.Unlock()

	m.reloads[0].Inc()
	m.lastReloadOK.Set(1)
	m.lastReloadSuccess.SetToCurrentTime()
}

// ReloadTriggered counts a reload attempt by its cause; ConfigLoaded then
// records whether it worked.
func (m *Metrics) ReloadTriggered(c ReloadCause) {
	if m == nil {
		return
	}
	if c >= numReloadCauses {
		c = ReloadConfig
	}
	m.reloadCauses[c].Inc()
}

// Revoked counts a connection closed because a reloaded policy denies
// what it carries.
func (m *Metrics) Revoked(tenant string) {
	if m == nil {
		return
	}
	m.lookup(tenant).revoked.Inc()
}

// ObserveMint records how long minting one leaf certificate took.
func (m *Metrics) ObserveMint(d time.Duration) {
	if m == nil {
		return
	}
	m.mintDuration.Observe(d.Seconds())
}

// CertCacheLookup counts a leaf certificate cache lookup.
func (m *Metrics) CertCacheLookup(hit bool) {
	if m == nil {
		return
	}
	if hit {
		m.cacheHits.Inc()
	} else {
		m.cacheMisses.Inc()
	}
}

// SetCertCacheSize exports how many leaf certificates are cached.
func (m *Metrics) SetCertCacheSize(n int) {
	if m == nil {
		return
	}
	m.cacheEntries.Set(float64(n))
}

// SetCAExpiry exports the inspection CA's NotAfter for the expiry alert.
func (m *Metrics) SetCAExpiry(notAfter time.Time) {
	if m == nil {
		return
	}
	m.caExpiry.Set(float64(notAfter.Unix()))
}

// SpliceLearned counts a host that tenant's clients rejected the inspection
// certificate for often enough that it is now spliced (learned splicing).
func (m *Metrics) SpliceLearned(tenant string) {
	if m == nil {
		return
	}
	m.learned.WithLabelValues(m.lookup(tenant).name).Inc()
}
