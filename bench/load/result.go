package load

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

const mib = 1 << 20

// Result is one measured run. Figure fields are nil when withheld: a run
// with any error prints its errors and no figure at all, and the proxy
// figures are nil when no --proxy-pid was given.
type Result struct {
	Mode         string   `json:"mode"`
	Target       string   `json:"target"`
	Ops          int64    `json:"ops"`
	Errors       int64    `json:"errors"`
	ErrorSamples []string `json:"error_samples,omitempty"`
	DurationS    float64  `json:"duration_s"`
	Bytes        int64    `json:"bytes"`
	Concurrency  int      `json:"concurrency"`

	OpsPerS    *float64 `json:"ops_per_s"`
	MiBPerS    *float64 `json:"mib_per_s"`
	P50Ms      *float64 `json:"p50_ms"`
	P90Ms      *float64 `json:"p90_ms"`
	P99Ms      *float64 `json:"p99_ms"`
	MaxMs      *float64 `json:"max_ms"`
	ClientCPUS *float64 `json:"client_cpu_s"`

	ProxyCPUS *float64 `json:"proxy_cpu_s"`
	// The same CPU split into user space and kernel (utime and stime):
	// the kernel part is the TCP work every proxy pays (issue 18).
	ProxyUserCPUS   *float64 `json:"proxy_user_cpu_s,omitempty"`
	ProxySysCPUS    *float64 `json:"proxy_sys_cpu_s,omitempty"`
	OpsPerCPUS      *float64 `json:"ops_per_proxy_cpu_s"`
	MiBPerCPUS      *float64 `json:"mib_per_proxy_cpu_s"`
	ProxyRSSKiB     *int64   `json:"proxy_rss_kib"`
	RSSPerTunnelKiB *float64 `json:"rss_per_tunnel_kib,omitempty"`
	// What a Go proxy's runtime says one idle tunnel holds (--proxy-metrics).
	GoroutinesPerTunnel *float64 `json:"goroutines_per_tunnel,omitempty"`
	StackKiBPerTunnel   *float64 `json:"stack_kib_per_tunnel,omitempty"`
	HeapKiBPerTunnel    *float64 `json:"heap_kib_per_tunnel,omitempty"`

	// Note explains withheld figures or an unavailable mode.
	Note string `json:"note,omitempty"`
}

// OK reports whether the result carries figures.
func (r Result) OK() bool { return r.Errors == 0 && r.Ops > 0 }

func ptr[T any](v T) *T { return &v }

func ms(d time.Duration) *float64 { return ptr(float64(d) / float64(time.Millisecond)) }

// measurement is the raw material of a Result.
type measurement struct {
	mode, target   string
	concurrency    int
	t              *tally
	elapsed        time.Duration
	proxyBefore    *procSample
	proxyAfter     *procSample
	clientBefore   procSample
	clientAfter    procSample
	clientSampleOK bool
}

func (m measurement) result() Result {
	r := Result{
		Mode:         m.mode,
		Target:       m.target,
		Ops:          m.t.ops.Load(),
		Errors:       m.t.errs.Load(),
		ErrorSamples: m.t.errSet,
		DurationS:    m.elapsed.Seconds(),
		Bytes:        m.t.bytes.Load(),
		Concurrency:  m.concurrency,
	}
	switch {
	case r.Errors > 0:
		r.Note = fmt.Sprintf("%d of %d operations failed: figures withheld", r.Errors, r.Errors+r.Ops)
		return r
	case r.Ops == 0:
		r.Note = "no operation completed: figures withheld"
		return r
	}
	secs := m.elapsed.Seconds()
	r.OpsPerS = ptr(float64(r.Ops) / secs)
	r.MiBPerS = ptr(float64(r.Bytes) / mib / secs)
	p := m.t.percentiles()
	r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs = ms(p.p50), ms(p.p90), ms(p.p99), ms(p.max)
	if m.clientSampleOK {
		r.ClientCPUS = ptr(float64(m.clientAfter.cpuTicks()-m.clientBefore.cpuTicks()) / clockTicks)
	}
	if m.proxyBefore != nil && m.proxyAfter != nil {
		cpu := float64(m.proxyAfter.cpuTicks()-m.proxyBefore.cpuTicks()) / clockTicks
		r.ProxyCPUS = ptr(cpu)
		r.ProxyUserCPUS = ptr(float64(m.proxyAfter.userTicks-m.proxyBefore.userTicks) / clockTicks)
		r.ProxySysCPUS = ptr(float64(m.proxyAfter.sysTicks-m.proxyBefore.sysTicks) / clockTicks)
		r.ProxyRSSKiB = ptr(m.proxyAfter.rssKiB)
		if cpu > 0 {
			r.OpsPerCPUS = ptr(float64(r.Ops) / cpu)
			r.MiBPerCPUS = ptr(float64(r.Bytes) / mib / cpu)
		} else {
			r.Note = "proxy used less than one clock tick of CPU: per-CPU figures withheld"
		}
	}
	return r
}

// WriteJSON writes one JSON line per result.
func WriteJSON(w io.Writer, results []Result) error {
	enc := json.NewEncoder(w)
	for _, r := range results {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("encode result: %w", err)
		}
	}
	return nil
}

// WriteTable writes a human table; "-" marks a withheld figure.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\ttarget\tops\terrors\tsecs\tops/s\tMiB/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tproxy cpu s\tops/cpu-s\tMiB/cpu-s\trss KiB\tKiB/tunnel\t")
	for _, r := range results {
		cols := []string{
			r.Mode, r.Target, fmt.Sprint(r.Ops), fmt.Sprint(r.Errors), fmt.Sprintf("%.2f", r.DurationS),
			f1(r.OpsPerS), f2(r.MiBPerS), f2(r.P50Ms), f2(r.P90Ms), f2(r.P99Ms), f2(r.MaxMs),
			f2(r.ProxyCPUS), f1(r.OpsPerCPUS), f1(r.MiBPerCPUS), i64(r.ProxyRSSKiB), f2(r.RSSPerTunnelKiB),
		}
		fmt.Fprintln(tw, strings.Join(cols, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	for _, r := range results {
		if r.Note != "" {
			fmt.Fprintf(w, "%s %s: %s\n", r.Mode, r.Target, r.Note)
		}
		for _, e := range r.ErrorSamples {
			fmt.Fprintf(w, "%s %s: error: %s\n", r.Mode, r.Target, e)
		}
	}
	return nil
}

func f1(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", *v)
}

func f2(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", *v)
}

func i64(v *int64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprint(*v)
}
