// Package lint finds what is valid but almost certainly not meant in an
// egressd config, for `egressd check`: warnings, not errors, because the
// proxy runs such a config exactly as written.
package lint

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/egressd/egressd/acl"
)

// Finding is one warning; Path is the YAML path it starts with, so the
// caller can point at the line.
type Finding struct {
	Path string
	Msg  string
	// For a shadowed rule: the tenant, the rule and the earlier rule that
	// covers it, by the names decisions carry (the rule's name, or its
	// YAML path when it has none), and whether the two actions differ.
	// `egressd rules-report` lists them per tenant.
	Tenant, Rule, By string
	Overridden       bool
}

func (f Finding) String() string { return f.Path + ": " + f.Msg }

// Config returns the warnings for a validated policy config.
func Config(cfg acl.Config) []Finding {
	var out []Finding
	for i, t := range cfg.Tenants {
		out = append(out, shadowed(cfg, i, t)...)
	}
	return out
}

// placed is a rule with the YAML path it came from (a ruleset's rules are
// placed where the tenant names the ruleset).
type placed struct {
	path string
	rule acl.RuleConfig
}

// name is what Decision.Rule says for this rule (acl.Compile's default).
func (p placed) name() string {
	if p.rule.Name != "" {
		return p.rule.Name
	}
	return p.path
}

func (p placed) label() string {
	if p.rule.Name != "" {
		return fmt.Sprintf("%s (%s)", p.path, p.rule.Name)
	}
	return p.path
}

// shadowed reports each rule of tenant t that an earlier rule matches
// whenever it would: first match wins, so it can never decide anything.
// Built-in rulesets are left out (their contents vary by cloud and region).
func shadowed(cfg acl.Config, i int, t acl.TenantConfig) []Finding {
	var rules []placed
	for j, rc := range t.Rules {
		switch {
		case strings.HasPrefix(rc.Ruleset, acl.BuiltinPrefix):
		case rc.Ruleset != "":
			for k, sr := range cfg.Rulesets[rc.Ruleset] {
				rules = append(rules, placed{fmt.Sprintf("rulesets.%s[%d]", rc.Ruleset, k), sr})
			}
		default:
			rules = append(rules, placed{fmt.Sprintf("tenants[%d].rules[%d]", i, j), rc})
		}
	}
	var out []Finding
	for b := range rules {
		for a := range b {
			if !covers(rules[a].rule, rules[b].rule) {
				continue
			}
			what := "an earlier rule already matches every request it does"
			if action(rules[a].rule) != action(rules[b].rule) {
				what = fmt.Sprintf("its %s never applies", action(rules[b].rule))
			}
			out = append(out, Finding{Path: rules[b].path, Tenant: t.Name, Rule: rules[b].name(), By: rules[a].name(),
				Overridden: action(rules[a].rule) != action(rules[b].rule), Msg: fmt.Sprintf("rule %s can never match in tenant %s: %s %s covers it (first match wins), so %s; move it above or narrow the earlier rule",
					rules[b].label(), t.Name, action(rules[a].rule), rules[a].label(), what)})
			break
		}
	}
	return out
}

func action(r acl.RuleConfig) string {
	if r.Action == "deny" {
		return "deny"
	}
	return "allow"
}

// covers reports whether every request rule b matches is matched by a.
// It errs towards false: a missed warning is better than a wrong one.
func covers(a, b acl.RuleConfig) bool {
	return coversDest(a, b) &&
		coversSet(a.Methods, b.Methods, strings.EqualFold) &&
		coversSet(a.Schemes, b.Schemes, strings.EqualFold) &&
		coversPorts(a.Ports, b.Ports) &&
		coversPaths(a, b)
}

// coversSet: an empty list means any; otherwise b's values are a subset of a's.
func coversSet(a, b []string, eq func(x, y string) bool) bool {
	if len(a) == 0 {
		return true
	}
	if len(b) == 0 {
		return false
	}
	for _, y := range b {
		if !slices.ContainsFunc(a, func(x string) bool { return eq(x, y) }) {
			return false
		}
	}
	return true
}

func coversPaths(a, b acl.RuleConfig) bool {
	if len(a.Paths) == 0 {
		return true
	}
	// An allow rule with paths refuses an unclean path that a deny rule
	// with paths takes, so an allow never covers a deny here.
	if len(b.Paths) == 0 || action(a) == "allow" && action(b) == "deny" {
		return false
	}
	for _, pb := range b.Paths {
		if !slices.ContainsFunc(a.Paths, func(pa string) bool { return strings.HasPrefix(pb, pa) }) {
			return false
		}
	}
	return true
}

func coversPorts(a, b []string) bool {
	if len(a) == 0 {
		return true
	}
	if len(b) == 0 {
		return false
	}
	for _, pb := range b {
		blo, bhi := portRange(pb)
		if !slices.ContainsFunc(a, func(pa string) bool {
			alo, ahi := portRange(pa)
			return alo <= blo && bhi <= ahi
		}) {
			return false
		}
	}
	return true
}

func portRange(s string) (lo, hi int) {
	l, h, ok := strings.Cut(s, "-")
	lo, _ = strconv.Atoi(l)
	hi = lo
	if ok {
		hi, _ = strconv.Atoi(h)
	}
	return lo, hi
}

// coversDest: a rule with neither domains nor cidrs matches any target;
// otherwise each of b's domains and cidrs must lie inside one of a's.
func coversDest(a, b acl.RuleConfig) bool {
	if len(a.Domains) == 0 && len(a.CIDRs) == 0 {
		return true
	}
	if len(b.Domains) == 0 && len(b.CIDRs) == 0 {
		return false
	}
	for _, db := range b.Domains {
		if !slices.ContainsFunc(a.Domains, func(da string) bool { return domainCovers(da, db) }) {
			return false
		}
	}
	for _, cb := range b.CIDRs {
		pb, ok := prefix(cb)
		if !ok || !slices.ContainsFunc(a.CIDRs, func(ca string) bool {
			pa, ok := prefix(ca)
			return ok && pa.Bits() <= pb.Bits() && pa.Contains(pb.Addr())
		}) {
			return false
		}
	}
	return true
}

func prefix(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// domainCovers reports whether pattern a matches every name pattern b
// does: "x" exact, "*.d" strict subdomains, ".d" d and its subdomains,
// "*" any.
func domainCovers(a, b string) bool {
	a, b = normDomain(a), normDomain(b)
	if a == "*" {
		return true
	}
	if b == "*" {
		return false
	}
	under := func(name, d string) bool { return strings.HasSuffix(name, "."+d) }
	switch {
	case strings.HasPrefix(a, "*."):
		d := a[2:]
		switch {
		case strings.HasPrefix(b, "*."):
			return b[2:] == d || under(b[2:], d)
		case strings.HasPrefix(b, "."):
			return under(b[1:], d)
		default:
			return under(b, d)
		}
	case strings.HasPrefix(a, "."):
		d := a[1:]
		name := strings.TrimPrefix(strings.TrimPrefix(b, "*"), ".")
		return name == d || under(name, d)
	default:
		return a == b
	}
}

func normDomain(s string) string { return strings.TrimSuffix(strings.ToLower(s), ".") }
