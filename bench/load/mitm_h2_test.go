package load

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/bench/goproxybase"
	"github.com/egressd/egressd/proxy"
	"github.com/egressd/egressd/tlsinspect"
)

// startInspectingEgressd runs egressd in-process, bumping every CONNECT
// from LinkID 1001 with ca, verifying the origin with originPEM: the same
// set-up as compare.sh's egressd-mitm.yaml.
func startInspectingEgressd(t *testing.T, caFile, caKey, originPEM string) string {
	t.Helper()
	insp, err := tlsinspect.Load(tlsinspect.Config{CACert: caFile, CAKey: caKey, UpstreamRoots: []string{originPEM}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return startEgressd(t, insp, "bump")
}

// startEgressd runs an in-process egressd with the bench's tenant, its
// defaults (sni_check enforce) and the given inspection mode.
func startEgressd(t *testing.T, insp *tlsinspect.Inspector, mode string) string {
	t.Helper()
	pol, err := acl.Compile(acl.Config{Tenants: []acl.TenantConfig{{
		Name: "bench", LinkIDs: []uint32{1001},
		Rules:         []acl.RuleConfig{{Name: "loopback", CIDRs: []string{"127.0.0.0/8"}}},
		TLSInspection: acl.TLSInspectionConfig{Mode: mode},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := proxy.Config{Listen: "127.0.0.1:0", ProxyProtocol: proxy.PPRequired, TrustedProxies: []string{"127.0.0.0/8"}}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := proxy.New(cfg, proxy.Deps{Log: zap.NewNop(), AccessLog: zap.NewNop(), Policy: pol, Inspector: insp})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, proxy.ErrServerClosed) {
			t.Errorf("egressd: %v", err)
		}
	})
	return ln.Addr().String()
}

// TestMITMH2 is the smoke form of the mitm-h2 mode: against egressd the
// streams share one inspected tunnel over h2; against goproxy, which has
// no HTTP/2 inside its MITM (as Squid's ssl_bump), the mode falls back to
// keep-alive HTTP/1.1 tunnels and says so. Both results carry figures.
func TestMITMH2(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile, caKey := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	if err := WriteCertificate(ca, caFile, caKey); err != nil {
		t.Fatal(err)
	}
	originCert, err := OriginCertificate()
	if err != nil {
		t.Fatal(err)
	}
	// The origin needs a certificate the proxies can be told to trust.
	originPEM, originKey := filepath.Join(dir, "origin.pem"), filepath.Join(dir, "origin-key.pem")
	if err := WriteCertificate(originCert, originPEM, originKey); err != nil {
		t.Fatal(err)
	}
	origin, err := StartOrigin("127.0.0.1:0", 0, originCert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = origin.Close() })
	roots := x509.NewCertPool()
	roots.AddCert(ca.Leaf)

	for _, tc := range []struct {
		name         string
		addr         string
		wantFallback bool
	}{
		{name: "egressd", addr: startInspectingEgressd(t, caFile, caKey, originPEM)},
		{name: "goproxy-mitm", addr: startGoproxy(t, goproxybase.Options{MITMCA: &ca, UpstreamRoots: origin.Roots}), wantFallback: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Mode: ModeMITMH2, Target: tc.name, Proxy: tc.addr, Concurrency: 16,
				Duration: 5 * time.Second, Requests: 400, ProxyProtocol: 2, LinkID: 1001,
				ProxyPID: os.Getpid(), MITMRoots: roots}
			rs, err := Run(context.Background(), cfg, origin)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 2 || rs[0].Mode != ResultMITMH2 || rs[1].Mode != ResultMITMKeepAlive {
				t.Fatalf("results %+v, want %s then %s", rs, ResultMITMH2, ResultMITMKeepAlive)
			}
			for _, r := range rs {
				t.Logf("%s %s: ops=%d ops/s=%s ops/proxy-cpu-s=%s", r.Mode, r.Target, r.Ops, fmtPtr(r.OpsPerS), fmtPtr(r.OpsPerCPUS))
				if !r.OK() || r.OpsPerCPUS == nil || r.Bytes != r.Ops*SmallSize {
					t.Fatalf("%s: ops=%d errors=%d ops/cpu-s=%v note=%q samples=%q", r.Mode, r.Ops, r.Errors, fmtPtr(r.OpsPerCPUS), r.Note, r.ErrorSamples)
				}
			}
			if fell := strings.Contains(rs[0].Note, "not h2"); fell != tc.wantFallback {
				t.Errorf("mitm-h2 note %q: fallback to HTTP/1.1 = %v, want %v", rs[0].Note, fell, tc.wantFallback)
			}
		})
	}
}

func TestMITMH2NotAvailable(t *testing.T) {
	origin := testOrigin(t, 0)
	cfg := Config{Mode: ModeMITMH2, Target: "x", Proxy: "127.0.0.1:1", Concurrency: 1, Duration: time.Second}
	if _, err := Run(context.Background(), cfg, origin); err != ErrMITMNotAvailable {
		t.Fatalf("err = %v, want ErrMITMNotAvailable", err)
	}
}

// TestIdleTunnelsThroughEgressdOutlastTheHelloWait: the idle mode holds
// HTTPS keep-alive tunnels, so under egressd's default sni_check: enforce
// they outlast the ClientHello wait (3 s), and the origin's wait for a
// first request (10 s), and all carry a request at the end.
func TestIdleTunnelsThroughEgressdOutlastTheHelloWait(t *testing.T) {
	cert, err := OriginCertificate()
	if err != nil {
		t.Fatal(err)
	}
	origin, err := StartOrigin("127.0.0.1:0", 0, cert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = origin.Close() })
	cfg := Config{Mode: ModeIdle, Target: "egressd", Proxy: startEgressd(t, nil, "off"), Concurrency: 4,
		Duration: 5 * time.Second, Tunnels: 20, Hold: 11 * time.Second, ProxyProtocol: 2, LinkID: 1001,
		ProxyPID: os.Getpid()}
	rs, err := Run(context.Background(), cfg, origin)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Ops != 20 || rs[0].Errors != 0 {
		t.Fatalf("idle through egressd: %+v, want all 20 tunnels to carry a GET after the hold", rs)
	}
}
