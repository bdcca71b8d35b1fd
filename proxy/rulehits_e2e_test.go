package proxy_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/metrics"
	"github.com/egressd/egressd/proxy"
)

// Requests through the real proxy count against the rule that decided
// them, with its action; rule label values are the configured names only,
// so a flood of invented hosts adds no series.
func TestRuleHitsCountPerConfiguredRule(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{Version: "test"})
	res := loopbackResolver("ok.origin.test", "listed.origin.test")
	cfg := testACL()
	cfg.DenyFeeds = []acl.DenyFeedConfig{{Name: "ti", File: feedFile(t, "listed.origin.test\n")}}
	cfg.Tenants[0].Rules = append([]acl.RuleConfig{{Name: "no-post", Action: "deny", Methods: []string{"POST"}}}, cfg.Tenants[0].Rules...)
	pol := compilePolicy(t, cfg)
	p := startProxy(t, withResolver(res), withDeps(func(d *proxy.Deps) { d.Policy, d.Metrics = pol, m }))
	m.SetTenants(pol.Tenants())
	m.SetRules(pol.RuleNames())
	origin := strings.TrimPrefix(helloOrigin(t), "http://")
	_, port, _ := strings.Cut(origin, ":")

	for range 3 {
		getVia(t, p, "http://ok.origin.test:"+port+"/", 0)
	}
	getVia(t, p, "http://listed.origin.test:"+port+"/", 0)
	for i := range 20 {
		getVia(t, p, "http://invented"+strings.Repeat("x", i)+".nowhere.test:"+port+"/", 0)
	}
	want := map[[3]string]float64{
		{demoTenant, "test-names", "allow"}: 3,
		{demoTenant, "feed/ti", "deny"}:     1,
		{demoTenant, "default", "deny"}:     20,
	}
	waitFor(t, ioTimeout, "rule hits to be counted", func() bool {
		return metricValue(t, reg, "egressd_rule_hits_total", map[string]string{"tenant": demoTenant, "rule": "default"}) == 20
	})
	for k, v := range want {
		if got := metricValue(t, reg, "egressd_rule_hits_total", map[string]string{"tenant": k[0], "rule": k[1], "action": k[2]}); got != v {
			t.Errorf("rule_hits{%s,%s,%s} = %v, want %v", k[0], k[1], k[2], got, v)
		}
	}
	if n := testutil.CollectAndCount(reg, "egressd_rule_hits_total"); n != len(want) {
		t.Errorf("%d rule_hits series, want %d", n, len(want))
	}
	// A reload that drops a rule drops its series.
	cfg = testACL()
	cfg.Tenants[0].Rules = cfg.Tenants[0].Rules[:1]
	m.SetRules(compilePolicy(t, cfg).RuleNames())
	if got := metricValue(t, reg, "egressd_rule_hits_total", map[string]string{"rule": "test-names"}); got != 0 {
		t.Errorf("series of a removed rule still exported: %v", got)
	}
	if problems, err := testutil.GatherAndLint(reg, "egressd_rule_hits_total"); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}
