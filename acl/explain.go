package acl

import (
	"fmt"
	"net/netip"
	"strings"
)

// Explain evaluates one request like Decide and says why, for
// `egressd explain`. It never prints the password.
func Explain(p *Policy, id Identity, cred Credentials, t Target) string {
	var b strings.Builder
	line := func(k, format string, args ...any) {
		fmt.Fprintf(&b, "%-12s %s\n", k+":", fmt.Sprintf(format, args...))
	}

	idParts := []string{}
	if id.HasLinkID {
		idParts = append(idParts, fmt.Sprintf("link_id=%d", id.LinkID))
	} else {
		idParts = append(idParts, "link_id=none")
	}
	idParts = append(idParts, "client="+addrPortString(id.Client), "lb="+addrPortString(id.LB))
	if cred.Present {
		idParts = append(idParts, fmt.Sprintf("user=%q (password given)", cred.User))
	} else {
		idParts = append(idParts, "credentials=none")
	}
	line("identity", "%s", strings.Join(idParts, " "))
	line("target", "%s", targetString(t))

	ti, how := p.recognize(id, cred)
	if ti < 0 {
		line("tenant", "none (%s)", p.whyNoTenant(id, cred))
	} else {
		line("tenant", "%s (%s)", p.tenants[ti].name, p.whyTenant(ti, how, id, cred))
	}

	d := p.Decide(id, cred, t)
	switch d.Reason {
	case ReasonRule:
		line("rule", "%s (%s)", d.Rule, ruleAction(p, ti, d.Rule))
	case ReasonDefault:
		def := "deny"
		if p.tenants[ti].defaultAllow {
			def = "allow"
		}
		line("rule", "default (no rule matched; tenant default is %s)", def)
	default:
		line("rule", "%s", d.Rule)
	}
	line("decision", "%s (reason %s)", decisionWord(d), d.Reason)
	if d.Upstream != nil {
		line("upstream", "via parent proxy %s: %s", d.Upstream.URL, p.whyParent(d.Tenant, d.Upstream))
	}

	ro := "off"
	if ti >= 0 {
		switch {
		case p.reportOnly && p.tenants[ti].reportOnly:
			ro = "on (global and tenant)"
		case p.reportOnly:
			ro = "on (global)"
		case p.tenants[ti].reportOnly:
			ro = "on (tenant)"
		}
	}
	line("report-only", "%s", ro)

	switch {
	case ti < 0 || d.Action != Allow:
		line("ssrf", "not reached (request already refused)")
	case !t.Addr.IsValid():
		line("ssrf", "checked at dial time on each resolved address")
	default:
		dd := p.CheckDial(p.tenants[ti].name, t.Addr, t)
		_, rangeName, internal := internalPrefix(t.Addr)
		switch {
		case dd.Reason == ReasonRule:
			what := "is public"
			if internal {
				what = "is internal (" + rangeName + ")"
			}
			line("ssrf", "%s %s; rule %s decides at dial time: %s", t.Addr, what, dd.Rule, decisionWord(dd))
		case internal:
			line("ssrf", "%s is internal (%s): deny; allow it with a rule whose cidrs name this range", t.Addr, rangeName)
		default:
			line("ssrf", "%s is a public address: allow", t.Addr)
		}
	}
	return b.String()
}

func (p *Policy) whyTenant(ti int32, how via, id Identity, cred Credentials) string {
	tn := p.tenants[ti]
	switch how {
	case viaLinkID:
		if len(tn.natCIDRs) > 0 {
			return fmt.Sprintf("link_id %d via nat_cidrs, load balancer %s", id.LinkID, addrString(id.LB))
		}
		return fmt.Sprintf("link_id %d", id.LinkID)
	case viaUser:
		return fmt.Sprintf("proxy user %q", cred.User)
	case viaSource:
		_, pr := p.sources.longest(id.Client.Addr().Unmap())
		return fmt.Sprintf("source %s in source_cidrs %s", id.Client.Addr(), pr)
	case viaDefault:
		return "default_tenant: no link_id, user or source range matched"
	}
	return "?"
}

func (p *Policy) whyNoTenant(id Identity, cred Credentials) string {
	var why []string
	if id.HasLinkID {
		switch {
		case len(p.linkIDs[id.LinkID]) > 0 && !id.LB.IsValid():
			why = append(why, fmt.Sprintf("link_id %d is configured only through nat_cidrs and no load balancer address was given (--lb)", id.LinkID))
		case len(p.linkIDs[id.LinkID]) > 0:
			why = append(why, fmt.Sprintf("link_id %d is configured but load balancer %s is outside its tenants' nat_cidrs", id.LinkID, id.LB.Addr()))
		default:
			why = append(why, fmt.Sprintf("link_id %d is not configured", id.LinkID))
		}
		why = append(why, "source_cidrs ignored because a link_id is present")
	} else if id.Client.IsValid() {
		why = append(why, fmt.Sprintf("source %s is in no source_cidrs", id.Client.Addr()))
	} else {
		why = append(why, "no link_id and no source address given (--link-id, --source or --tenant)")
	}
	if cred.Present {
		why = append(why, fmt.Sprintf("user %q is not configured", cred.User))
	}
	why = append(why, "no default_tenant")
	return strings.Join(why, "; ")
}

func ruleAction(p *Policy, ti int32, name string) string {
	if ti < 0 {
		return ""
	}
	for _, f := range p.feeds {
		if f.rule == name {
			if f.reportOnly {
				return "deny feed " + f.info.File + ", report-only"
			}
			return "deny feed " + f.info.File + ", before every tenant rule"
		}
	}
	for _, r := range p.tenants[ti].rules {
		if r.name == name {
			if r.deny {
				return "action deny"
			}
			return "action allow"
		}
	}
	return ""
}

func decisionWord(d Decision) string {
	if d.WouldDeny {
		return "would_deny (allowed: report-only)"
	}
	return d.Action.String()
}

func targetString(t Target) string {
	host := t.Host
	if t.Addr.IsValid() && t.Addr.Is6() {
		host = "[" + t.Addr.String() + "]"
	} else if t.Addr.IsValid() {
		host = t.Addr.String()
	}
	s := fmt.Sprintf("%s %s://%s:%d%s", t.Method, t.Scheme, host, t.Port, t.Path)
	return strings.TrimSpace(s)
}

// addrString is an address for a sentence; an absent one is "none", never
// netip's "invalid IP".
func addrString(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return "none"
	}
	return ap.Addr().String()
}

func addrPortString(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return "none"
	}
	if ap.Port() == 0 {
		// Port 0 is "not known" (explain's --source and --lb take addresses only).
		return ap.Addr().String()
	}
	return ap.String()
}

// whyParent says whether the tenant may reach its parent proxy: by rule
// as a destination, and for an address parent by the dial check too.
func (p *Policy) whyParent(tenant string, up *UpstreamProxy) string {
	pd := p.CheckParent(tenant, up)
	if pd.Action != Allow {
		return fmt.Sprintf("refused (rule %s); allow the parent's address with a rule, or every request fails", pd.Rule)
	}
	if a := up.Target.Addr; a.IsValid() {
		if dd := p.CheckDial(tenant, a, up.Target); dd.Action != Allow {
			return fmt.Sprintf("refused at dial time (%s); an internal parent needs a cidrs rule naming it", dd.Rule)
		}
	}
	return fmt.Sprintf("reachable (rule %s); the parent resolves the destination", pd.Rule)
}
