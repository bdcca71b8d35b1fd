package lint

import (
	"strings"
	"testing"

	"github.com/egressd/egressd/acl"
)

func TestShadowedRules(t *testing.T) {
	allowGitHub := acl.RuleConfig{Name: "github", Domains: []string{".github.com"}, Ports: []string{"443"}}
	tests := []struct {
		name  string
		rules []acl.RuleConfig
		want  string // "" = no finding
	}{
		{
			name:  "deny after a broader allow",
			rules: []acl.RuleConfig{allowGitHub, {Name: "no-gist-posts", Action: "deny", Domains: []string{"gist.github.com"}, Methods: []string{"POST"}, Ports: []string{"443"}}},
			want:  "tenants[0].rules[1]: rule tenants[0].rules[1] (no-gist-posts) can never match in tenant t: allow tenants[0].rules[0] (github) covers it (first match wins), so its deny never applies",
		},
		{
			name:  "deny before the allow is the fix",
			rules: []acl.RuleConfig{{Name: "no-gist-posts", Action: "deny", Domains: []string{"gist.github.com"}, Methods: []string{"POST"}}, allowGitHub},
		},
		{
			name:  "deny on any port is not covered by an allow on 443",
			rules: []acl.RuleConfig{allowGitHub, {Action: "deny", Domains: []string{"gist.github.com"}}},
		},
		{
			name:  "subdomain wildcard does not cover the apex",
			rules: []acl.RuleConfig{{Domains: []string{"*.example.com"}}, {Action: "deny", Domains: []string{"example.com"}}},
		},
		{
			name:  "narrower cidr after a wider one",
			rules: []acl.RuleConfig{{Name: "wide", CIDRs: []string{"10.0.0.0/8"}}, {Name: "db", Action: "deny", CIDRs: []string{"10.1.2.0/24"}, Ports: []string{"5432"}}},
			want:  "(db) can never match",
		},
		{
			name:  "any destination covers everything with the same ports",
			rules: []acl.RuleConfig{{Name: "all", Domains: []string{"*"}, Ports: []string{"1-65535"}}, {Name: "late", Domains: []string{"a.example"}, Ports: []string{"8000-8100"}}},
			want:  "(late) can never match in tenant t: allow tenants[0].rules[0] (all) covers it (first match wins), so an earlier rule already matches",
		},
		{
			name:  "path prefixes",
			rules: []acl.RuleConfig{{Domains: []string{"a.example"}, Paths: []string{"/api/"}}, {Domains: []string{"a.example"}, Paths: []string{"/admin"}}},
		},
		{
			name:  "allow with paths never covers a deny with paths",
			rules: []acl.RuleConfig{{Domains: []string{"a.example"}, Paths: []string{"/"}}, {Action: "deny", Domains: []string{"a.example"}, Paths: []string{"/admin"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Config(acl.Config{Tenants: []acl.TenantConfig{{Name: "t", Rules: tc.rules}}})
			switch {
			case tc.want == "" && len(got) > 0:
				t.Fatalf("unexpected finding %v", got)
			case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0].String(), tc.want)):
				t.Fatalf("findings %v, want one containing %q", got, tc.want)
			}
		})
	}
}

func TestShadowedRuleInsideARuleset(t *testing.T) {
	cfg := acl.Config{
		Rulesets: map[string][]acl.RuleConfig{"web": {{Name: "everything", Domains: []string{"*"}}}},
		Tenants:  []acl.TenantConfig{{Name: "t", Rules: []acl.RuleConfig{{Ruleset: "web"}, {Name: "late", Domains: []string{"x.example"}}}}},
	}
	got := Config(cfg)
	if len(got) != 1 || got[0].Path != "tenants[0].rules[1]" || !strings.Contains(got[0].Msg, "rulesets.web[0] (everything) covers it") {
		t.Fatalf("findings %v", got)
	}
}
