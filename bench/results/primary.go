package results

import "strings"

// primary is the metric a mode is judged by.
type primary struct {
	name        string
	get         func(Figures) *float64
	lowerBetter bool
}

func primaryFor(mode string) primary {
	switch {
	case mode == "idle":
		return primary{name: "KiB RSS per idle tunnel", get: func(f Figures) *float64 { return f.RSSPerTunnelKiB }, lowerBetter: true}
	case strings.HasSuffix(mode, "-throughput"):
		return primary{name: "MiB per proxy CPU-second", get: func(f Figures) *float64 { return f.MiBPerCPUS }}
	default:
		return primary{name: "ops per proxy CPU-second", get: func(f Figures) *float64 { return f.OpsPerCPUS }}
	}
}

// target is one of issue 7's performance targets for egressd.
type target struct {
	mode string
	text string
	// check returns the measured ratio or value, the bound, and whether it
	// is met; ok is false when a figure is missing.
	check func(main, squid, floor *Group) (got, want float64, met, ok bool)
}

func ratioTarget(mode, text, ref string, want float64) target {
	return target{mode: mode, text: text, check: func(m, s, f *Group) (float64, float64, bool, bool) {
		refG := s
		if ref == Floor {
			refG = f
		}
		p := primaryFor(mode)
		r, ok := ratio(p.get, m, refG)
		return r, want, r >= want, ok
	}}
}

var targets = []target{
	ratioTarget("connect-throughput", "CONNECT bulk MiB/CPU-s ≥ 0.9× relay", Floor, 0.9),
	ratioTarget("connect-throughput", "CONNECT bulk MiB/CPU-s ≥ 3× Squid", Squid, 3),
	ratioTarget("http-rps", "HTTP small requests/CPU-s ≥ 2× Squid", Squid, 2),
	{mode: "http-rps", text: "HTTP small p99 ≤ Squid's p99 (ratio ≤ 1)", check: func(m, s, _ *Group) (float64, float64, bool, bool) {
		r, ok := ratio(func(f Figures) *float64 { return f.P99Ms }, m, s)
		return r, 1, r <= 1, ok
	}},
	ratioTarget("connect-rate", "New tunnels/CPU-s ≥ 1.5× Squid", Squid, 1.5),
	ratioTarget("http-throughput", "HTTP bulk MiB/CPU-s ≥ 5× Squid", Squid, 5),
	{mode: "idle", text: "Idle tunnel RSS ≤ 16 KiB (KiB/tunnel)", check: func(m, _, _ *Group) (float64, float64, bool, bool) {
		if m == nil || m.Median.RSSPerTunnelKiB == nil {
			return 0, 16, false, false
		}
		v := *m.Median.RSSPerTunnelKiB
		return v, 16, v <= 16, true
	}},
	ratioTarget("mitm-warm", "Warm inspected tunnels/CPU-s ≥ 2× Squid ssl_bump", Squid, 2),
}

// ratio is get(a)/get(b); ok is false when either is missing or b is zero.
func ratio(get func(Figures) *float64, a, b *Group) (float64, bool) {
	if a == nil || b == nil {
		return 0, false
	}
	x, y := get(a.Median), get(b.Median)
	if x == nil || y == nil || *y == 0 {
		return 0, false
	}
	return *x / *y, true
}
