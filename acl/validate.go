package acl

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Reserved rule names: Decision.Rule uses them for outcomes that are not
// a configured rule, so a rule may not borrow one.
const (
	RuleDefault  = "default"
	RuleSSRF     = "ssrf"
	RuleNoTenant = "no-tenant"
	RuleAuth     = "auth"
)

// maxNameLen keeps tenant names usable as Prometheus label values and in
// 403 bodies.
const maxNameLen = 63

// Validate checks cfg without I/O. The result is errors.Join of messages
// that each start with the YAML path of the offending value (dotted keys
// and [index], e.g. `tenants[2].rules[0].domains[1]: ...`), which
// internal/config maps to a line number.
func (c *Config) Validate() error {
	v := &validator{}
	names := map[string]int{}
	users := map[string]string{} // user -> first path, users belong to one tenant
	type linkUse struct {
		tenant int
		nat    []netip.Prefix
	}
	links := map[uint32][]linkUse{}
	sources := map[netip.Prefix]int{}

	for i, t := range c.Tenants {
		tp := fmt.Sprintf("tenants[%d]", i)
		switch err := checkName(t.Name); {
		case err != nil:
			v.addf(tp+".name", "%q: %v", t.Name, err)
		case t.Name == "unknown":
			v.addf(tp+".name", `"unknown" is reserved for unrecognised callers in metrics`)
		default:
			if j, dup := names[t.Name]; dup {
				v.addf(tp+".name", "%q: duplicate of tenants[%d].name", t.Name, j)
			} else {
				names[t.Name] = i
			}
		}

		nat := v.prefixes(tp+".nat_cidrs", t.NATCIDRs)
		seen := map[uint32]bool{}
		for j, id := range t.LinkIDs {
			p := fmt.Sprintf("%s.link_ids[%d]", tp, j)
			if seen[id] {
				v.addf(p, "%d: listed twice", id)
				continue
			}
			seen[id] = true
			for _, u := range links[id] {
				if len(u.nat) == 0 || len(nat) == 0 || overlapsAny(u.nat, nat) {
					v.addf(p, "%d: also claimed by tenants[%d]; give both tenants disjoint nat_cidrs to tell their PLSs apart", id, u.tenant)
				}
			}
			links[id] = append(links[id], linkUse{tenant: i, nat: nat})
		}

		for j, sp := range v.prefixList(tp+".source_cidrs", t.SourceCIDRs) {
			if sp.err {
				continue
			}
			if k, dup := sources[sp.p]; dup && k != i {
				v.addf(fmt.Sprintf("%s.source_cidrs[%d]", tp, j), "%s: also used by tenants[%d]; the same range cannot identify two tenants", sp.p, k)
			} else {
				sources[sp.p] = i
			}
		}

		for j, u := range t.Users {
			up := fmt.Sprintf("%s.users[%d]", tp, j)
			switch {
			case u.Name == "":
				v.addf(up+".name", "required")
			case strings.ContainsAny(u.Name, ":\x00\r\n"):
				v.addf(up+".name", "%q: must not contain ':' or control characters (Basic auth splits on the first ':')", u.Name)
			default:
				if first, dup := users[u.Name]; dup {
					v.addf(up+".name", "%q: already defined at %s; a user belongs to exactly one tenant", u.Name, first)
				} else {
					users[u.Name] = up
				}
			}
			switch {
			case u.BCrypt != "" && u.PasswordFile != "":
				v.addf(up, "set bcrypt or password_file, not both")
			case u.BCrypt == "" && u.PasswordFile == "":
				v.addf(up, "set bcrypt or password_file")
			case u.BCrypt != "":
				if _, err := bcrypt.Cost([]byte(u.BCrypt)); err != nil {
					v.addf(up+".bcrypt", "not a bcrypt hash: %v", err)
				}
			}
		}
		if t.RequireAuth && len(t.Users) == 0 {
			v.addf(tp+".require_auth", "no users are configured, so nobody could authenticate")
		}

		switch t.Default {
		case "", "deny", "allow":
		default:
			v.addf(tp+".default", "%q: must be \"deny\" or \"allow\"", t.Default)
		}

		if err := checkRegion(t.Region); err != nil {
			v.addf(tp+".region", "%q: %v", t.Region, err)
		}
		if err := checkCloud(t.Cloud); err != nil {
			v.addf(tp+".cloud", "%v", err)
		}
		v.upstreamProxy(tp+".upstream_proxy", t.UpstreamProxy)
		v.limits(tp+".limits", t.Limits)
		v.inspection(tp+".tls_inspection", t.TLSInspection)

		for j, r := range t.Rules {
			rp := fmt.Sprintf("%s.rules[%d]", tp, j)
			if r.Ruleset != "" {
				if r.Name != "" || r.Action != "" || r.UpstreamProxy != nil || len(r.Domains)+len(r.CIDRs)+len(r.Ports)+len(r.Methods)+len(r.Schemes)+len(r.Paths) > 0 {
					v.addf(rp, "ruleset %q: a ruleset reference cannot have other fields", r.Ruleset)
				}
				if strings.HasPrefix(r.Ruleset, BuiltinPrefix) {
					if err := checkBuiltinRef(r.Ruleset, t.Cloud, t.Region); err != nil {
						v.addf(rp+".ruleset", "%v", err)
					}
				} else if _, ok := c.Rulesets[r.Ruleset]; !ok {
					v.addf(rp+".ruleset", "%q: no such ruleset", r.Ruleset)
				}
				continue
			}
			v.rule(rp, r)
		}
	}

	for _, name := range sortedKeys(c.Rulesets) {
		sp := "rulesets." + name
		if strings.HasPrefix(name, BuiltinPrefix) {
			v.addf(sp, "%q: the %q prefix is reserved for built-in rulesets", name, BuiltinPrefix)
		} else if err := checkName(name); err != nil {
			v.addf(sp, "%q: %v", name, err)
		}
		for j, r := range c.Rulesets[name] {
			rp := fmt.Sprintf("%s[%d]", sp, j)
			if r.Ruleset != "" {
				v.addf(rp+".ruleset", "%q: rulesets cannot include other rulesets", r.Ruleset)
				continue
			}
			v.rule(rp, r)
		}
	}

	v.feeds(c.DenyFeeds)
	if c.DefaultTenant != "" {
		if _, ok := names[c.DefaultTenant]; !ok {
			v.addf("default_tenant", "%q: no such tenant", c.DefaultTenant)
		}
	}
	return errors.Join(v.errs...)
}

type validator struct{ errs []error }

func (v *validator) addf(path, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

func (v *validator) rule(path string, r RuleConfig) {
	switch r.Name {
	case RuleDefault, RuleSSRF, RuleNoTenant, RuleAuth:
		v.addf(path+".name", "%q is reserved for decisions that no rule made", r.Name)
	}
	if strings.HasPrefix(r.Name, FeedPrefix) {
		v.addf(path+".name", "%q: the %q prefix is reserved for deny feed matches", r.Name, FeedPrefix)
	}
	if len(r.Name) > 128 || strings.ContainsFunc(r.Name, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		v.addf(path+".name", "must be at most 128 characters without control characters")
	}
	switch r.Action {
	case "", "allow", "deny":
	default:
		v.addf(path+".action", "%q: must be \"allow\" or \"deny\"", r.Action)
	}
	if r.UpstreamProxy != nil && r.Action == "deny" {
		v.addf(path+".upstream_proxy", "a deny rule sends nothing anywhere; put upstream_proxy on an allow rule or the tenant")
	}
	v.upstreamProxy(path+".upstream_proxy", r.UpstreamProxy)
	for i, d := range r.Domains {
		if _, _, err := parseDomainPattern(d); err != nil {
			v.addf(fmt.Sprintf("%s.domains[%d]", path, i), "%q: %v", d, err)
		}
	}
	v.prefixes(path+".cidrs", r.CIDRs)
	for i, p := range r.Ports {
		if _, err := parsePortRange(p); err != nil {
			v.addf(fmt.Sprintf("%s.ports[%d]", path, i), "%q: %v", p, err)
		}
	}
	for i, m := range r.Methods {
		if !isToken(m) {
			v.addf(fmt.Sprintf("%s.methods[%d]", path, i), "%q: not an HTTP method token", m)
		}
	}
	for i, s := range r.Schemes {
		if s != "http" && s != "https" {
			v.addf(fmt.Sprintf("%s.schemes[%d]", path, i), "%q: must be \"http\" or \"https\"", s)
		}
	}
	for i, p := range r.Paths {
		if !strings.HasPrefix(p, "/") {
			v.addf(fmt.Sprintf("%s.paths[%d]", path, i), "%q: must start with \"/\"", p)
		}
	}
}

func (v *validator) limits(path string, l LimitsConfig) {
	if l.MaxConnections < 0 {
		v.addf(path+".max_connections", "%d: must not be negative", l.MaxConnections)
	}
	if l.Rate < 0 || math.IsNaN(l.Rate) || math.IsInf(l.Rate, 0) {
		v.addf(path+".rate", "%v: must be a finite number, 0 or more", l.Rate)
	}
	if l.Burst < 0 {
		v.addf(path+".burst", "%d: must not be negative", l.Burst)
	}
	if l.Burst > 0 && l.Rate == 0 {
		v.addf(path+".burst", "%d: has no effect without rate", l.Burst)
	}
}

func (v *validator) inspection(path string, t TLSInspectionConfig) {
	switch t.Mode {
	case "", "off", "bump":
	default:
		v.addf(path+".mode", "%q: must be \"off\" or \"bump\"", t.Mode)
	}
	switch t.SNICheck {
	case "", "enforce", "report", "off":
	default:
		v.addf(path+".sni_check", "%q: must be \"enforce\", \"report\" or \"off\"", t.SNICheck)
	}
	lists := []struct {
		key     string
		domains []string
	}{{"bump", t.Bump}, {"splice", t.Splice}}
	if l := t.LearnSplice; l != nil {
		if t.Mode != "bump" {
			v.addf(path+".learn_splice", "has no effect unless mode is \"bump\"")
		}
		if l.After < 0 || l.After > MaxLearnAfter {
			v.addf(path+".learn_splice.after", "%d: must be from 1 to %d (0 means the default, %d)", l.After, MaxLearnAfter, DefaultLearnAfter)
		}
		if l.TTL < 0 || l.TTL != 0 && (l.TTL < MinLearnTTL || l.TTL > MaxLearnTTL) {
			v.addf(path+".learn_splice.ttl", "%s: must be from %s to %s (0 means the default, %s)", l.TTL, MinLearnTTL, MaxLearnTTL, DefaultLearnTTL)
		}
	}
	for _, l := range lists {
		for i, d := range l.domains {
			if _, _, err := parseDomainPattern(d); err != nil {
				v.addf(fmt.Sprintf("%s.%s[%d]", path, l.key, i), "%q: %v", d, err)
			}
		}
	}
}

type parsedPrefix struct {
	p   netip.Prefix
	err bool
}

func (v *validator) prefixList(path string, list []string) []parsedPrefix {
	out := make([]parsedPrefix, len(list))
	for i, s := range list {
		p, err := ParsePrefix(s)
		if err != nil {
			v.addf(fmt.Sprintf("%s[%d]", path, i), "%q: %v", s, err)
			out[i].err = true
			continue
		}
		out[i].p = p
	}
	return out
}

func (v *validator) prefixes(path string, list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, pp := range v.prefixList(path, list) {
		if !pp.err {
			out = append(out, pp.p)
		}
	}
	return out
}

type portRange struct{ lo, hi uint16 }

func parsePortRange(s string) (portRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := parsePort(lo)
	if err != nil {
		return portRange{}, err
	}
	if !isRange {
		return portRange{a, a}, nil
	}
	b, err := parsePort(hi)
	if err != nil {
		return portRange{}, err
	}
	if b < a {
		return portRange{}, errors.New("range end is below its start")
	}
	return portRange{a, b}, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, errors.New(`not a port or range; use "443" or "8000-8100" (1-65535)`)
	}
	return uint16(n), nil
}

// isToken is RFC 9110's token rule, which is what a method must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func checkName(s string) error {
	if s == "" {
		return errors.New("required")
	}
	if len(s) > maxNameLen {
		return fmt.Errorf("longer than %d characters", maxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return errors.New("use letters, digits, '.', '_' and '-'")
		}
	}
	return nil
}

func overlapsAny(a, b []netip.Prefix) bool {
	for _, x := range a {
		for _, y := range b {
			if x.Overlaps(y) {
				return true
			}
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
