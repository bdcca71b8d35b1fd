package acl

// InspectionWhy is Inspection with the reason, for `egressd explain`: it
// walks the same steps in the same order (tenant mode, IP literal, splice
// list, bump list) and names the one that decided.
func (p *Policy) InspectionWhy(tenant, host string) (Inspection, string) {
	in := p.Inspection(tenant, host)
	t := p.tenant(tenant)
	switch {
	case t == nil:
		return in, "no tenant: unknown callers are never inspected"
	case !t.inspect.bump:
		return in, "tenant " + tenant + " has tls_inspection.mode off"
	}
	_, addr, _ := parseHostFast(host)
	switch {
	case addr.IsValid() && t.inspect.bumpSet != nil:
		return in, "an IP literal never matches the tenant's tls_inspection.bump domains"
	case !addr.IsValid() && t.inspect.splice != nil && t.inspect.splice.contains(host):
		return in, host + " is in the tenant's tls_inspection.splice list (splice wins over bump)"
	case t.inspect.bumpSet != nil && in.Bump:
		return in, host + " is in the tenant's tls_inspection.bump list"
	case t.inspect.bumpSet != nil:
		return in, host + " is not in the tenant's tls_inspection.bump list"
	}
	return in, "tenant mode bump with no bump list inspects every host not spliced"
}
