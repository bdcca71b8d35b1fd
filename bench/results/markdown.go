package results

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Meta is what RESULTS.md says about the run besides the figures.
type Meta struct {
	Date     string
	Machine  []string // "key: value" lines
	Commands []string
	Notes    []string
	Profiles []Profile
}

// Profile is `go tool pprof -top` of egressd under one mode.
type Profile struct {
	Mode, Top string
}

// WriteMarkdown writes RESULTS.md.
func WriteMarkdown(w io.Writer, meta Meta, groups []Group) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Bench results\n\nWritten by `bench/compare.sh` on %s. Do not edit by hand: rerun `make bench`.\n\n", meta.Date)
	b.WriteString("## Machine\n\n")
	for _, m := range meta.Machine {
		fmt.Fprintf(&b, "- %s\n", m)
	}
	b.WriteString("\n## How to read this\n\n" +
		"Each figure is the median of the rounds that completed without a single error; `ok` says how many rounds that was. " +
		"A round with any failed request has no figures at all. The proxy under test is pinned to CPU 0, the load generator " +
		"and its origin to CPU 1. The load generator's core is usually the bottleneck, so raw rates (ops/s, MiB/s) mostly " +
		"measure the client; the **primary metric is work per proxy CPU-second** (utime+stime of the proxy process from " +
		"/proc, 10 ms resolution). `×squid` and `×relay` divide the primary metric by Squid's and by the splice relay's " +
		"(the physical floor: a proxy cannot beat it on bytes per CPU-second). For idle, lower is better.\n\n")
	if len(meta.Notes) > 0 {
		b.WriteString("## Notes from this run\n\n")
		for _, n := range meta.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
		b.WriteString("\n")
	}
	writeTargets(&b, groups)
	writeCPUSplit(&b, groups)
	writeH2Ratios(&b, groups)
	writeModes(&b, groups)
	if len(meta.Profiles) > 0 {
		b.WriteString("## egressd CPU profiles\n\nTaken after the measured rounds, 3 s under each mode (same load, not counted above).\n\n")
		for _, p := range meta.Profiles {
			fmt.Fprintf(&b, "### %s\n\n```\n%s```\n\n", p.Mode, p.Top)
		}
	}
	b.WriteString("## Commands\n\n```sh\n")
	for _, c := range meta.Commands {
		b.WriteString(c + "\n")
	}
	b.WriteString("```\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write markdown: %w", err)
	}
	return nil
}

func find(groups []Group, mode, target string) *Group {
	for i := range groups {
		if groups[i].Mode == mode && groups[i].Target == target {
			return &groups[i]
		}
	}
	return nil
}

func writeTargets(b *strings.Builder, groups []Group) {
	b.WriteString("## Targets (egressd; issues 7 and 18)\n\n| target | measured | bound | status |\n|---|---:|---:|---|\n")
	for _, t := range targets {
		got, want, met, ok := t.check(find(groups, t.mode, Main), find(groups, t.mode, Squid), find(groups, t.mode, Floor))
		status := "no data (a proxy was not measured or had errors)"
		measured := "-"
		if ok {
			measured = fmt.Sprintf("%.2f", got)
			status = "met"
			if !met {
				status = fmt.Sprintf("**missed** (%.0f%% of the bound)", 100*got/want)
				if want < got {
					status = fmt.Sprintf("**missed** (%.2f× over the bound)", got/want)
				}
			}
		}
		fmt.Fprintf(b, "| %s | %s | %.2f | %s |\n", t.text, measured, want, status)
	}
	b.WriteString("\n")
}

func writeModes(b *strings.Builder, groups []Group) {
	var modes []string
	for _, g := range groups {
		if !slices.Contains(modes, g.Mode) {
			modes = append(modes, g.Mode)
		}
	}
	for _, mode := range modes {
		p := primaryFor(mode)
		squid, floor := find(groups, mode, Squid), find(groups, mode, Floor)
		fmt.Fprintf(b, "## %s\n\nPrimary metric: %s.\n\n", mode, p.name)
		b.WriteString("| proxy | ok | primary | ×squid | ×relay | ops/s | MiB/s | p50 ms | p99 ms | max ms | proxy CPU s | RSS KiB |\n")
		b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		var notes []string
		for _, g := range groups {
			if g.Mode != mode {
				continue
			}
			rs, sOK := ratio(p.get, &g, squid)
			rf, fOK := ratio(p.get, &g, floor)
			m := g.Median
			fmt.Fprintf(b, "| %s | %d/%d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
				g.Target, g.OK, g.Rounds, num(p.get(m), 1), ratioCell(rs, sOK), ratioCell(rf, fOK),
				num(m.OpsPerS, 1), num(m.MiBPerS, 1), num(m.P50Ms, 2), num(m.P99Ms, 2), num(m.MaxMs, 2),
				num(m.ProxyCPUS, 2), num(m.RSSKiB, 0))
			for _, n := range g.Notes {
				notes = append(notes, g.Target+": "+n)
			}
		}
		b.WriteString("\n")
		for _, n := range notes {
			fmt.Fprintf(b, "- %s\n", n)
		}
		if len(notes) > 0 {
			b.WriteString("\n")
		}
	}
}

func num(v *float64, prec int) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, *v)
}

func ratioCell(r float64, ok bool) string {
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.2f×", r)
}
