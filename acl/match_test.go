package acl

import (
	"testing"
)

const matchConfig = `
tenants:
  - name: a
    link_ids: [1001]
    rules:
      - name: deny-secret
        action: deny
        domains: [secret.example.com]
      - name: exact
        domains: [api.example.com]
        ports: ["443"]
      - name: wild
        domains: ["*.wild.test"]
      - name: squid
        domains: [.squid.test]
        ports: ["80", "8000-8100"]
      - name: idn
        domains: ["bücher.example"]
      - name: v4
        cidrs: [198.51.0.0/16, 8.8.8.8]
      - name: v6
        cidrs: ["2001:4860::/32"]
      - name: loop
        cidrs: [127.0.0.0/8]
      - name: get-only
        domains: [get.test]
        methods: [get]
      - name: connect-https
        domains: [tunnel.test]
        methods: [CONNECT]
        schemes: [https]
      - name: deny-admin
        action: deny
        domains: [paths.test]
        paths: [/admin]
      - name: public-path
        domains: [paths.test]
        paths: [/public/]
      - name: anything-on-9999
        ports: ["9999"]
`

func TestDecideMatching(t *testing.T) {
	p := compileYAML(t, matchConfig)
	id := linkID(1001, "10.0.0.4:1")
	tests := []struct {
		name     string
		method   string
		scheme   string
		host     string
		port     uint16
		path     string
		wantRule string
		wantAct  Action
	}{
		{name: "exact", method: "CONNECT", scheme: "https", host: "api.example.com", port: 443, wantRule: "exact", wantAct: Allow},
		{name: "exact upper case and trailing dot", method: "CONNECT", scheme: "https", host: "API.Example.COM.", port: 443, wantRule: "exact", wantAct: Allow},
		{name: "exact wrong port", method: "CONNECT", scheme: "https", host: "api.example.com", port: 8443, wantRule: "default", wantAct: Deny},
		{name: "exact does not cover subdomain", method: "CONNECT", scheme: "https", host: "x.api.example.com", port: 443, wantRule: "default", wantAct: Deny},
		{name: "first match wins over later allow", method: "CONNECT", scheme: "https", host: "secret.example.com", port: 443, wantRule: "deny-secret", wantAct: Deny},
		{name: "wildcard subdomain", method: "GET", scheme: "http", host: "a.wild.test", port: 80, wantRule: "wild", wantAct: Allow},
		{name: "wildcard deep subdomain", method: "GET", scheme: "http", host: "a.b.wild.test", port: 80, wantRule: "wild", wantAct: Allow},
		{name: "wildcard not apex", method: "GET", scheme: "http", host: "wild.test", port: 80, wantRule: "default", wantAct: Deny},
		{name: "wildcard not suffix lookalike", method: "GET", scheme: "http", host: "evilwild.test", port: 80, wantRule: "default", wantAct: Deny},
		{name: "squid apex", method: "GET", scheme: "http", host: "squid.test", port: 80, wantRule: "squid", wantAct: Allow},
		{name: "squid subdomain in range", method: "GET", scheme: "http", host: "a.squid.test", port: 8050, wantRule: "squid", wantAct: Allow},
		{name: "squid range upper bound", method: "GET", scheme: "http", host: "a.squid.test", port: 8100, wantRule: "squid", wantAct: Allow},
		{name: "squid past range", method: "GET", scheme: "http", host: "a.squid.test", port: 8101, wantRule: "default", wantAct: Deny},
		{name: "squid lookalike", method: "GET", scheme: "http", host: "notsquid.test", port: 80, wantRule: "default", wantAct: Deny},
		{name: "IDN unicode target", method: "GET", scheme: "http", host: "BÜCHER.example", port: 80, wantRule: "idn", wantAct: Allow},
		{name: "IDN punycode target", method: "GET", scheme: "http", host: "xn--bcher-kva.example", port: 80, wantRule: "idn", wantAct: Allow},
		{name: "IPv4 literal in cidr", method: "CONNECT", scheme: "https", host: "198.51.7.9", port: 443, wantRule: "v4", wantAct: Allow},
		{name: "bare address rule", method: "CONNECT", scheme: "https", host: "8.8.8.8", port: 443, wantRule: "v4", wantAct: Allow},
		{name: "decimal literal", method: "GET", scheme: "http", host: "2130706433", port: 80, wantRule: "loop", wantAct: Allow},
		{name: "octal literal", method: "GET", scheme: "http", host: "0177.0.0.1", port: 80, wantRule: "loop", wantAct: Allow},
		{name: "hex short literal", method: "GET", scheme: "http", host: "0x7f.1", port: 80, wantRule: "loop", wantAct: Allow},
		{name: "mapped IPv6 literal hits IPv4 cidr", method: "GET", scheme: "http", host: "[::ffff:198.51.0.1]", port: 80, wantRule: "v4", wantAct: Allow},
		{name: "IPv6 literal", method: "CONNECT", scheme: "https", host: "[2001:4860:4860::8888]", port: 443, wantRule: "v6", wantAct: Allow},
		{name: "IPv6 outside", method: "CONNECT", scheme: "https", host: "2001:4861::1", port: 443, wantRule: "default", wantAct: Deny},
		{name: "domain rule never matches IP literal", method: "GET", scheme: "http", host: "93.184.216.34", port: 80, wantRule: "default", wantAct: Deny},
		{name: "method matches", method: "GET", scheme: "http", host: "get.test", port: 80, wantRule: "get-only", wantAct: Allow},
		{name: "method differs", method: "POST", scheme: "http", host: "get.test", port: 80, wantRule: "default", wantAct: Deny},
		{name: "connect and scheme", method: "CONNECT", scheme: "https", host: "tunnel.test", port: 443, wantRule: "connect-https", wantAct: Allow},
		{name: "scheme differs", method: "CONNECT", scheme: "http", host: "tunnel.test", port: 443, wantRule: "default", wantAct: Deny},
		{name: "path deny", method: "GET", scheme: "http", host: "paths.test", port: 80, path: "/admin/x", wantRule: "deny-admin", wantAct: Deny},
		{name: "path allow", method: "GET", scheme: "http", host: "paths.test", port: 80, path: "/public/x", wantRule: "public-path", wantAct: Allow},
		{name: "path rule needs a path", method: "CONNECT", scheme: "https", host: "paths.test", port: 443, wantRule: "default", wantAct: Deny},
		{name: "dot segment refused by allow taken by deny", method: "GET", scheme: "http", host: "paths.test", port: 80, path: "/public/../admin", wantRule: "deny-admin", wantAct: Deny},
		{name: "encoded slash fails closed", method: "GET", scheme: "http", host: "paths.test", port: 80, path: "/public/%2e%2e/admin", wantRule: "deny-admin", wantAct: Deny},
		{name: "destination-free rule matches domain", method: "GET", scheme: "http", host: "whatever.test", port: 9999, wantRule: "anything-on-9999", wantAct: Allow},
		{name: "destination-free rule matches IP", method: "GET", scheme: "http", host: "93.184.216.34", port: 9999, wantRule: "anything-on-9999", wantAct: Allow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide(id, Credentials{}, target(t, tc.method, tc.scheme, tc.host, tc.port, tc.path))
			if d.Rule != tc.wantRule || d.Action != tc.wantAct || d.Tenant != "a" {
				t.Fatalf("got %+v, want rule %q action %v tenant a", d, tc.wantRule, tc.wantAct)
			}
			wantReason := ReasonRule
			if tc.wantRule == RuleDefault {
				wantReason = ReasonDefault
			}
			if d.Reason != wantReason {
				t.Fatalf("reason %v, want %v", d.Reason, wantReason)
			}
		})
	}
}

func TestDefaultAllowAndAnyDomain(t *testing.T) {
	p := compileYAML(t, `
tenants:
  - name: open
    link_ids: [1]
    default: allow
    rules:
      - {name: no-ip, action: deny, cidrs: ["0.0.0.0/0", "::/0"]}
  - name: anydomain
    link_ids: [2]
    rules:
      - {name: star, domains: ["*"]}
`)
	tests := []struct {
		name     string
		link     uint32
		host     string
		wantRule string
		wantAct  Action
	}{
		{name: "default allow", link: 1, host: "example.org", wantRule: "default", wantAct: Allow},
		{name: "deny all IPs before default allow", link: 1, host: "192.0.2.1", wantRule: "no-ip", wantAct: Deny},
		{name: "deny all IPv6", link: 1, host: "2606:4700::1", wantRule: "no-ip", wantAct: Deny},
		{name: "star matches any domain", link: 2, host: "a.b.c", wantRule: "star", wantAct: Allow},
		{name: "star never matches IP", link: 2, host: "192.0.2.1", wantRule: "default", wantAct: Deny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide(linkID(tc.link, "10.0.0.4:1"), Credentials{}, target(t, "CONNECT", "https", tc.host, 443, ""))
			if d.Rule != tc.wantRule || d.Action != tc.wantAct {
				t.Fatalf("got %+v, want rule %q action %v", d, tc.wantRule, tc.wantAct)
			}
		})
	}
}

func TestRulesetSplicedInPlace(t *testing.T) {
	p := compileYAML(t, `
rulesets:
  aks:
    - domains: [mcr.microsoft.com]
    - {name: deny-x, action: deny, domains: [.x.test]}
tenants:
  - name: a
    link_ids: [1]
    rules:
      - {name: first, domains: [first.x.test]}
      - ruleset: aks
      - {name: after, domains: [.x.test, later.test]}
`)
	tests := []struct {
		name     string
		host     string
		wantRule string
		wantAct  Action
	}{
		{name: "rule before ruleset wins", host: "first.x.test", wantRule: "first", wantAct: Allow},
		{name: "unnamed ruleset rule gets its path", host: "mcr.microsoft.com", wantRule: "rulesets.aks[0]", wantAct: Allow},
		{name: "ruleset deny precedes later allow", host: "y.x.test", wantRule: "deny-x", wantAct: Deny},
		{name: "rule after ruleset", host: "later.test", wantRule: "after", wantAct: Allow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide(linkID(1, "10.0.0.4:1"), Credentials{}, target(t, "CONNECT", "https", tc.host, 443, ""))
			if d.Rule != tc.wantRule || d.Action != tc.wantAct {
				t.Fatalf("got %+v, want rule %q action %v", d, tc.wantRule, tc.wantAct)
			}
		})
	}
}
