package inject

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/egressd/egressd/internal/promruletest"
)

const injectRules = "../deploy/workload/inject-monitoring/prometheusrule.yaml"

// The webhook's alerts name only metrics the webhook registers, and each
// has a severity, a for: and the three annotations the proxy's alerts have.
func TestInjectAlertsNameRegisteredMetricsAndCarryRunbooks(t *testing.T) {
	raw, err := os.ReadFile(injectRules)
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Spec struct {
			Groups []struct {
				Rules []struct {
					Alert, Expr, For string
					Labels           map[string]string
					Annotations      map[string]string
				}
			}
		}
	}
	if err := yaml.Unmarshal(raw, &rf); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if _, err := newMetrics(reg); err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, f := range fams {
		known[f.GetName()] = true
	}
	// Gauges and histograms with no observation yet are still gathered
	// by name; counter vectors without a label set are not, so add them.
	for _, n := range []string{"egressd_inject_pods_total", "egressd_inject_requests_rejected_total", "egressd_inject_cert_reloads_total"} {
		known[n] = true
	}
	metric := regexp.MustCompile(`egressd_inject_[a-z_]+`)
	n := 0
	for _, g := range rf.Spec.Groups {
		for _, r := range g.Rules {
			n++
			for _, k := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[k]) == "" {
					t.Errorf("%s: annotation %s empty", r.Alert, k)
				}
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q", r.Alert, s)
			}
			if r.For == "" {
				t.Errorf("%s: no for:", r.Alert)
			}
			for _, m := range metric.FindAllString(r.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
				if !known[base] {
					t.Errorf("%s: expr names %s, which the webhook does not register", r.Alert, m)
				}
			}
		}
	}
	if n < 4 {
		t.Fatalf("only %d alerts", n)
	}
}

// promtool checks the webhook's alerts, and its unit tests
// (testdata/rules_test.yaml) pin each one: with any alert's expression
// broken they fail.
func TestInjectAlertsPassPromtool(t *testing.T) {
	promruletest.Check(t, injectRules, filepath.Join("testdata", "rules_test.yaml"))
}
