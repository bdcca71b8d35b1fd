package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// recordEverything calls every recording method at least once, so every
// metric family has a series to gather, lint and match against the
// dashboard and alert expressions.
func recordEverything(m *Metrics) {
	recordEverythingFor(m, "alpha")
	m.SetConnectionLimit(1000)
	m.ObserveDNS(3 * time.Millisecond)
	m.ObserveDial(7 * time.Millisecond)
	m.DialFailed(DialTimeout)
	m.ProxyHeader(HeaderLocal)
	m.ConfigLoaded("abc123", nil)
	m.ReloadTriggered(ReloadReferencedFile)
	m.ObserveMint(2 * time.Millisecond)
	m.CertCacheLookup(true)
	m.CertCacheLookup(false)
	m.SetCertCacheSize(3)
	m.SetCAExpiry(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
}

// recordEverythingFor records every tenant-labelled event for one tenant.
func recordEverythingFor(m *Metrics, tenant string) {
	for _, d := range []struct {
		method   string
		kind     Kind
		decision Request
	}{
		{method: "GET", kind: KindHTTP, decision: Request{Decision: allowRule, Status: 200}},
		{method: "POST", kind: KindHTTP, decision: Request{Decision: denyRule, Status: 403}},
		{method: "CONNECT", kind: KindConnect, decision: Request{Decision: allowRule, Refused: RefusedLimit, Status: 429}},
		{method: "GET", kind: KindHTTP, decision: Request{Decision: allowRule, Inspected: true, Status: 200}},
	} {
		r := d.decision
		r.Tenant, r.Method, r.Kind, r.Duration, r.BytesUp, r.BytesDown = tenant, d.method, d.kind, time.Millisecond, 1, 2
		m.ObserveRequest(r)
	}
	tun := m.TunnelOpened(tenant)
	tun.Closed(10, 20)
	c := m.ConnOpened()
	c.Identified(tenant)
	c.Closed()
	m.AuthFailed(tenant)
	m.LimitRejected(ScopeTenant, tenant)
	m.SpliceLearned(tenant)
	m.LimitRejected(ScopeTenantConnections, tenant)
	m.Revoked(tenant)
}

// histogramCountSum reads one histogram series from reg by its labels.
func histogramCountSum(t *testing.T, reg *prometheus.Registry, family string, labels map[string]string) (uint64, float64) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != family {
			continue
		}
	series:
		for _, s := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range s.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if len(got) != len(labels) {
				continue
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			return s.GetHistogram().GetSampleCount(), s.GetHistogram().GetSampleSum()
		}
	}
	t.Fatalf("%s%v not found", family, labels)
	return 0, 0
}
