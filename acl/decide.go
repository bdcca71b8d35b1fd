package acl

import (
	"net/netip"
	"strings"
)

// via records how a tenant was recognised, for Explain. It is an enum so
// recognition does not build strings on the hot path.
type via uint8

const (
	viaNone via = iota
	viaLinkID
	viaUser
	viaSource
	viaDefault
)

// recognize applies the documented precedence: LinkID (scoped by
// nat_cidrs), then the credentials' user, then source_cidrs (only without
// a LinkID), then default_tenant. It returns -1 when nothing matches.
func (p *Policy) recognize(id Identity, cred Credentials) (int32, via) {
	if id.HasLinkID {
		lb := id.LB.Addr().Unmap()
		for _, ti := range p.linkIDs[id.LinkID] {
			if t := p.tenants[ti]; len(t.natCIDRs) == 0 || containsAddr(t.natCIDRs, lb) {
				return ti, viaLinkID
			}
		}
	}
	if cred.Present {
		if u, ok := p.users[cred.User]; ok {
			return u.tenant, viaUser
		}
	}
	if !id.HasLinkID {
		if ids, _ := p.sources.longest(id.Client.Addr().Unmap()); len(ids) > 0 {
			return ids[0], viaSource
		}
	}
	if p.defaultTenant >= 0 {
		return p.defaultTenant, viaDefault
	}
	return -1, viaNone
}

// NetworkTenant is the tenant a connection belongs to before any request
// is read: recognition by LinkID, source_cidrs and default_tenant, without
// credentials. It is "" when none matches. A request's credentials may
// still name another tenant for a caller without a LinkID; the proxy then
// moves the connection to the tenant Decide names.
func (p *Policy) NetworkTenant(id Identity) string {
	ti, _ := p.recognize(id, Credentials{})
	if ti < 0 {
		return ""
	}
	return p.tenants[ti].name
}

// Decide recognises the caller's tenant, checks its credentials and
// matches the target against the tenant's rules. It does not resolve
// names: the proxy must also call CheckDial for every address it dials.
// Decide does not allocate unless bcrypt has to run.
func (p *Policy) Decide(id Identity, cred Credentials, t Target) Decision {
	ti, _ := p.recognize(id, cred)
	d, done := p.authenticate(ti, cred, callerOf(id))
	if done {
		return d
	}
	user := d.User
	d = p.evaluate(ti, t)
	d.User = user
	return d
}

// authenticate returns a final Decision when recognition or credentials
// end the request; otherwise a Decision carrying only the verified User. Auth failures are enforced even in report-only mode:
// report-only exists to roll out destination rules, and an unauthenticated
// caller passing would hand the proxy to anyone who can reach it.
func (p *Policy) authenticate(ti int32, cred Credentials, caller callerKey) (Decision, bool) {
	if ti < 0 {
		if cred.Present {
			// Credentials for no known user: answer like a wrong password,
			// after the same work, so neither the status nor the time
			// reveals which user names exist.
			p.failDecoy(cred, p.anonSlots, caller)
			return Decision{Action: AuthRequired, Reason: ReasonAuth, Rule: RuleAuth}, true
		}
		// Not softened by global report_only: letting unknown callers out
		// is a decision for default_tenant (which may be report-only).
		return Decision{Action: Deny, Reason: ReasonNoTenant, Rule: RuleNoTenant}, true
	}
	t := p.tenants[ti]
	authRequired := Decision{Action: AuthRequired, Reason: ReasonAuth, Tenant: t.name, Rule: RuleAuth}
	if !cred.Present {
		if t.requireAuth {
			return authRequired, true
		}
		return Decision{}, false
	}
	u, known := p.users[cred.User]
	if known && u.tenant != ti {
		// The network said tenant A, the credentials name B's user.
		// Credentials never move a caller between tenants, and B's user is
		// answered exactly as a name nobody configured: a different answer
		// would tell tenant A which names tenant B has.
		known = false
	}
	switch {
	case known:
		if !p.verify(u, cred.Password, cred.Password, t.authSlots, caller) {
			return authRequired, true
		}
		return Decision{User: cred.User}, false
	case t.hasUsers:
		// Unknown user for a tenant that has users: wrong credentials are
		// never silently ignored. Tenants without users ignore them, since
		// clients often carry credentials from an old proxy URL.
		p.failDecoy(cred, t.authSlots, caller)
		return authRequired, true
	}
	return Decision{}, false
}

// evaluate matches t against tenant ti's rules and applies report-only.
func (p *Policy) evaluate(ti int32, t Target) Decision {
	tn := p.tenants[ti]
	d := Decision{Tenant: tn.name}
	f := p.feedMatch(&t)
	if f != nil && !f.reportOnly {
		d.Reason, d.Rule = ReasonRule, f.rule
		if p.reportOnly || tn.reportOnly {
			d.Action, d.WouldDeny, d.Upstream = Allow, true, tn.upstream
		}
		return d
	}
	if i := tn.match(t); i >= 0 {
		r := &tn.rules[i]
		d.Reason, d.Rule = ReasonRule, r.name
		if !r.deny {
			d.Action = Allow
			d.Upstream = r.upstream
		}
	} else {
		d.Reason, d.Rule = ReasonDefault, RuleDefault
		if tn.defaultAllow {
			d.Action = Allow
		}
	}
	if d.Action == Deny && (p.reportOnly || tn.reportOnly) {
		d.Action, d.WouldDeny = Allow, true
	}
	// A report-only feed names itself only where the tenant's own rules
	// let the request out: a deny of theirs stays the answer.
	if f != nil && d.Action == Allow && !d.WouldDeny {
		d.WouldDeny, d.Reason, d.Rule = true, ReasonRule, f.rule
	}
	if d.Action == Allow && d.Upstream == nil {
		// Report-only traffic leaves like allowed traffic: through the parent.
		d.Upstream = tn.upstream
	}
	return d
}

// match returns the index of the first rule matching t, or -1. Every
// candidate list is ascending, so each scan stops at the best index found
// so far; the result is the same as trying all rules in order.
func (tn *tenant) match(t Target) int32 {
	best := int32(len(tn.rules))
	best = tn.scan(tn.anyDest, best, &t)
	if t.Addr.IsValid() {
		ip := t.Addr.Unmap()
		for _, b := range tn.cidrs.bits(ip) {
			best = tn.scan(tn.cidrs.at(ip, b), best, &t)
		}
	} else if t.Host != "" {
		d := tn.domains
		best = tn.scan(d.any, best, &t)
		best = tn.scan(d.exact[t.Host], best, &t)
		for i := 0; i < len(t.Host); i++ {
			if t.Host[i] == '.' {
				best = tn.scan(d.under[t.Host[i+1:]], best, &t)
			}
		}
	}
	if best == int32(len(tn.rules)) {
		return -1
	}
	return best
}

func (tn *tenant) scan(ids []int32, best int32, t *Target) int32 {
	for _, id := range ids {
		if id >= best {
			break
		}
		if tn.rules[id].matchRequest(t) {
			return id
		}
	}
	return best
}

// matchRequest checks everything but the destination, which the index
// already matched.
func (r *rule) matchRequest(t *Target) bool {
	if !matchPort(r.ports, t.Port) {
		return false
	}
	// Methods compare case-insensitively: origins differ in whether they
	// accept "post" as POST, so a deny on POST must also catch "post".
	if len(r.methods) > 0 && !containsFold(r.methods, t.Method) {
		return false
	}
	if len(r.schemes) > 0 && !containsString(r.schemes, t.Scheme) {
		return false
	}
	if len(r.paths) > 0 {
		if t.Path == "" {
			return false
		}
		if !cleanPath(t.Path) {
			// A path with dot segments or encoded separators may reach
			// something other than its prefix says: allow rules refuse it
			// and deny rules take it, so ambiguity fails closed.
			return r.deny
		}
		for _, pre := range r.paths {
			if strings.HasPrefix(t.Path, pre) {
				return true
			}
		}
		return false
	}
	return true
}

func matchPort(ports []portRange, port uint16) bool {
	if len(ports) == 0 {
		return true
	}
	for _, pr := range ports {
		if port >= pr.lo && port <= pr.hi {
			return true
		}
	}
	return false
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func containsAddr(list []netip.Prefix, ip netip.Addr) bool {
	for _, p := range list {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// cleanPath reports whether p has no dot segments, empty segments,
// backslashes or percent-encoded dots and slashes, i.e. whether a prefix
// comparison means what it says.
func cleanPath(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			return false
		case '%':
			if i+2 < len(p) {
				c1, c2 := p[i+1], p[i+2]|0x20
				if c1 == '2' && (c2 == 'e' || c2 == 'f') || c1 == '5' && c2 == 'c' {
					return false
				}
			}
		case '/':
			rest := p[i+1:]
			if strings.HasPrefix(rest, "/") || rest == "." || rest == ".." ||
				strings.HasPrefix(rest, "./") || strings.HasPrefix(rest, "../") {
				return false
			}
		}
	}
	return true
}

// CheckDial is the SSRF guard on the address actually dialed, after DNS,
// for a tenant Decide already allowed, with the whole request t (CONNECT:
// method CONNECT and an empty path). Among the tenant's rules with cidrs,
// first match wins and each rule's ports, methods, schemes and paths apply
// exactly as in Decide, so a rule scoped to "GET /health" on a range
// exempts only that request there, and a "deny POST" on a range denies a
// POST to any name that resolves into it:
//   - a deny rule containing ip denies (report-only turns it into WouldDeny);
//   - an allow rule exempts ip from the internal-range check, but for an
//     internal ip only through a CIDR at least as specific as the internal
//     range, so "0.0.0.0/0" never opens 169.254.169.254 or 10/8.
//
// Otherwise an internal ip (see CheckIP) is denied with ReasonSSRF even in
// report-only mode: report-only is for rolling out allow lists, and
// letting metadata or private ranges through while doing so is a breach,
// not a rollout. Allowed results carry ReasonRule and the rule's name, or
// ReasonSSRF with Rule "ssrf" when the guard found a public address; the
// proxy should only replace its Decide decision when CheckDial does not
// return Allow (or returns WouldDeny).
func (p *Policy) CheckDial(tenant string, ip netip.Addr, t Target) Decision {
	tn := p.tenant(tenant)
	if tn == nil {
		return Decision{Action: Deny, Reason: ReasonNoTenant, Rule: RuleNoTenant}
	}
	ip = ip.WithZone("").Unmap()
	f := p.feedMatchAddr(ip)
	if f != nil && !f.reportOnly {
		// Feeds come before every tenant rule, so a name that resolves into
		// a listed range is refused even where a cidrs rule allows it.
		d := Decision{Tenant: tn.name, Reason: ReasonRule, Rule: f.rule}
		if p.reportOnly || tn.reportOnly {
			d.Action, d.WouldDeny = Allow, true
		}
		return d
	}
	d := p.checkDialRules(tn, ip, t)
	if f != nil && d.Action == Allow && !d.WouldDeny {
		d.WouldDeny, d.Reason, d.Rule = true, ReasonRule, f.rule
	}
	return d
}

// checkDialRules is CheckDial after the feeds: the tenant's cidrs rules
// and the internal-range guard.
func (p *Policy) checkDialRules(tn *tenant, ip netip.Addr, t Target) Decision {
	internal, _, isInternal := internalPrefix(ip)
	minBits := 0
	if isInternal {
		minBits = internal.Bits()
	}
	best := int32(len(tn.rules))
	for _, b := range tn.cidrs.bits(ip) {
		for _, id := range tn.cidrs.at(ip, b) {
			if id >= best {
				break
			}
			r := &tn.rules[id]
			if !r.matchRequest(&t) {
				continue
			}
			if !r.deny && b < minBits {
				continue
			}
			best = id
			break
		}
	}
	d := Decision{Tenant: tn.name}
	if best < int32(len(tn.rules)) {
		r := &tn.rules[best]
		d.Reason, d.Rule = ReasonRule, r.name
		if !r.deny {
			d.Action = Allow
		} else if p.reportOnly || tn.reportOnly {
			d.Action, d.WouldDeny = Allow, true
		}
		return d
	}
	d.Reason, d.Rule = ReasonSSRF, RuleSSRF
	if !isInternal {
		d.Action = Allow
	}
	return d
}
