package metrics

import (
	"math"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/egressd/egressd/acl"
)

func newTestMetrics(t *testing.T, tenants ...string) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := New(reg, BuildInfo{Version: "1.2.3", GoVersion: "go1.26.8"})
	m.SetTenants(tenants)
	return m, reg
}

var (
	allowRule = acl.Decision{Action: acl.Allow, Reason: acl.ReasonRule, Rule: "github"}
	denyRule  = acl.Decision{Action: acl.Deny, Reason: acl.ReasonRule, Rule: "block-paste"}
	denySSRF  = acl.Decision{Action: acl.Deny, Reason: acl.ReasonSSRF, Rule: "ssrf"}
	noTenant  = acl.Decision{Action: acl.Deny, Reason: acl.ReasonNoTenant, Rule: "no-tenant"}
	wouldDeny = acl.Decision{Action: acl.Allow, Reason: acl.ReasonDefault, WouldDeny: true}
	authReq   = acl.Decision{Action: acl.AuthRequired, Reason: acl.ReasonAuth, Rule: "auth"}
)

// recordSession is the scripted session: two configured tenants, one
// unconfigured tenant (mallory) and a connection without any tenant.
func recordSession(m *Metrics) {
	ms := time.Millisecond
	for range 2 {
		m.ObserveRequest(Request{Tenant: "alpha", Kind: KindHTTP, Method: "GET", Decision: allowRule, Status: 200, BytesUp: 10, BytesDown: 100, Duration: 20 * ms})
	}
	m.ObserveRequest(Request{Tenant: "alpha", Kind: KindHTTP, Method: "POST", Decision: denyRule, Status: 403, Duration: ms})
	m.ObserveRequest(Request{Tenant: "alpha", Kind: KindHTTP, Method: "GET", Decision: wouldDeny, Status: 200, Duration: 30 * ms})
	m.ObserveRequest(Request{Tenant: "alpha", Kind: KindHTTP, Method: "GET", Decision: allowRule, Failed: true, Status: 502, Duration: 2 * time.Second})
	m.ObserveRequest(Request{Tenant: "alpha", Kind: KindConnect, Method: "CONNECT", Decision: allowRule, Refused: RefusedLimit, Status: 429, Duration: ms})
	m.LimitRejected(ScopeTenant, "alpha")
	m.ObserveRequest(Request{Tenant: "alpha", Kind: KindConnect, Method: "CONNECT", Decision: allowRule, Status: 200, Duration: 40 * ms})
	tun := m.TunnelOpened("alpha")
	tun.Transferred(500, 0)
	tun.Closed(500, 2000)

	m.ObserveRequest(Request{Tenant: "beta", Kind: KindHTTP, Method: "GET", Decision: authReq, Status: 407, Duration: ms})
	m.AuthFailed("beta")
	m.ObserveRequest(Request{Tenant: "beta", Kind: KindConnect, Method: "CONNECT", Decision: denySSRF, Status: 403, Duration: ms})
	m.ObserveRequest(Request{Tenant: "beta", Kind: KindConnect, Method: "CONNECT", Decision: allowRule, Status: 200, Duration: 50 * ms})
	m.TunnelOpened("beta") // still open at the end of the session
	m.ObserveRequest(Request{Tenant: "beta", Kind: KindHTTP, Method: "PATCH", Decision: allowRule, Inspected: true, Status: 204, Duration: 5 * ms})
	m.ObserveRequest(Request{Tenant: "beta", Kind: KindConnect, Method: "CONNECT", Decision: allowRule, Refused: RefusedTLS, Status: 0, Duration: ms})

	m.ObserveRequest(Request{Tenant: "mallory", Kind: KindHTTP, Method: "GET", Decision: noTenant, Status: 403, Duration: ms})
	m.ObserveRequest(Request{Tenant: "", Kind: KindHTTP, Method: "GET", Decision: noTenant, Status: 403, Duration: ms})
	m.AuthFailed("mallory")
	m.LimitRejected(ScopeGlobal, "")
}

func TestScriptedSessionValues(t *testing.T) {
	m, reg := newTestMetrics(t, "alpha", "beta")
	recordSession(m)

	const requests = `
# HELP egressd_requests_total Proxied requests by tenant, method class, decision (allow, deny, would_deny, auth_required, error) and response status class. CONNECT counts once, when the tunnel is answered.
# TYPE egressd_requests_total counter
egressd_requests_total{decision="allow",method="CONNECT",status_class="2xx",tenant="alpha"} 1
egressd_requests_total{decision="allow",method="CONNECT",status_class="2xx",tenant="beta"} 1
egressd_requests_total{decision="allow",method="GET",status_class="2xx",tenant="alpha"} 2
egressd_requests_total{decision="allow",method="OTHER",status_class="2xx",tenant="beta"} 1
egressd_requests_total{decision="auth_required",method="GET",status_class="4xx",tenant="beta"} 1
egressd_requests_total{decision="deny",method="CONNECT",status_class="4xx",tenant="alpha"} 1
egressd_requests_total{decision="deny",method="CONNECT",status_class="4xx",tenant="beta"} 1
egressd_requests_total{decision="deny",method="CONNECT",status_class="none",tenant="beta"} 1
egressd_requests_total{decision="deny",method="GET",status_class="4xx",tenant="unknown"} 2
egressd_requests_total{decision="deny",method="POST",status_class="4xx",tenant="alpha"} 1
egressd_requests_total{decision="error",method="GET",status_class="5xx",tenant="alpha"} 1
egressd_requests_total{decision="would_deny",method="GET",status_class="2xx",tenant="alpha"} 1
# HELP egressd_denials_total Requests refused by tenant and reason (rule, default, no-tenant, auth, ssrf, limit, tls, none).
# TYPE egressd_denials_total counter
egressd_denials_total{reason="limit",tenant="alpha"} 1
egressd_denials_total{reason="no-tenant",tenant="unknown"} 2
egressd_denials_total{reason="rule",tenant="alpha"} 1
egressd_denials_total{reason="ssrf",tenant="beta"} 1
egressd_denials_total{reason="tls",tenant="beta"} 1
# HELP egressd_transferred_bytes_total Payload bytes relayed, by tenant and direction (up: client to upstream, down: upstream to client).
# TYPE egressd_transferred_bytes_total counter
egressd_transferred_bytes_total{direction="down",tenant="alpha"} 2200
egressd_transferred_bytes_total{direction="down",tenant="beta"} 0
egressd_transferred_bytes_total{direction="down",tenant="unknown"} 0
egressd_transferred_bytes_total{direction="up",tenant="alpha"} 1020
egressd_transferred_bytes_total{direction="up",tenant="beta"} 0
egressd_transferred_bytes_total{direction="up",tenant="unknown"} 0
# HELP egressd_open_tunnels CONNECT tunnels currently open, by tenant.
# TYPE egressd_open_tunnels gauge
egressd_open_tunnels{tenant="alpha"} 0
egressd_open_tunnels{tenant="beta"} 1
egressd_open_tunnels{tenant="unknown"} 0
# HELP egressd_limit_rejections_total Connections or requests rejected by a limit, by scope (global: proxy.max_connections or its probe headroom; tenant: the request rate budget; tenant_connections: the tenant's connection cap) and tenant (unknown when rejected before identification).
# TYPE egressd_limit_rejections_total counter
egressd_limit_rejections_total{scope="global",tenant="alpha"} 0
egressd_limit_rejections_total{scope="global",tenant="beta"} 0
egressd_limit_rejections_total{scope="global",tenant="unknown"} 1
egressd_limit_rejections_total{scope="tenant",tenant="alpha"} 1
egressd_limit_rejections_total{scope="tenant",tenant="beta"} 0
egressd_limit_rejections_total{scope="tenant",tenant="unknown"} 0
egressd_limit_rejections_total{scope="tenant_connections",tenant="alpha"} 0
egressd_limit_rejections_total{scope="tenant_connections",tenant="beta"} 0
egressd_limit_rejections_total{scope="tenant_connections",tenant="unknown"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(requests),
		"egressd_requests_total", "egressd_denials_total", "egressd_transferred_bytes_total",
		"egressd_open_tunnels", "egressd_limit_rejections_total"); err != nil {
		t.Fatal(err)
	}

	values := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{name: "alpha tunnels", c: m.tunnels.WithLabelValues("alpha"), want: 1},
		{name: "beta tunnels", c: m.tunnels.WithLabelValues("beta"), want: 1},
		{name: "beta auth failures", c: m.authFailures.WithLabelValues("beta"), want: 1},
		{name: "mallory auth failure counted as unknown", c: m.authFailures.WithLabelValues(unknownTenant), want: 1},
		{name: "beta bumped", c: m.bumped.WithLabelValues("beta"), want: 1},
	}
	for _, tc := range values {
		t.Run(tc.name, func(t *testing.T) {
			if got := testutil.ToFloat64(tc.c); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}

	counts := []struct {
		name string
		c    prometheus.Collector
		want int
	}{
		// alpha http, alpha connect, beta http, beta connect, unknown http.
		{name: "request duration series", c: m.requestDuration, want: 5},
		// Only alpha's tunnel closed.
		{name: "tunnel duration series", c: m.tunnelDuration, want: 1},
		{name: "bumped series", c: m.bumped, want: 1},
	}
	for _, tc := range counts {
		t.Run(tc.name, func(t *testing.T) {
			if got := testutil.CollectAndCount(tc.c); got != tc.want {
				t.Errorf("got %d series, want %d", got, tc.want)
			}
		})
	}

	histograms := []struct {
		name      string
		family    string
		labels    map[string]string
		wantCount uint64
		wantSum   float64
	}{
		// 20+20+1+30 ms and the failed request's 2 s.
		{name: "alpha http", family: "egressd_request_duration_seconds",
			labels: map[string]string{"tenant": "alpha", "kind": "http"}, wantCount: 5, wantSum: 2.071},
		// The limit refusal (1 ms) and the established CONNECT (40 ms).
		{name: "alpha connect", family: "egressd_request_duration_seconds",
			labels: map[string]string{"tenant": "alpha", "kind": "connect"}, wantCount: 2, wantSum: 0.041},
		{name: "unknown http", family: "egressd_request_duration_seconds",
			labels: map[string]string{"tenant": "unknown", "kind": "http"}, wantCount: 2, wantSum: 0.002},
	}
	for _, tc := range histograms {
		t.Run(tc.name, func(t *testing.T) {
			count, sum := histogramCountSum(t, reg, tc.family, tc.labels)
			if count != tc.wantCount || math.Abs(sum-tc.wantSum) > 1e-9 {
				t.Errorf("count %d sum %v, want count %d sum %v", count, sum, tc.wantCount, tc.wantSum)
			}
		})
	}

	assertTenantLabels(t, reg, "alpha", "beta", unknownTenant)
}

// assertTenantLabels fails if any series carries a tenant label outside want.
func assertTenantLabels(t *testing.T, reg *prometheus.Registry, want ...string) {
	t.Helper()
	allowed := map[string]bool{}
	for _, w := range want {
		allowed[w] = true
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == labelTenant && !allowed[l.GetValue()] {
					t.Errorf("%s has tenant=%q; want one of %v", f.GetName(), l.GetValue(), want)
				}
			}
		}
	}
}

func TestBuildInfoLabels(t *testing.T) {
	tests := []struct {
		name  string
		build BuildInfo
		want  string
	}{
		{name: "explicit", build: BuildInfo{Version: "v1.0.0", GoVersion: "go1.26.8"},
			want: `egressd_build_info{goversion="go1.26.8",version="v1.0.0"} 1`},
		{name: "go version defaults to the runtime", build: BuildInfo{Version: "dev"},
			want: `egressd_build_info{goversion="` + runtime.Version() + `",version="dev"} 1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			New(reg, tc.build)
			exp := "# HELP egressd_build_info Always 1; labels carry the egressd version and the Go version it was built with.\n# TYPE egressd_build_info gauge\n" + tc.want + "\n"
			if err := testutil.GatherAndCompare(reg, strings.NewReader(exp), "egressd_build_info"); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestLint(t *testing.T) {
	m, reg := newTestMetrics(t, "alpha", "beta")
	recordEverything(m)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

func TestUnknownTenantsKeepSeriesCountFixed(t *testing.T) {
	m, reg := newTestMetrics(t, "alpha", "beta")
	recordEverythingFor(m, "intruder-0")
	before := seriesCount(t, reg)

	for i := range 1000 {
		recordEverythingFor(m, "intruder-"+strconv.Itoa(i))
	}
	if after := seriesCount(t, reg); after != before {
		t.Fatalf("series count grew from %d to %d with 1000 unknown tenant names", before, after)
	}
	assertTenantLabels(t, reg, "alpha", "beta", unknownTenant)
	if got := testutil.ToFloat64(m.tunnels.WithLabelValues(unknownTenant)); got != 1000+1 {
		t.Errorf("unknown tunnels = %v, want 1001 (every intruder collapses into unknown)", got)
	}
}

func seriesCount(t *testing.T, reg *prometheus.Registry) int {
	t.Helper()
	n, err := testutil.GatherAndCount(reg)
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	return n
}
