package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/egressd/egressd/acl"
)

func TestRequestOutcome(t *testing.T) {
	tests := []struct {
		name         string
		req          Request
		wantDecision string
		wantReason   string // "" when no denial is counted
	}{
		{name: "allow", req: Request{Decision: allowRule}, wantDecision: "allow"},
		{name: "zero decision fails closed", req: Request{}, wantDecision: "deny", wantReason: "none"},
		{name: "rule deny", req: Request{Decision: denyRule}, wantDecision: "deny", wantReason: "rule"},
		{name: "default deny", req: Request{Decision: acl.Decision{Reason: acl.ReasonDefault}}, wantDecision: "deny", wantReason: "default"},
		{name: "ssrf", req: Request{Decision: denySSRF}, wantDecision: "deny", wantReason: "ssrf"},
		{name: "no tenant", req: Request{Decision: noTenant}, wantDecision: "deny", wantReason: "no-tenant"},
		{name: "wrong credentials denied", req: Request{Decision: acl.Decision{Reason: acl.ReasonAuth}}, wantDecision: "deny", wantReason: "auth"},
		{name: "407 challenge is not a denial", req: Request{Decision: authReq}, wantDecision: "auth_required"},
		{name: "report-only", req: Request{Decision: wouldDeny}, wantDecision: "would_deny"},
		{name: "allowed but failed", req: Request{Decision: allowRule, Failed: true}, wantDecision: "error"},
		{name: "failure outranks report-only", req: Request{Decision: wouldDeny, Failed: true}, wantDecision: "error"},
		{name: "limit outranks allow", req: Request{Decision: allowRule, Refused: RefusedLimit}, wantDecision: "deny", wantReason: "limit"},
		{name: "tls refusal outranks failure", req: Request{Decision: allowRule, Refused: RefusedTLS, Failed: true}, wantDecision: "deny", wantReason: "tls"},
		{name: "refusal outranks policy deny", req: Request{Decision: denyRule, Refused: RefusedLimit}, wantDecision: "deny", wantReason: "limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, reg := newTestMetrics(t, "alpha")
			tc.req.Tenant, tc.req.Method, tc.req.Status = "alpha", "GET", 200
			m.ObserveRequest(tc.req)

			if got := testutil.ToFloat64(m.requests.WithLabelValues("alpha", "GET", tc.wantDecision, "2xx")); got != 1 {
				t.Errorf("requests{decision=%q} = %v, want 1", tc.wantDecision, got)
			}
			n, err := testutil.GatherAndCount(reg, "egressd_denials_total")
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.wantReason == "" && n != 0:
				t.Errorf("%d denial series, want none", n)
			case tc.wantReason != "":
				if got := testutil.ToFloat64(m.denials.WithLabelValues("alpha", tc.wantReason)); got != 1 || n != 1 {
					t.Errorf("denials{reason=%q} = %v across %d series, want 1 in 1", tc.wantReason, got, n)
				}
			}
		})
	}
}

func TestLabelClasses(t *testing.T) {
	methods := []struct {
		method, want string
	}{
		{method: "GET", want: "GET"}, {method: "HEAD", want: "HEAD"}, {method: "POST", want: "POST"},
		{method: "PUT", want: "PUT"}, {method: "DELETE", want: "DELETE"}, {method: "CONNECT", want: "CONNECT"},
		{method: "PATCH", want: "OTHER"}, {method: "get", want: "OTHER"}, {method: "", want: "OTHER"},
		{method: "GET\x00/../etc", want: "OTHER"},
	}
	for _, tc := range methods {
		t.Run("method "+tc.method, func(t *testing.T) {
			if got := methodNames[methodClass(tc.method)]; got != tc.want {
				t.Errorf("methodClass(%q) = %s, want %s", tc.method, got, tc.want)
			}
		})
	}
	statuses := []struct {
		code int
		want string
	}{
		{code: 0, want: "none"}, {code: 99, want: "none"}, {code: 100, want: "1xx"}, {code: 200, want: "2xx"},
		{code: 307, want: "3xx"}, {code: 407, want: "4xx"}, {code: 599, want: "5xx"}, {code: 600, want: "none"},
		{code: -1, want: "none"},
	}
	for _, tc := range statuses {
		t.Run(fmt.Sprint("status ", tc.code), func(t *testing.T) {
			if got := statusNames[statusClass(tc.code)]; got != tc.want {
				t.Errorf("statusClass(%d) = %s, want %s", tc.code, got, tc.want)
			}
		})
	}
}

// The denial reason label must read exactly like acl.Reason.String(), which
// the access log uses, so panels and log lines can be joined.
func TestDenialReasonsMatchACL(t *testing.T) {
	for r := acl.ReasonNone; r <= acl.ReasonSSRF; r++ {
		t.Run(r.String(), func(t *testing.T) {
			if got := reasonNames[aclReason(r)]; got != r.String() {
				t.Errorf("label %q, acl says %q", got, r.String())
			}
		})
	}
}

func TestDialFailureOf(t *testing.T) {
	// A loopback port that was just closed refuses connections for real.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, refused := net.DialTimeout("tcp", addr, time.Second)
	if refused == nil {
		t.Skip("closed loopback port accepted a connection; cannot produce a refusal here")
	}

	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "real refusal", err: refused, want: "refused"},
		{name: "wrapped refusal", err: fmt.Errorf("dial %s: %w", addr, refused), want: "refused"},
		{name: "dns", err: fmt.Errorf("resolve: %w", &net.DNSError{Err: "no such host", Name: "nope.invalid", IsNotFound: true}), want: "dns"},
		{name: "dns timeout is dns", err: &net.DNSError{Err: "i/o timeout", IsTimeout: true}, want: "dns"},
		{name: "deadline", err: fmt.Errorf("dial: %w", context.DeadlineExceeded), want: "timeout"},
		{name: "net timeout", err: &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, want: "timeout"},
		{name: "canceled", err: context.Canceled, want: "other"},
		{name: "anything else", err: errors.New("boom"), want: "other"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DialFailureOf(tc.err).String(); got != tc.want {
				t.Errorf("DialFailureOf(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
}

func TestFixedLabelSetsArePrecreated(t *testing.T) {
	_, reg := newTestMetrics(t)
	tests := []struct {
		family string
		want   int
	}{
		{family: "egressd_upstream_dial_errors_total", want: 5},
		{family: "egressd_proxy_protocol_headers_total", want: 6},
		{family: "egressd_config_reloads_total", want: 2},
		{family: "egressd_config_reload_triggers_total", want: 3},
		// Only the unknown tenant exists before SetTenants.
		{family: "egressd_open_tunnels", want: 1},
		{family: "egressd_requests_total", want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.family, func(t *testing.T) {
			n, err := testutil.GatherAndCount(reg, tc.family)
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.want {
				t.Errorf("%d series, want %d", n, tc.want)
			}
		})
	}
}

func TestOutOfRangeEnumsStayBounded(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.DialFailed(DialFailure(200))
	m.ProxyHeader(HeaderResult(200))
	m.LimitRejected(LimitScope(200), "")
	m.ObserveRequest(Request{Kind: Kind(200), Method: "GET", Decision: allowRule, Status: 200})

	checks := []struct {
		name string
		got  float64
	}{
		{name: "dial other", got: testutil.ToFloat64(m.dialErrors[DialOther])},
		{name: "header malformed", got: testutil.ToFloat64(m.proxyHeaders[HeaderMalformed])},
		{name: "limit global", got: testutil.ToFloat64(m.limitRejections.WithLabelValues("global", unknownTenant))},
	}
	for _, c := range checks {
		if c.got != 1 {
			t.Errorf("%s = %v, want 1", c.name, c.got)
		}
	}
	if count, _ := histogramCountSum(t, reg, "egressd_request_duration_seconds", map[string]string{"tenant": "unknown", "kind": "http"}); count != 1 {
		t.Errorf("bad kind recorded %d times as http, want 1", count)
	}
}

func TestConnLifecycle(t *testing.T) {
	m, _ := newTestMetrics(t, "alpha")
	open := func() float64 { return testutil.ToFloat64(m.openConnections) }
	alpha := func() float64 { return testutil.ToFloat64(m.tenantConnections.WithLabelValues("alpha")) }

	probe := m.ConnOpened() // a load balancer probe: never identified
	c := m.ConnOpened()
	if open() != 2 || alpha() != 0 {
		t.Fatalf("after accept: open %v alpha %v, want 2 and 0", open(), alpha())
	}
	c.Identified("alpha")
	c.Identified("alpha") // keep-alive request
	c.Identified("beta")  // a conn never changes tenant
	if alpha() != 1 || testutil.ToFloat64(m.tenantConnections.WithLabelValues(unknownTenant)) != 0 {
		t.Fatalf("after identify: alpha %v, want 1 and unknown 0", alpha())
	}
	c.Closed()
	c.Closed() // state hook and hijacked close both report
	c.Identified("alpha")
	probe.Closed()
	if open() != 0 || alpha() != 0 {
		t.Errorf("after close: open %v alpha %v, want 0 and 0", open(), alpha())
	}
	if got := testutil.ToFloat64(m.connections); got != 2 {
		t.Errorf("connections_total = %v, want 2", got)
	}
}

func TestConfigLoaded(t *testing.T) {
	m, reg := newTestMetrics(t)
	info := func() map[string]float64 {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, f := range families {
			if f.GetName() == "egressd_config_info" {
				for _, s := range f.GetMetric() {
					out[s.GetLabel()[0].GetValue()] = s.GetGauge().GetValue()
				}
			}
		}
		return out
	}

	before := time.Now()
	m.ConfigLoaded("aaa", nil)
	m.ConfigLoaded("bbb", nil)
	stamp := testutil.ToFloat64(m.lastReloadSuccess)
	m.ConfigLoaded("ccc", errors.New(`config: tenants[0].allow[0]: "*.": bad glob`))

	if got := info(); len(got) != 1 || got["bbb"] != 1 {
		t.Errorf("config_info = %v, want only bbb=1 (failed load keeps the config in force)", got)
	}
	if stamp < float64(before.Unix()) || stamp > float64(time.Now().Unix()+1) {
		t.Errorf("last success timestamp %v outside the test's run", stamp)
	}
	if got := testutil.ToFloat64(m.lastReloadSuccess); got != stamp {
		t.Errorf("failure moved the success timestamp from %v to %v", stamp, got)
	}
	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{name: "successes", got: testutil.ToFloat64(m.reloads[0]), want: 2},
		{name: "failures", got: testutil.ToFloat64(m.reloads[1]), want: 1},
		{name: "last successful", got: testutil.ToFloat64(m.lastReloadOK), want: 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	m.ConfigLoaded("bbb", nil)
	if got := testutil.ToFloat64(m.lastReloadOK); got != 1 {
		t.Errorf("last successful after recovery = %v, want 1", got)
	}
}

func TestTLSGauges(t *testing.T) {
	m, _ := newTestMetrics(t)
	notAfter := time.Date(2031, 6, 1, 12, 0, 0, 0, time.UTC)
	m.SetCAExpiry(notAfter)
	m.SetCertCacheSize(42)
	m.CertCacheLookup(true)
	m.CertCacheLookup(true)
	m.CertCacheLookup(false)
	m.SetConnectionLimit(512)
	checks := []struct {
		name      string
		got, want float64
	}{
		{name: "ca expiry", got: testutil.ToFloat64(m.caExpiry), want: float64(notAfter.Unix())},
		{name: "cache entries", got: testutil.ToFloat64(m.cacheEntries), want: 42},
		{name: "hits", got: testutil.ToFloat64(m.cacheHits), want: 2},
		{name: "misses", got: testutil.ToFloat64(m.cacheMisses), want: 1},
		{name: "connection limit", got: testutil.ToFloat64(m.connectionLimit), want: 512},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestNilMetricsRecordsNothing(t *testing.T) {
	var m *Metrics
	calls := []struct {
		name string
		call func()
	}{
		{name: "SetTenants", call: func() { m.SetTenants([]string{"a"}) }},
		{name: "ObserveRequest", call: func() { m.ObserveRequest(Request{Tenant: "a"}) }},
		{name: "Tunnel", call: func() { tu := m.TunnelOpened("a"); tu.Transferred(1, 1); tu.Closed(1, 1) }},
		{name: "Conn", call: func() { c := m.ConnOpened(); c.Identified("a"); c.Closed() }},
		{name: "SetConnectionLimit", call: func() { m.SetConnectionLimit(1) }},
		{name: "ObserveDNS", call: func() { m.ObserveDNS(time.Second) }},
		{name: "ObserveDial", call: func() { m.ObserveDial(time.Second) }},
		{name: "DialFailed", call: func() { m.DialFailed(DialDNS) }},
		{name: "ProxyHeader", call: func() { m.ProxyHeader(HeaderOK) }},
		{name: "LimitRejected", call: func() { m.LimitRejected(ScopeGlobal, "") }},
		{name: "AuthFailed", call: func() { m.AuthFailed("a") }},
		{name: "ConfigLoaded", call: func() { m.ConfigLoaded("h", nil) }},
		{name: "ObserveMint", call: func() { m.ObserveMint(time.Second) }},
		{name: "CertCacheLookup", call: func() { m.CertCacheLookup(true) }},
		{name: "SetCertCacheSize", call: func() { m.SetCertCacheSize(1) }},
		{name: "SetCAExpiry", call: func() { m.SetCAExpiry(time.Now()) }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("panicked on nil *Metrics: %v", r)
				}
			}()
			c.call()
		})
	}
}

// The hot path must not allocate once a tenant's series exist: the proxy
// calls these on every request and tunnel.
func TestHotPathDoesNotAllocate(t *testing.T) {
	m, _ := newTestMetrics(t, "alpha", "beta")
	req := Request{Tenant: "beta", Kind: KindHTTP, Method: "GET", Decision: denyRule, Status: 403, BytesUp: 10, BytesDown: 20, Inspected: true, Duration: time.Millisecond}
	unknown := req
	unknown.Tenant = "mallory"
	calls := []struct {
		name string
		call func()
	}{
		{name: "ObserveRequest", call: func() { m.ObserveRequest(req) }},
		{name: "ObserveRequest unknown tenant", call: func() { m.ObserveRequest(unknown) }},
		{name: "Tunnel", call: func() { tu := m.TunnelOpened("alpha"); tu.Transferred(1, 2); tu.Closed(3, 4) }},
		{name: "DialFailed", call: func() { m.DialFailed(DialRefused) }},
		{name: "ProxyHeader", call: func() { m.ProxyHeader(HeaderOK) }},
		{name: "LimitRejected", call: func() { m.LimitRejected(ScopeTenant, "alpha") }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			c.call() // create the series
			if n := testing.AllocsPerRun(100, c.call); n != 0 {
				t.Errorf("%v allocations per call, want 0", n)
			}
		})
	}
}

func TestSetTenantsReload(t *testing.T) {
	m, reg := newTestMetrics(t, "alpha", "beta")
	tun := m.TunnelOpened("beta")
	conn := m.ConnOpened()
	conn.Identified("beta")
	m.ObserveRequest(Request{Tenant: "alpha", Method: "GET", Decision: allowRule, Status: 200})
	m.ObserveRequest(Request{Tenant: "beta", Method: "GET", Decision: allowRule, Status: 200})

	// beta is removed: its series leave the exposition, alpha's stay.
	m.SetTenants([]string{"alpha", "gamma", "", "unknown", "alpha"})
	assertTenantLabels(t, reg, "alpha", "gamma", unknownTenant)
	if got := testutil.ToFloat64(m.requests.WithLabelValues("alpha", "GET", "allow", "2xx")); got != 1 {
		t.Errorf("alpha requests after reload = %v, want 1 (kept tenants keep their counts)", got)
	}
	m.ObserveRequest(Request{Tenant: "beta", Method: "GET", Decision: allowRule, Status: 200})
	if got := testutil.ToFloat64(m.requests.WithLabelValues(unknownTenant, "GET", "allow", "2xx")); got != 1 {
		t.Errorf("removed tenant's new request counted %v times as unknown, want 1", got)
	}

	// beta comes back while its old tunnel and connection are still open:
	// closing them must not drive the new series negative.
	m.SetTenants([]string{"alpha", "beta"})
	tun.Closed(5, 5)
	conn.Closed()
	gauges := []struct {
		name string
		got  float64
	}{
		{name: "open tunnels", got: testutil.ToFloat64(m.openTunnels.WithLabelValues("beta"))},
		{name: "open connections", got: testutil.ToFloat64(m.tenantConnections.WithLabelValues("beta"))},
		{name: "bytes", got: testutil.ToFloat64(m.bytes.WithLabelValues("beta", "up"))},
	}
	for _, g := range gauges {
		if g.got != 0 {
			t.Errorf("re-added beta %s = %v, want 0", g.name, g.got)
		}
	}
	if got := testutil.ToFloat64(m.openConnections); got != 0 {
		t.Errorf("global open connections = %v, want 0", got)
	}
}

// SetTenants runs on hot reload while requests are recorded; -race checks
// the snapshot swap, and the totals check that caches survive reloads.
func TestSetTenantsConcurrentWithRecording(t *testing.T) {
	m, reg := newTestMetrics(t, "alpha", "beta")
	const workers, perWorker = 4, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				m.ObserveRequest(Request{Tenant: "alpha", Method: "GET", Decision: allowRule, Status: 200})
				tu := m.TunnelOpened("beta")
				// gamma comes and goes; its counts are undefined, but it
				// must never leave a negative gauge or a stray label.
				g := m.TunnelOpened("gamma")
				m.ObserveRequest(Request{Tenant: "gamma", Method: "PUT", Decision: denyRule, Status: 403})
				g.Closed(1, 1)
				tu.Closed(int64(w), int64(i))
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 200 {
			if i%2 == 0 {
				m.SetTenants([]string{"alpha", "beta", "gamma"})
			} else {
				m.SetTenants([]string{"beta", "alpha"})
			}
		}
	}()
	wg.Wait()

	if got := testutil.ToFloat64(m.requests.WithLabelValues("alpha", "GET", "allow", "2xx")); got != workers*perWorker {
		t.Errorf("alpha requests = %v, want %d", got, workers*perWorker)
	}
	if got := testutil.ToFloat64(m.tunnels.WithLabelValues("beta")); got != workers*perWorker {
		t.Errorf("beta tunnels = %v, want %d", got, workers*perWorker)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			if g := s.GetGauge(); g != nil && g.GetValue() < 0 {
				t.Errorf("%s%v = %v, negative", f.GetName(), s.GetLabel(), g.GetValue())
			}
		}
	}
	// The last SetTenants dropped gamma; no gamma series may survive it.
	assertTenantLabels(t, reg, "alpha", "beta", unknownTenant)
}

// TestHeaderNoneCountsNothing: with proxy_protocol off or optional, a
// connection without a header is not a header outcome, so it neither adds
// a "none" series nor bumps another result's counter.
func TestHeaderNoneCountsNothing(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.ProxyHeader(HeaderNone)
	m.ProxyHeader(HeaderOK)
	if n, err := testutil.GatherAndCount(reg, "egressd_proxy_protocol_headers_total"); err != nil || n != int(numCountedHeaders) {
		t.Errorf("%d header series, want %d (no \"none\")", n, numCountedHeaders)
	}
	for r := range numCountedHeaders {
		want := 0.0
		if r == HeaderOK {
			want = 1
		}
		if got := testutil.ToFloat64(m.proxyHeaders[r]); got != want {
			t.Errorf("%s = %v, want %v", r, got, want)
		}
	}
}
