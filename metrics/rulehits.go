package metrics

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egressd/egressd/acl"
)

const (
	labelRule   = "rule"
	labelAction = "action"
)

// Rule actions: what the policy decided, before the proxy's own refusals
// (limits, TLS) and upstream failures, which egressd_requests_total shows.
const (
	ruleAllow = iota
	ruleDeny
	ruleWouldDeny
	ruleAuthRequired
	numRuleActions
)

var ruleActionNames = [numRuleActions]string{"allow", "deny", "would_deny", "auth_required"}

type ruleKey struct{ tenant, rule string }

// ruleSlot caches one rule's children, created on the first hit so rules
// never hit export nothing (rules-report finds those from the log).
type ruleSlot struct {
	retired  atomic.Bool
	counters [numRuleActions]atomic.Pointer[prometheus.Counter]
}

// ruleHits is egressd_rule_hits_total. Its label values come only from
// SetRules, i.e. from the configuration: a decision naming a rule not
// declared there is not counted, so no request can add a series.
type ruleHits struct {
	vec   *prometheus.CounterVec
	slots atomic.Pointer[map[ruleKey]*ruleSlot]
	mu    sync.Mutex // serialises SetRules
}

func newRuleHits() *ruleHits {
	h := &ruleHits{vec: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "rule_hits_total",
		Help: "Policy decisions by tenant, the rule that made them (a configured rule name, feed/NAME, builtin/SET[rule], default, ssrf, auth or no-tenant) and action (allow, deny, would_deny, auth_required).",
	}, []string{labelTenant, labelRule, labelAction})}
	empty := map[ruleKey]*ruleSlot{}
	h.slots.Store(&empty)
	return h
}

// SetRules declares each tenant's rule names (acl.Policy.RuleNames). Call
// it with SetTenants at startup and on every reload; rules that are gone
// lose their series.
func (m *Metrics) SetRules(rules map[string][]string) {
	if m == nil {
		return
	}
	h := m.ruleHits
	h.mu.Lock()
	defer h.mu.Unlock()
	old := *h.slots.Load()
	next := make(map[ruleKey]*ruleSlot, len(old))
	for tenant, names := range rules {
		for _, name := range names {
			k := ruleKey{tenant, name}
			if s, ok := old[k]; ok {
				next[k] = s
			} else if _, ok := next[k]; !ok {
				next[k] = &ruleSlot{}
			}
		}
	}
	h.slots.Store(&next)
	for k, s := range old {
		if _, kept := next[k]; !kept {
			s.retired.Store(true)
			h.vec.DeletePartialMatch(prometheus.Labels{labelTenant: k.tenant, labelRule: k.rule})
		}
	}
}

// ruleHit counts d against its rule. It does not allocate once the child
// exists.
func (m *Metrics) ruleHit(d acl.Decision) {
	h := m.ruleHits
	tenant := d.Tenant
	if tenant == "" {
		tenant = unknownTenant
	}
	s, ok := (*h.slots.Load())[ruleKey{tenant, d.Rule}]
	if !ok {
		return
	}
	a := ruleDeny
	switch {
	case d.Action == acl.Allow && d.WouldDeny:
		a = ruleWouldDeny
	case d.Action == acl.Allow:
		a = ruleAllow
	case d.Action == acl.AuthRequired:
		a = ruleAuthRequired
	}
	if c := s.counters[a].Load(); c != nil {
		(*c).Inc()
		return
	}
	c := h.vec.WithLabelValues(tenant, d.Rule, ruleActionNames[a])
	s.counters[a].Store(&c)
	if s.retired.Load() {
		h.vec.DeleteLabelValues(tenant, d.Rule, ruleActionNames[a])
	}
	c.Inc()
}
