// Package results turns the JSON lines of several bench rounds into
// bench/RESULTS.md: per mode and proxy the median of the rounds that had no
// error, ratios to Squid and to the splice relay, and the targets.
//
// The primary metric is work per proxy CPU-second: on a two-core machine
// the load generator and origin saturate their core before the proxy does,
// so raw rates mostly measure the client.
package results

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/egressd/egressd/bench/load"
)

// Names of the reference proxies, as compare.sh passes them to --name.
const (
	Squid = "squid"
	Floor = "relay"
	Main  = "egressd"
)

// Group is one mode against one proxy over all rounds.
type Group struct {
	Mode, Target string
	Rounds       int // results read
	OK           int // rounds with figures
	Notes        []string
	Median       Figures
}

// Figures are medians over the OK rounds; nil when no round had the figure.
type Figures struct {
	OpsPerS, MiBPerS, P50Ms, P99Ms, MaxMs     *float64
	ProxyCPUS, OpsPerCPUS, MiBPerCPUS, RSSKiB *float64
	RSSPerTunnelKiB, ClientCPUS, Ops          *float64
	// Proxy CPU per operation in µs, user space and kernel (issue 18).
	UserUsPerOp, SysUsPerOp *float64
	// What a Go proxy's runtime says an idle tunnel holds.
	GoroutinesPerTunnel, StackKiBPerTunnel, HeapKiBPerTunnel *float64
}

// Read parses JSON lines as written by `egressd-bench run --json`.
func Read(r io.Reader) ([]load.Result, error) {
	var out []load.Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var res load.Result
		if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
			return nil, fmt.Errorf("results line %d: %w", line, err)
		}
		if res.Mode == "" || res.Target == "" {
			return nil, fmt.Errorf("results line %d: mode and target are required", line)
		}
		out = append(out, res)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	return out, nil
}

// Summarize groups results by mode and target, in first-seen order.
func Summarize(rs []load.Result) []Group {
	type key struct{ mode, target string }
	var order []key
	byKey := map[key][]load.Result{}
	for _, r := range rs {
		k := key{r.Mode, r.Target}
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], r)
	}
	groups := make([]Group, 0, len(order))
	for _, k := range order {
		groups = append(groups, summarize(k.mode, k.target, byKey[k]))
	}
	return groups
}

func summarize(mode, target string, rs []load.Result) Group {
	g := Group{Mode: mode, Target: target, Rounds: len(rs)}
	var ok []load.Result
	for _, r := range rs {
		if r.OK() {
			ok = append(ok, r)
		}
		if r.Note != "" && !slices.Contains(g.Notes, r.Note) {
			g.Notes = append(g.Notes, r.Note)
		}
		for _, e := range r.ErrorSamples {
			if n := "error: " + e; !slices.Contains(g.Notes, n) && len(g.Notes) < 6 {
				g.Notes = append(g.Notes, n)
			}
		}
	}
	g.OK = len(ok)
	med := func(get func(load.Result) *float64) *float64 {
		var v []float64
		for _, r := range ok {
			if p := get(r); p != nil {
				v = append(v, *p)
			}
		}
		return median(v)
	}
	g.Median = Figures{
		OpsPerS:    med(func(r load.Result) *float64 { return r.OpsPerS }),
		MiBPerS:    med(func(r load.Result) *float64 { return r.MiBPerS }),
		P50Ms:      med(func(r load.Result) *float64 { return r.P50Ms }),
		P99Ms:      med(func(r load.Result) *float64 { return r.P99Ms }),
		MaxMs:      med(func(r load.Result) *float64 { return r.MaxMs }),
		ProxyCPUS:  med(func(r load.Result) *float64 { return r.ProxyCPUS }),
		OpsPerCPUS: med(func(r load.Result) *float64 { return r.OpsPerCPUS }),
		MiBPerCPUS: med(func(r load.Result) *float64 { return r.MiBPerCPUS }),
		RSSKiB: med(func(r load.Result) *float64 {
			if r.ProxyRSSKiB == nil {
				return nil
			}
			v := float64(*r.ProxyRSSKiB)
			return &v
		}),
		RSSPerTunnelKiB: med(func(r load.Result) *float64 { return r.RSSPerTunnelKiB }),
		ClientCPUS:      med(func(r load.Result) *float64 { return r.ClientCPUS }),
		Ops: med(func(r load.Result) *float64 {
			v := float64(r.Ops)
			return &v
		}),
		UserUsPerOp: med(func(r load.Result) *float64 { return perOpUs(r.ProxyUserCPUS, r.Ops) }),
		SysUsPerOp:  med(func(r load.Result) *float64 { return perOpUs(r.ProxySysCPUS, r.Ops) }),

		GoroutinesPerTunnel: med(func(r load.Result) *float64 { return r.GoroutinesPerTunnel }),
		StackKiBPerTunnel:   med(func(r load.Result) *float64 { return r.StackKiBPerTunnel }),
		HeapKiBPerTunnel:    med(func(r load.Result) *float64 { return r.HeapKiBPerTunnel }),
	}
	return g
}

// perOpUs is CPU seconds per operation in µs; nil without the figure.
func perOpUs(cpuS *float64, ops int64) *float64 {
	if cpuS == nil || ops == 0 {
		return nil
	}
	v := *cpuS / float64(ops) * 1e6
	return &v
}

// median of v; nil when v is empty. An even count averages the middle two.
func median(v []float64) *float64 {
	if len(v) == 0 {
		return nil
	}
	s := slices.Clone(v)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return &m
}
