package proxy_test

// Learned splicing (issue 17, item 4): after a tenant's clients reject
// the inspection certificate for a host N times, the host is spliced for
// the TTL, loudly; never for a host the bump list names, and never when
// the tenant did not opt in.

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zapcore"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/metrics"
	"github.com/egressd/egressd/proxy"
)

// learnSetup runs an inspecting proxy with ti for tenant demo, an origin
// for api.origin.test, and a metrics registry.
func learnSetup(t *testing.T, ti acl.TLSInspectionConfig) (*testProxy, string, *prometheus.Registry) {
	t.Helper()
	pki := newTrustSet(t)
	o := startTLSOrigin(t, pki.leaf(t, leafSpec{names: []string{"api.origin.test"}}, nil),
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{Version: "test"})
	m.SetTenants([]string{demoTenant})
	s := startProxy(t, withInspection(pki, ti), withDeps(func(d *proxy.Deps) { d.Metrics = m }))
	return s, "api.origin.test:" + o.port, reg
}

// rejectMinted runs n handshakes with a client that trusts only the
// origin's root, as a pinned client does, and waits until the proxy has
// logged each refusal (it counts one only after the client's alert).
func rejectMinted(t *testing.T, s *testProxy, authority string, n int) {
	t.Helper()
	for i := range n {
		tc, err := tlsVia(s.addr, authority, "api.origin.test", s.pki.originPool)
		if err == nil {
			tc.Close()
			t.Fatalf("handshake %d accepted: the client saw a certificate it trusts, want the minted one", i+1)
		}
	}
	waitFor(t, ioTimeout, "the refusals' access lines", func() bool {
		k := 0
		for _, e := range s.accessEntries() {
			if accessField(e, "kind") == "bumped_tunnel" && accessField(e, "error") == "client_tls" {
				k++
			}
		}
		return k >= n
	})
}

// originCertificate reports whether a client trusting only the origin's
// root now completes the handshake, i.e. sees the origin's own leaf.
func originCertificate(t *testing.T, s *testProxy, authority string) bool {
	t.Helper()
	tc, err := tlsVia(s.addr, authority, "api.origin.test", s.pki.originPool)
	if err != nil {
		return false
	}
	defer tc.Close()
	leaf := tc.ConnectionState().PeerCertificates[0]
	if leaf.CheckSignatureFrom(s.pki.originRoot) != nil {
		t.Fatalf("leaf issued by %q, want the origin root", leaf.Issuer)
	}
	return true
}

func TestLearnedSpliceAfterRepeatedCertificateRejections(t *testing.T) {
	s, authority, reg := learnSetup(t, acl.TLSInspectionConfig{Mode: "bump",
		LearnSplice: &acl.LearnSpliceConfig{After: 3, TTL: time.Hour}})
	rejectMinted(t, s, authority, 2)
	if originCertificate(t, s, authority) {
		t.Fatal("spliced after 2 refusals, want 3")
	}
	// The probe above was a third refusal: the host is learned now.
	waitFor(t, ioTimeout, "the third refusal", func() bool {
		return metricValue(t, reg, "egressd_tls_learned_splices_total", map[string]string{"tenant": demoTenant}) == 1
	})
	if !originCertificate(t, s, authority) {
		t.Fatal("the next CONNECT after 3 refusals was still bumped, want it spliced")
	}
	checkAccessFields(t, s.waitAccess(t, "the learned splice", func(e map[string]any) bool {
		return accessField(e, "kind") == "connect" && accessField(e, "error") == "learned_splice"
	}), map[string]string{"tenant": demoTenant, "host": "api.origin.test", "status": "200"})
	warned := s.events.FilterMessageSnippet("learned to splice").FilterField(zapcore.Field{Key: "host", Type: zapcore.StringType, String: "api.origin.test"})
	if warned.Len() != 1 || warned.All()[0].Level != zapcore.WarnLevel {
		t.Errorf("learned-splice warnings: %v, want one warn naming the host", warned.All())
	}
}

func TestLearnedSpliceNeverForANamedBumpHost(t *testing.T) {
	s, authority, _ := learnSetup(t, acl.TLSInspectionConfig{Mode: "bump", Bump: []string{"*", "api.origin.test"},
		LearnSplice: &acl.LearnSpliceConfig{After: 1, TTL: time.Hour}})
	rejectMinted(t, s, authority, 3)
	if originCertificate(t, s, authority) {
		t.Fatal("a host named in bump: was spliced by learning")
	}
}

func TestLearnedSpliceIsOffByDefault(t *testing.T) {
	s, authority, _ := learnSetup(t, acl.TLSInspectionConfig{Mode: "bump"})
	rejectMinted(t, s, authority, 5)
	if originCertificate(t, s, authority) {
		t.Fatal("spliced without learn_splice configured")
	}
}
