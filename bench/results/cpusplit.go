package results

import (
	_ "embed"
	"fmt"
	"strings"
)

// remains says what each remaining cost of the issue 18 targets is for; it
// follows the CPU split, whose figures it explains.
//
//go:embed remains.md
var remains string

// cpuSplitModes are the per-operation modes whose targets (issue 18) are
// set against the relay and Squid.
var cpuSplitModes = []struct {
	mode              string
	op                string
	wantRelay, wantSq float64 // the bounds, 0 for none
}{
	{"connect-rate", "new tunnel", 1.2, 1.5},
	{"http-rps", "small request", 1.0, 0},
}

// writeCPUSplit shows where each proxy's CPU per operation goes, user
// space against kernel, and what that leaves reachable: the kernel part
// (accepting, connecting, moving the segments over loopback, closing) is
// paid by any proxy on this kernel, so even a proxy whose user space cost
// nothing could not be cheaper per operation than its own kernel time.
func writeCPUSplit(b *strings.Builder, groups []Group) {
	b.WriteString("## Where the CPU of an operation goes (issue 18)\n\n" +
		"Proxy CPU per operation from the rounds above (medians), split into user space (utime) and kernel (stime). " +
		"The kernel part is the TCP work on loopback: accept, connect, every segment sent and received (softirq work is " +
		"charged to the process that sends), close. The **ceiling** is what egressd would reach if its user space cost " +
		"nothing: the reference's total divided by egressd's kernel time.\n\n")
	for _, m := range cpuSplitModes {
		eg, relay, squid := find(groups, m.mode, Main), find(groups, m.mode, Floor), find(groups, m.mode, Squid)
		fmt.Fprintf(b, "### %s (one %s)\n\n| proxy | user µs/op | kernel µs/op | total µs/op | user share |\n|---|---:|---:|---:|---:|\n", m.mode, m.op)
		for _, g := range []*Group{eg, relay, squid, find(groups, m.mode, "goproxy")} {
			u, k, ok := split(g)
			if !ok {
				continue
			}
			fmt.Fprintf(b, "| %s | %.1f | %.1f | %.1f | %.0f%% |\n", g.Target, u, k, u+k, 100*u/(u+k))
		}
		b.WriteString("\n")
		egU, egK, ok := split(eg)
		if !ok {
			b.WriteString("egressd has no CPU split in this run.\n\n")
			continue
		}
		for _, ref := range []struct {
			g    *Group
			want float64
		}{{relay, m.wantRelay}, {squid, m.wantSq}} {
			rU, rK, ok := split(ref.g)
			if !ok || ref.want == 0 {
				continue
			}
			total := rU + rK
			fmt.Fprintf(b, "- Against %s: ceiling %.2f× (target %.2f×). ", ref.g.Target, total/egK, ref.want)
			budget := total/ref.want - egK
			switch {
			case budget <= 0:
				fmt.Fprintf(b, "Unreachable even with zero user-space CPU: egressd's kernel time alone (%.1f µs) exceeds %.1f µs, %s's total divided by the target.\n", egK, total/ref.want, ref.g.Target)
			default:
				fmt.Fprintf(b, "It needs egressd's user space at ≤ %.1f µs per %s (now %.1f µs), %.0f%% of what %s's own user space spends (%.1f µs).\n",
					budget, m.op, egU, 100*budget/rU, ref.g.Target, rU)
			}
		}
		b.WriteString("\n")
	}
	writeIdleSplit(b, groups)
	b.WriteString(remains + "\n")
}

func split(g *Group) (user, kernel float64, ok bool) {
	if g == nil || g.Median.UserUsPerOp == nil || g.Median.SysUsPerOp == nil || *g.Median.SysUsPerOp == 0 {
		return 0, 0, false
	}
	return *g.Median.UserUsPerOp, *g.Median.SysUsPerOp, true
}

// writeIdleSplit breaks egressd's memory per idle tunnel down by kind, from
// its Go runtime's own gauges taken with the RSS samples.
func writeIdleSplit(b *strings.Builder, groups []Group) {
	g := find(groups, "idle", Main)
	if g == nil || g.Median.RSSPerTunnelKiB == nil || g.Median.StackKiBPerTunnel == nil ||
		g.Median.HeapKiBPerTunnel == nil || g.Median.GoroutinesPerTunnel == nil {
		return
	}
	m := g.Median
	rss, stack, heap := *m.RSSPerTunnelKiB, *m.StackKiBPerTunnel, *m.HeapKiBPerTunnel
	b.WriteString("### idle (one held tunnel)\n\n" +
		"egressd's growth per held tunnel, from its Go runtime's gauges (go_goroutines, go_memstats_stack_inuse_bytes, " +
		"go_memstats_heap_inuse_bytes) read with the RSS samples. Heap in use includes garbage not yet collected; " +
		"\"rest\" is what RSS adds to both (runtime metadata, heap pages not returned yet).\n\n" +
		"| goroutines | stack KiB | heap KiB | rest KiB | RSS KiB |\n|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(b, "| %.2f | %.2f | %.2f | %.2f | %.2f |\n\n", *m.GoroutinesPerTunnel, stack, heap, rss-stack-heap, rss)
}
