package load

import (
	"context"
	"crypto/x509"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/egressd/egressd/bench/goproxybase"
)

// TestModes runs every mode briefly against the relay and the goproxy
// reference, and checks that the figures are present and coherent.
func TestModes(t *testing.T) {
	origin := testOrigin(t, 0)
	targets := []struct {
		name  string
		addr  string
		relay bool
	}{
		{name: "relay", addr: startRelay(t, origin.Addr), relay: true},
		{name: "goproxy", addr: startGoproxy(t, goproxybase.Options{})},
	}
	modes := []struct {
		mode string
		size int64
	}{
		{mode: ModeHTTPRPS},
		{mode: ModeConnectRate},
		{mode: ModeConnectThroughput, size: 1 << 20},
		{mode: ModeHTTPThroughput, size: 1 << 20},
		{mode: ModeIdle},
	}
	for _, tg := range targets {
		for _, m := range modes {
			t.Run(tg.name+"/"+m.mode, func(t *testing.T) {
				cfg := Config{
					Mode: m.mode, Target: tg.name, Proxy: tg.addr, Relay: tg.relay,
					Concurrency: 2, Duration: 700 * time.Millisecond, Requests: 2000,
					ProxyProtocol: 2, LinkID: 1001, ProxyPID: os.Getpid(),
					Size: m.size, Tunnels: 50, Hold: 50 * time.Millisecond,
				}
				rs, err := Run(context.Background(), cfg, origin)
				if err != nil {
					t.Fatal(err)
				}
				if len(rs) != 1 {
					t.Fatalf("got %d results, want 1", len(rs))
				}
				checkSane(t, rs[0], cfg)
			})
		}
	}
}

func checkSane(t *testing.T, r Result, cfg Config) {
	t.Helper()
	if r.Errors != 0 || !r.OK() {
		t.Fatalf("errors=%d ops=%d note=%q samples=%q", r.Errors, r.Ops, r.Note, r.ErrorSamples)
	}
	if r.Mode != cfg.Mode || r.Target != cfg.Target {
		t.Errorf("result names %s/%s, want %s/%s", r.Mode, r.Target, cfg.Mode, cfg.Target)
	}
	if cfg.Requests > 0 && r.Ops > cfg.Requests {
		t.Errorf("ops %d exceed the count bound %d", r.Ops, cfg.Requests)
	}
	wantPerOp := int64(SmallSize)
	switch cfg.Mode {
	case ModeConnectThroughput, ModeHTTPThroughput:
		wantPerOp = cfg.Size
	case ModeIdle:
		wantPerOp = 0 // the verification GET is not payload
		if r.Ops != int64(cfg.Tunnels) {
			t.Errorf("idle verified %d tunnels, want %d", r.Ops, cfg.Tunnels)
		}
		if r.RSSPerTunnelKiB == nil {
			t.Error("idle: no RSS per tunnel although a PID was given")
		}
	}
	if r.Bytes != r.Ops*wantPerOp {
		t.Errorf("bytes %d, want ops×%d = %d", r.Bytes, wantPerOp, r.Ops*wantPerOp)
	}
	figures := map[string]*float64{"ops/s": r.OpsPerS, "p50": r.P50Ms, "proxy cpu": r.ProxyCPUS}
	if cfg.Mode == ModeIdle {
		// Opening 50 tunnels may take less than one 10 ms clock tick.
		if r.ProxyCPUS == nil {
			t.Error("idle: no proxy CPU figure although a PID was given")
		}
		delete(figures, "proxy cpu")
	}
	for name, v := range figures {
		if v == nil || *v <= 0 {
			t.Errorf("%s = %v, want a positive figure", name, fmtPtr(v))
		}
	}
	if r.P50Ms != nil && r.P99Ms != nil && r.MaxMs != nil && !(*r.P50Ms <= *r.P99Ms && *r.P99Ms <= *r.MaxMs) {
		t.Errorf("percentiles out of order: p50=%v p99=%v max=%v", *r.P50Ms, *r.P99Ms, *r.MaxMs)
	}
	if r.ProxyRSSKiB == nil || *r.ProxyRSSKiB <= 0 {
		t.Errorf("proxy RSS %v, want positive", r.ProxyRSSKiB)
	}
}

// TestHeaderVersions: the relay strips every header version (or none) and
// connect-rate still completes.
func TestHeaderVersions(t *testing.T) {
	origin := testOrigin(t, 0)
	addr := startRelay(t, origin.Addr)
	for _, tc := range []struct {
		name    string
		version byte
	}{{name: "none", version: 0}, {name: "v1", version: 1}, {name: "v2", version: 2}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Mode: ModeConnectRate, Target: "relay", Proxy: addr, Relay: true, Concurrency: 1,
				Duration: 2 * time.Second, Requests: 20, ProxyProtocol: tc.version, LinkID: 7}
			rs, err := Run(context.Background(), cfg, origin)
			if err != nil {
				t.Fatal(err)
			}
			if rs[0].Errors != 0 || rs[0].Ops != 20 {
				t.Fatalf("ops=%d errors=%d samples=%q, want 20 and 0", rs[0].Ops, rs[0].Errors, rs[0].ErrorSamples)
			}
		})
	}
}

// TestMITM drives both phases through goproxy inspecting with a test CA.
func TestMITM(t *testing.T) {
	origin := testOrigin(t, 4)
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	addr := startGoproxy(t, goproxybase.Options{MITMCA: &ca, UpstreamRoots: origin.Roots})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Leaf)
	cfg := Config{Mode: ModeMITM, Target: "goproxy-mitm", Proxy: addr, Concurrency: 2,
		Duration: 700 * time.Millisecond, Requests: 200, ProxyProtocol: 2, LinkID: 1001,
		ProxyPID: os.Getpid(), MITMRoots: roots, MITMColdHosts: 4}
	rs, err := Run(context.Background(), cfg, origin)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Mode != "mitm-cold" || rs[1].Mode != "mitm-warm" {
		t.Fatalf("results %+v, want mitm-cold then mitm-warm", rs)
	}
	for _, r := range rs {
		if !r.OK() {
			t.Fatalf("%s: errors=%d samples=%q", r.Mode, r.Errors, r.ErrorSamples)
		}
	}
	if rs[0].Ops != 4 {
		t.Errorf("cold phase ops %d, want one per host (4)", rs[0].Ops)
	}

	// Without the proxy's CA the client must refuse the minted leaf.
	cfg.MITMRoots = origin.Roots
	rs, err = Run(context.Background(), cfg, origin)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Errors != 4 || rs[0].OpsPerS != nil {
		t.Errorf("untrusted CA: errors=%d ops/s=%v, want 4 errors and no figure", rs[0].Errors, rs[0].OpsPerS)
	}
}

func TestMITMNotAvailable(t *testing.T) {
	origin := testOrigin(t, 0)
	cfg := Config{Mode: ModeMITM, Target: "x", Proxy: "127.0.0.1:1", Concurrency: 1, Duration: time.Second, MITMColdHosts: 1}
	_, err := Run(context.Background(), cfg, origin)
	if err != ErrMITMNotAvailable {
		t.Fatalf("err = %v, want ErrMITMNotAvailable", err)
	}
}

func fmtPtr(v *float64) string {
	if v == nil {
		return "nil"
	}
	return strconv.FormatFloat(*v, 'g', -1, 64)
}
