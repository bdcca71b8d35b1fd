package results

import (
	"strings"
	"testing"

	"github.com/egressd/egressd/bench/load"
)

func f(v float64) *float64 { return &v }

func TestSummarizeMediansCleanRoundsOnly(t *testing.T) {
	rs := []load.Result{
		{Mode: "http-rps", Target: "egressd", Ops: 10, OpsPerCPUS: f(300), P99Ms: f(3)},
		{Mode: "http-rps", Target: "egressd", Ops: 10, OpsPerCPUS: f(100), P99Ms: f(1)},
		{Mode: "http-rps", Target: "egressd", Ops: 10, Errors: 2, ErrorSamples: []string{"status 502"}},
		{Mode: "http-rps", Target: "egressd", Ops: 10, OpsPerCPUS: f(200), P99Ms: f(2)},
		{Mode: "http-rps", Target: "squid", Ops: 10, OpsPerCPUS: f(50), P99Ms: f(4)},
		{Mode: "http-rps", Target: "squid", Ops: 10, OpsPerCPUS: f(150), P99Ms: f(6)},
	}
	g := Summarize(rs)
	if len(g) != 2 || g[0].Target != "egressd" || g[1].Target != "squid" {
		t.Fatalf("groups %+v, want egressd then squid", g)
	}
	if g[0].OK != 3 || g[0].Rounds != 4 {
		t.Errorf("egressd ok %d/%d, want 3/4", g[0].OK, g[0].Rounds)
	}
	if got := *g[0].Median.OpsPerCPUS; got != 200 {
		t.Errorf("egressd median %v, want 200 (the failed round left out)", got)
	}
	if got := *g[1].Median.OpsPerCPUS; got != 100 {
		t.Errorf("squid median of two %v, want their mean 100", got)
	}
	if !strings.Contains(strings.Join(g[0].Notes, "|"), "error: status 502") {
		t.Errorf("notes %q, want the failed round's error", g[0].Notes)
	}
}

func TestMarkdownRatiosAndTargets(t *testing.T) {
	groups := Summarize([]load.Result{
		{Mode: "http-rps", Target: "egressd", Ops: 1, OpsPerCPUS: f(300), P99Ms: f(5)},
		{Mode: "http-rps", Target: "squid", Ops: 1, OpsPerCPUS: f(100), P99Ms: f(4)},
		{Mode: "http-rps", Target: "relay", Ops: 1, OpsPerCPUS: f(600), P99Ms: f(1)},
	})
	var b strings.Builder
	if err := WriteMarkdown(&b, Meta{Date: "today", Notes: []string{"squid: Squid Cache: Version 6"}}, groups); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"| egressd | 1/1 | 300.0 | 3.00× | 0.50× |",
		"| HTTP small requests/CPU-s ≥ 2× Squid | 3.00 | 2.00 | met |",
		"| HTTP small p99 ≤ Squid's p99 (ratio ≤ 1) | 1.25 | 1.00 | **missed** (1.25× over the bound) |",
		"| New tunnels/CPU-s ≥ 1.5× Squid | - | 1.50 | no data",
		"- squid: Squid Cache: Version 6",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestReadRejectsBadLines(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{name: "not json", in: "{\n", wantErr: "results line 1: unexpected end of JSON input"},
		{name: "no mode", in: `{"target":"x"}` + "\n", wantErr: "results line 1: mode and target are required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(tc.in))
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestMarkdownInspectedH2Ratios(t *testing.T) {
	groups := Summarize([]load.Result{
		{Mode: "mitm-h2", Target: "egressd", Ops: 1, OpsPerCPUS: f(3000)},
		{Mode: "mitm-h1-keepalive", Target: "egressd", Ops: 1, OpsPerCPUS: f(2000)},
		{Mode: "mitm-h2", Target: "squid", Ops: 1, OpsPerCPUS: f(1000), Note: "the proxy negotiated \"\", not h2"},
		{Mode: "mitm-h1-keepalive", Target: "squid", Ops: 1, Errors: 1},
	})
	var b strings.Builder
	if err := WriteMarkdown(&b, Meta{Date: "today"}, groups); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"| egressd h2, 16 streams on one tunnel ÷ egressd HTTP/1.1, 16 keep-alive tunnels | 1.50× |",
		"| egressd h2, 16 streams on one tunnel ÷ Squid ssl_bump with the same client (falls back to HTTP/1.1) | 3.00× |",
		"| egressd HTTP/1.1 keep-alive ÷ Squid ssl_bump HTTP/1.1 keep-alive | no data",
		"## mitm-h2",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// TestCPUSplitCeilings checks the per-operation split and the two kinds of
// verdict: a target that a smaller user space could reach, and one that
// egressd's kernel time alone rules out.
func TestCPUSplitCeilings(t *testing.T) {
	groups := Summarize([]load.Result{
		// 1000 new tunnels each: egressd 0.2 s user + 0.3 s kernel, the
		// relay 0.1 + 0.3, Squid 0.15 + 0.3.
		{Mode: "connect-rate", Target: "egressd", Ops: 1000, ProxyUserCPUS: f(0.2), ProxySysCPUS: f(0.3)},
		{Mode: "connect-rate", Target: "relay", Ops: 1000, ProxyUserCPUS: f(0.1), ProxySysCPUS: f(0.3)},
		{Mode: "connect-rate", Target: "squid", Ops: 1000, ProxyUserCPUS: f(0.15), ProxySysCPUS: f(0.3)},
		{Mode: "idle", Target: "egressd", Ops: 9000, RSSPerTunnelKiB: f(10.5), GoroutinesPerTunnel: f(2),
			StackKiBPerTunnel: f(4.25), HeapKiBPerTunnel: f(4.5)},
	})
	var b strings.Builder
	writeCPUSplit(&b, groups)
	md := b.String()
	for _, want := range []string{
		"| egressd | 200.0 | 300.0 | 500.0 | 40% |",
		"| relay | 100.0 | 300.0 | 400.0 | 25% |",
		// 400/300 = 1.33× ceiling; 1.2× needs 400/1.2 - 300 = 33.3 µs of user space.
		"- Against relay: ceiling 1.33× (target 1.20×). It needs egressd's user space at ≤ 33.3 µs per new tunnel (now 200.0 µs), 33% of what relay's own user space spends (100.0 µs).",
		// 450/1.5 = 300 µs: the kernel time alone uses all of it.
		"- Against squid: ceiling 1.50× (target 1.50×). Unreachable even with zero user-space CPU",
		"egressd has no CPU split in this run.", // http-rps was not measured
		"| 2.00 | 4.25 | 4.50 | 1.75 | 10.50 |",
		"## What remains of the issue 18 targets, and why",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("CPU split lacks %q:\n%s", want, md)
		}
	}
}
