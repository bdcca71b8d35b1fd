package proxy_test

// Helpers for the reliability suite (faults, bounds, soak, prologue fuzz):
// a dialer that fails the test when asked for anything but loopback,
// metric lookups by label, a panic count, and a bounded leak check.
// Everything here talks to 127.0.0.0/8 only.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/egressd/egressd/proxy"
)

// strictDial is loopbackOnlyDial that also fails the test when asked for
// any other address: the SSRF guard must stop such a dial before it is made.
// calls counts every dial attempt.
func strictDial(t testing.TB, calls *atomic.Int32) proxy.DialFunc {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		calls.Add(1)
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !ap.Addr().Unmap().IsLoopback() {
			t.Errorf("proxy dialed %q: only loopback may ever be dialed", address)
			return nil, fmt.Errorf("test dialer: refusing %q", address)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}
}

// metricValue sums every sample of family name whose labels include want.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var total float64
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !labelsMatch(m.GetLabel(), want) {
				continue
			}
			switch {
			case m.Counter != nil:
				total += m.GetCounter().GetValue()
			case m.Gauge != nil:
				total += m.GetGauge().GetValue()
			case m.Histogram != nil:
				total += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return total
}

func labelsMatch(got []*dto.LabelPair, want map[string]string) bool {
	n := 0
	for _, lp := range got {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// wantMetric waits (bounded) for a metric to reach want: counters are
// bumped when the access-log line is written, which may trail the client's
// view of the response by a moment.
func wantMetric(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string, want float64) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		got := metricValue(t, reg, name, labels)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s%v = %v, want %v", name, labels, got, want)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// resources is a snapshot of goroutines and descriptors; check waits
// (bounded) until both are back to it. Take it after the proxy and the
// origins are up, so what it proves is that a single request or tunnel
// leaves nothing behind on a server that keeps running.
type resources struct {
	goroutines goleak.Option
	fds        int
}

func resourceSnapshot(t testing.TB) resources {
	t.Helper()
	return resources{goroutines: goleak.IgnoreCurrent(), fds: openFDs(t)}
}

func (r resources) check(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	fds := openFDs(t)
	for fds > r.fds && time.Now().Before(deadline) {
		runtime.GC() // a dropped *os.File closes its descriptor in a finalizer
		time.Sleep(20 * time.Millisecond)
		fds = openFDs(t)
	}
	if fds > r.fds {
		t.Errorf("%d descriptors open, %d before: %d leaked", fds, r.fds, fds-r.fds)
	}
	// Find retries with backoff for a couple of seconds on its own.
	if err := goleak.Find(r.goroutines); err != nil {
		t.Errorf("goroutines left behind: %v", err)
	}
}

// panicCount counts log entries that mention a panic.
func panicCount(p *testProxy) int {
	n := 0
	for _, e := range p.events.All() {
		if strings.Contains(strings.ToLower(e.Message), "panic") {
			n++
		}
	}
	return n
}
