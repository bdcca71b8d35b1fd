package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkObserveRequest is the per-request cost the proxy pays. Compare
// with the WithLabelValues sub-benchmark, which is what the cache avoids.
func BenchmarkObserveRequest(b *testing.B) {
	m := New(prometheus.NewRegistry(), BuildInfo{})
	m.SetTenants([]string{"alpha", "beta", "gamma"})
	req := Request{Tenant: "beta", Kind: KindHTTP, Method: "GET", Decision: allowRule, Status: 200, BytesUp: 100, BytesDown: 1000, Duration: 20 * time.Millisecond}

	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.ObserveRequest(req)
		}
	})
	b.Run("unknown-tenant", func(b *testing.B) {
		r := req
		r.Tenant = "mallory"
		b.ReportAllocs()
		for b.Loop() {
			m.ObserveRequest(r)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.ObserveRequest(req)
			}
		})
	})
	b.Run("WithLabelValues", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.requests.WithLabelValues(req.Tenant, req.Method, "allow", "2xx").Inc()
			m.requestDuration.WithLabelValues(req.Tenant, "http").Observe(req.Duration.Seconds())
			m.bytes.WithLabelValues(req.Tenant, dirUp).Add(float64(req.BytesUp))
			m.bytes.WithLabelValues(req.Tenant, dirDown).Add(float64(req.BytesDown))
		}
	})
}

func BenchmarkTunnel(b *testing.B) {
	m := New(prometheus.NewRegistry(), BuildInfo{})
	m.SetTenants([]string{"alpha"})
	b.ReportAllocs()
	for b.Loop() {
		tu := m.TunnelOpened("alpha")
		tu.Closed(1024, 4096)
	}
}
