package acl

// RuleNames returns, per tenant, every name Decision.Rule can carry for
// it: its rules (rulesets and built-ins expanded), the deny feeds, and the
// fixed outcomes. Tenant "unknown" gets the names of requests no tenant
// took. Metrics use it to bound egressd_rule_hits_total by the config.
func (p *Policy) RuleNames() map[string][]string {
	out := make(map[string][]string, len(p.tenants)+1)
	for _, t := range p.tenants {
		seen := map[string]bool{}
		names := make([]string, 0, len(t.rules)+len(p.feeds)+3)
		add := func(n string) {
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
		for _, f := range p.feeds {
			add(f.rule)
		}
		for _, r := range t.rules {
			add(r.name)
		}
		add(RuleDefault)
		add(RuleSSRF)
		add(RuleAuth)
		out[t.name] = names
	}
	out["unknown"] = []string{RuleNoTenant, RuleAuth}
	return out
}
