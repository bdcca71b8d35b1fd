package metrics

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"

	"github.com/egressd/egressd/internal/promruletest"
)

// These tests keep deploy/monitoring and docs/metrics.md in step with the
// metric names registered here: a rename without updating a panel, an alert
// or the docs fails the build instead of leaving an empty panel.

const monitoringDir = "../deploy/monitoring"

var (
	metricNameRE = regexp.MustCompile(`\begressd_[a-z0-9_]+`)
	// by (...) and without (...) clauses name labels that must exist.
	groupingRE = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	// definedNameRE finds the Name of every metric declared in metrics.go.
	definedNameRE = regexp.MustCompile(`Name:\s*"([a-z0-9_]+)"`)
)

// registeredFamilies returns every egressd family with its label names,
// after recording one of everything so label-less vecs show up in Gather.
func registeredFamilies(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := New(reg, BuildInfo{Version: "test"})
	m.SetTenants([]string{"alpha"})
	recordEverything(m)
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range families {
		out[f.GetName()] = f
	}
	// Every metric defined in metrics.go must be here, or the checks below
	// could pass by not seeing a family at all.
	src, err := os.ReadFile("metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range definedNameRE.FindAllStringSubmatch(string(src), -1) {
		if _, ok := out[namespace+"_"+m[1]]; !ok {
			t.Fatalf("%s_%s is defined in metrics.go but not gathered; make recordEverything record it", namespace, m[1])
		}
	}
	return out
}

// checkExpr reports metric names in expr that are not registered (histogram
// suffixes resolved to their family) and grouping labels no family has.
func checkExpr(t *testing.T, where, expr string, families map[string]*dto.MetricFamily) {
	t.Helper()
	labels := map[string]bool{"le": true, "pod": true, "instance": true, "job": true, "namespace": true}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = true
			}
		}
	}
	for _, name := range metricNameRE.FindAllString(expr, -1) {
		if _, ok := families[name]; ok {
			continue
		}
		found := false
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if f, ok := families[strings.TrimSuffix(name, suffix)]; ok && strings.HasSuffix(name, suffix) && f.GetType() == dto.MetricType_HISTOGRAM {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: %s is not a registered metric (expr %q)", where, name, expr)
		}
	}
	for _, m := range groupingRE.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !labels[l] {
				t.Errorf("%s: grouping label %q is on no egressd metric (expr %q)", where, l, expr)
			}
		}
	}
}

type dashboardPanel struct {
	ID      int              `json:"id"`
	Type    string           `json:"type"`
	Title   string           `json:"title"`
	Panels  []dashboardPanel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func TestDashboardReferencesRegisteredMetrics(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(monitoringDir, "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID        string           `json:"uid"`
		Title      string           `json:"title"`
		Panels     []dashboardPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("decode dashboard.json: %v", err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Errorf("dashboard needs a uid and title, got %q %q", dash.UID, dash.Title)
	}
	families := registeredFamilies(t)

	var exprs int
	ids := map[int]string{}
	used := map[string]bool{}
	var walk func(ps []dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			if prev, dup := ids[p.ID]; dup {
				t.Errorf("panel id %d used by %q and %q", p.ID, prev, p.Title)
			}
			ids[p.ID] = p.Title
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no queries", p.Title)
			}
			for _, tg := range p.Targets {
				exprs++
				if !metricNameRE.MatchString(tg.Expr) {
					t.Errorf("panel %q: expr %q references no egressd metric", p.Title, tg.Expr)
				}
				checkExpr(t, "panel "+p.Title, tg.Expr, families)
				for _, n := range metricNameRE.FindAllString(tg.Expr, -1) {
					used[n] = true
				}
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if v.Definition != "" {
			checkExpr(t, "variable "+v.Name, v.Definition, families)
		}
	}
	if exprs < 20 {
		t.Errorf("found only %d queries; did the panel layout change shape?", exprs)
	}
	// The required views, by a metric each must show.
	for _, need := range []string{
		"egressd_requests_total", "egressd_denials_total", "egressd_open_tunnels",
		"egressd_request_duration_seconds_bucket", "egressd_upstream_dial_errors_total",
		"egressd_proxy_protocol_headers_total", "egressd_config_last_reload_successful",
		"egressd_tls_cert_cache_hits_total",
	} {
		if !used[need] {
			t.Errorf("no panel uses %s", need)
		}
	}
}

type ruleFile struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Spec       struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	} `yaml:"spec"`
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(monitoringDir, "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(raw, &rf); err != nil {
		t.Fatalf("decode prometheusrule.yaml: %v", err)
	}
	return rf
}

func TestPrometheusRuleAlerts(t *testing.T) {
	rf := loadRules(t)
	if rf.APIVersion != "monitoring.coreos.com/v1" || rf.Kind != "PrometheusRule" {
		t.Fatalf("got %s %s, want monitoring.coreos.com/v1 PrometheusRule", rf.APIVersion, rf.Kind)
	}
	families := registeredFamilies(t)
	seen := map[string]bool{}
	for _, g := range rf.Spec.Groups {
		for _, r := range g.Rules {
			seen[r.Alert] = true
			t.Run(r.Alert, func(t *testing.T) {
				for _, key := range []string{"summary", "description", "runbook"} {
					if strings.TrimSpace(r.Annotations[key]) == "" {
						t.Errorf("annotation %s is empty", key)
					}
				}
				if sev := r.Labels["severity"]; sev != "warning" && sev != "critical" {
					t.Errorf("severity %q, want warning or critical", sev)
				}
				if r.For == "" {
					t.Error("no for: a single bad scrape would page")
				}
				checkExpr(t, "alert "+r.Alert, r.Expr, families)
			})
		}
	}
	for _, want := range []string{
		"EgressdDown", "EgressdHighDenialRate", "EgressdUpstreamDialErrorsRising",
		"EgressdNearConnectionLimit", "EgressdConfigReloadFailing", "EgressdCACertExpiringSoon",
		"EgressdProxyHeadersRefused",
	} {
		if !seen[want] {
			t.Errorf("alert %s is missing", want)
		}
	}
}

// promtool finds the PromQL and template errors a YAML decode cannot, and
// its unit tests (testdata/rules_test.yaml) pin each alert's behaviour on
// synthetic series: with any alert's expression broken they fail.
func TestPrometheusRulePromtool(t *testing.T) {
	promruletest.Check(t, filepath.Join(monitoringDir, "prometheusrule.yaml"), filepath.Join("testdata", "rules_test.yaml"))
}

func TestScrapeManifests(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		kind      string
		endpoints string
	}{
		{name: "service monitor", file: "servicemonitor.yaml", kind: "ServiceMonitor", endpoints: "endpoints"},
		{name: "pod monitor", file: "podmonitor.yaml", kind: "PodMonitor", endpoints: "podMetricsEndpoints"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(monitoringDir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				APIVersion string         `yaml:"apiVersion"`
				Kind       string         `yaml:"kind"`
				Spec       map[string]any `yaml:"spec"`
			}
			if err := yaml.Unmarshal(raw, &doc); err != nil {
				t.Fatalf("decode: %v", err)
			}
			// Re-decode just the endpoint list into its typed form.
			epRaw, err := yaml.Marshal(doc.Spec[tc.endpoints])
			if err != nil {
				t.Fatal(err)
			}
			var eps []scrapeEndpoint
			if err := yaml.Unmarshal(epRaw, &eps); err != nil {
				t.Fatalf("decode %s: %v", tc.endpoints, err)
			}
			if doc.APIVersion != "monitoring.coreos.com/v1" || doc.Kind != tc.kind {
				t.Errorf("got %s %s, want monitoring.coreos.com/v1 %s", doc.APIVersion, doc.Kind, tc.kind)
			}
			if len(eps) != 1 {
				t.Fatalf("%d endpoints, want 1", len(eps))
			}
			ep := eps[0]
			if ep.Port != "admin" || ep.Path != "/metrics" {
				t.Errorf("scrapes port %q path %q, want admin /metrics", ep.Port, ep.Path)
			}
			// The alerts select job="egressd".
			if !slices.ContainsFunc(ep.Relabelings, func(r relabel) bool {
				return r.TargetLabel == "job" && r.Replacement == "egressd"
			}) {
				t.Error(`no relabeling sets job="egressd", which the alerts select`)
			}
		})
	}
}

type relabel struct {
	Action      string `yaml:"action"`
	TargetLabel string `yaml:"targetLabel"`
	Replacement string `yaml:"replacement"`
}

type scrapeEndpoint struct {
	Port        string    `yaml:"port"`
	Path        string    `yaml:"path"`
	Relabelings []relabel `yaml:"relabelings"`
}

func TestKustomizationFilesExist(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(monitoringDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources          []string `yaml:"resources"`
		ConfigMapGenerator []struct {
			Files []string `yaml:"files"`
		} `yaml:"configMapGenerator"`
	}
	if err := yaml.Unmarshal(raw, &k); err != nil {
		t.Fatalf("decode kustomization.yaml: %v", err)
	}
	files := slices.Clone(k.Resources)
	for _, g := range k.ConfigMapGenerator {
		for _, f := range g.Files {
			// "key=path" names the ConfigMap key separately.
			if _, path, ok := strings.Cut(f, "="); ok {
				f = path
			}
			files = append(files, f)
		}
	}
	if !slices.Contains(files, "dashboard.json") || !slices.Contains(files, "prometheusrule.yaml") {
		t.Errorf("kustomization ships %v; want the dashboard and the rules", files)
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(monitoringDir, f)); err != nil {
			t.Errorf("kustomization lists %s: %v", f, err)
		}
	}
}

func TestDocsListEveryMetric(t *testing.T) {
	raw, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	families := registeredFamilies(t)
	for name := range families {
		if !strings.Contains(doc, "`"+name+"`") {
			t.Errorf("docs/metrics.md does not document %s", name)
		}
	}
	for _, name := range metricNameRE.FindAllString(doc, -1) {
		checkExpr(t, "docs/metrics.md", name, families)
	}
}
