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

// target is one of the performance targets for egressd (issues 7 and 18).
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
	idleTarget("Idle tunnel RSS ≤ 16 KiB (KiB/tunnel)", 16, func(f Figures) *float64 { return f.RSSPerTunnelKiB }),
	ratioTarget("mitm-warm", "Warm inspected tunnels/CPU-s ≥ 2× Squid ssl_bump", Squid, 2),
	// Issue 18.
	ratioTarget("connect-rate", "New tunnels/CPU-s ≥ 1.2× relay", Floor, 1.2),
	ratioTarget("http-rps", "HTTP small requests/CPU-s ≥ 1.0× relay", Floor, 1),
	{mode: "http-rps", text: "HTTP small p99 ≤ 0.75× Squid's p99", check: func(m, s, _ *Group) (float64, float64, bool, bool) {
		r, ok := ratio(func(f Figures) *float64 { return f.P99Ms }, m, s)
		return r, 0.75, r <= 0.75, ok
	}},
	idleTarget("Idle tunnel RSS ≤ 8 KiB (KiB/tunnel)", 8, func(f Figures) *float64 { return f.RSSPerTunnelKiB }),
	idleTarget("Idle RSS ≤ 80 MiB in total (MiB)", 80, func(f Figures) *float64 {
		if f.RSSKiB == nil {
			return nil
		}
		v := *f.RSSKiB / 1024
		return &v
	}),
}

// idleTarget bounds a figure of the idle mode from above.
func idleTarget(text string, bound float64, get func(Figures) *float64) target {
	return target{mode: "idle", text: text, check: func(m, _, _ *Group) (float64, float64, bool, bool) {
		if m == nil || get(m.Median) == nil {
			return 0, bound, false, false
		}
		v := *get(m.Median)
		return v, bound, v <= bound, true
	}}
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
