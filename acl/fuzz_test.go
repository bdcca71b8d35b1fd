package acl

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzDomainMatch: the suffix index agrees with a plain string reference,
// and matching ignores the case of ASCII hosts.
func FuzzDomainMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"*.example.com", "a.example.com"}, {"*.example.com", "example.com"},
		{".example.com", "example.com"}, {".example.com", "x.y.example.com"},
		{"example.com", "EXAMPLE.com."}, {"*", "anything"}, {"*", "127.0.0.1"},
		{"bücher.example", "xn--bcher-kva.example"}, {"*.com", "evilcom"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, rawHost string) {
		kind, name, err := parseDomainPattern(pattern)
		if err != nil {
			return
		}
		host, addr, err := ParseHost(rawHost)
		if err != nil {
			return
		}
		idx := newDomainIndex()
		idx.add(kind, name, 0)
		got := !addr.IsValid() && idx.contains(host)
		var want bool
		if !addr.IsValid() {
			switch kind {
			case domainExact:
				want = host == name
			case domainSubdomain:
				want = strings.HasSuffix(host, "."+name)
			case domainSquid:
				want = host == name || strings.HasSuffix(host, "."+name)
			case domainAny:
				want = true
			}
		}
		if got != want {
			t.Fatalf("pattern %q (%v %q) host %q: index says %v, reference %v", pattern, kind, name, host, got, want)
		}
		if isASCII(rawHost) {
			upper, _, err := ParseHost(strings.ToUpper(rawHost))
			if err != nil || upper != host {
				t.Fatalf("ParseHost(%q) = %q, upper-case form gives %q, %v", rawHost, host, upper, err)
			}
		}
	})
}

// parseRuleSpecs reads YAML-ish one-line rules for FuzzCompile:
// "ACTION DOMAINS CIDRS PORTS METHODS" with comma lists and "-" for none.
func parseRuleSpecs(spec string) []RuleConfig {
	var rules []RuleConfig
	list := func(s string) []string {
		if s == "-" || s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	for line := range strings.SplitSeq(spec, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		for len(f) < 5 {
			f = append(f, "-")
		}
		action := f[0]
		if action == "-" {
			action = ""
		}
		rules = append(rules, RuleConfig{Action: action, Domains: list(f[1]), CIDRs: list(f[2]), Ports: list(f[3]), Methods: list(f[4])})
	}
	return rules
}

// FuzzCompile: Compile never panics, agrees with Validate, and Decide is
// deterministic and equal to a linear first-match scan over the rules.
func FuzzCompile(f *testing.F) {
	f.Add("allow api.example.com - 443 -\ndeny *.example.com - - -\nallow .example.org 10.0.0.0/8 80,8000-8100 GET", "a.example.com", uint16(443), "CONNECT")
	f.Add("deny - 0.0.0.0/0 - -\nallow * - - -", "1.2.3.4", uint16(80), "GET")
	f.Add("allow *. - - -", "x", uint16(1), "GET")
	f.Add("allow - 2001:db8::/32,::ffff:1.2.3.0/120 1-65535 CONNECT,get", "[2001:db8::1]", uint16(65535), "CONNECT")
	f.Add("permit x..y 300.0.0.0/8 0 G\\T", "2130706433", uint16(0), "")
	f.Fuzz(func(t *testing.T, spec, rawHost string, port uint16, method string) {
		if len(spec) > 4096 {
			return
		}
		rules := parseRuleSpecs(spec)
		cfg := Config{Tenants: []TenantConfig{{Name: "t", LinkIDs: []uint32{1}, Rules: rules}}}
		p, err := Compile(cfg)
		if verr := cfg.Validate(); (err == nil) != (verr == nil) {
			t.Fatalf("Compile error %v but Validate error %v", err, verr)
		}
		if err != nil {
			return
		}
		host, addr, err := ParseHost(rawHost)
		if err != nil {
			host, addr = "", netip.Addr{}
		}
		tg := Target{Method: method, Scheme: "https", Host: host, Addr: addr, Port: port}
		id := Identity{LinkID: 1, HasLinkID: true}
		d1 := p.Decide(id, Credentials{}, tg)
		d2 := p.Decide(id, Credentials{}, tg)
		p2, _ := Compile(cfg)
		d3 := p2.Decide(id, Credentials{}, tg)
		if d1 != d2 || d1 != d3 {
			t.Fatalf("Decide not deterministic: %+v %+v %+v", d1, d2, d3)
		}
		want := RuleDefault
		tn := p.tenants[0]
		for i, rc := range rules {
			if referenceDestMatch(rc, tg) && tn.rules[i].matchRequest(&tg) {
				want = tn.rules[i].name
				break
			}
		}
		if d1.Rule != want {
			t.Fatalf("Decide chose %q, linear scan %q (target %+v)", d1.Rule, want, tg)
		}
	})
}

// referenceDestMatch is the destination part of a rule, the slow way.
func referenceDestMatch(rc RuleConfig, t Target) bool {
	if len(rc.Domains) == 0 && len(rc.CIDRs) == 0 {
		return true
	}
	if t.Addr.IsValid() {
		for _, c := range rc.CIDRs {
			if p, err := ParsePrefix(c); err == nil && p.Contains(t.Addr.Unmap()) {
				return true
			}
		}
		return false
	}
	if t.Host == "" {
		return false
	}
	for _, d := range rc.Domains {
		kind, name, err := parseDomainPattern(d)
		if err != nil {
			continue
		}
		switch {
		case kind == domainAny,
			kind != domainSubdomain && t.Host == name,
			kind != domainExact && strings.HasSuffix(t.Host, "."+name):
			return true
		}
	}
	return false
}
