package acl

import (
	"strings"
	"testing"
)

func TestUpstreamProxyConfigErrors(t *testing.T) {
	creds := writeFeed(t, "nocolon\n")
	for _, tc := range []struct {
		name string
		up   UpstreamProxyConfig
		rule bool
		deny bool
		want string
	}{
		{name: "https parent", up: UpstreamProxyConfig{URL: "https://parent:3128"}, want: `tenants[0].upstream_proxy.url: "https://parent:3128": only "http://" parents are supported`},
		{name: "credentials in url", up: UpstreamProxyConfig{URL: "http://u:p@parent:3128"}, want: "credentials do not belong in the URL; use credentials_file"},
		{name: "no port", up: UpstreamProxyConfig{URL: "http://parent"}, want: `give the port, e.g. "http://parent.example:3128"`},
		{name: "path", up: UpstreamProxyConfig{URL: "http://parent:3128/x"}, want: "no path, query or fragment"},
		{name: "bad credentials file", up: UpstreamProxyConfig{URL: "http://parent:3128", CredentialsFile: creds}, want: `tenants[0].upstream_proxy.credentials_file: ` + creds + `: must hold one line "user:password"`},
		{name: "missing credentials file", up: UpstreamProxyConfig{URL: "http://parent:3128", CredentialsFile: "/nonexistent/creds"}, rule: true, want: "tenants[0].rules[0].upstream_proxy.credentials_file: read: open /nonexistent/creds"},
		{name: "deny rule", up: UpstreamProxyConfig{URL: "http://parent:3128"}, rule: true, deny: true, want: "tenants[0].rules[0].upstream_proxy: a deny rule sends nothing anywhere"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tn := TenantConfig{Name: "a", LinkIDs: []uint32{1}, Rules: []RuleConfig{{Name: "r", Domains: []string{"x.example"}}}}
			up := tc.up
			if tc.rule {
				tn.Rules[0].UpstreamProxy = &up
				if tc.deny {
					tn.Rules[0].Action = "deny"
				}
			} else {
				tn.UpstreamProxy = &up
			}
			_, err := Compile(Config{Tenants: []TenantConfig{tn}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// A rule's parent wins over the tenant's; the default allow leaves
// through the tenant's; denies carry none.
func TestUpstreamProxyChosenPerRuleOrTenant(t *testing.T) {
	creds := writeFeed(t, "u:p w\n")
	p, err := Compile(Config{Tenants: []TenantConfig{{
		Name: "a", LinkIDs: []uint32{1}, Default: "allow",
		UpstreamProxy: &UpstreamProxyConfig{URL: "http://tenant-parent.example:3128", CredentialsFile: creds},
		Rules: []RuleConfig{
			{Name: "special", Domains: []string{"special.example"}, UpstreamProxy: &UpstreamProxyConfig{URL: "http://[2001:db8::1]:8080"}},
			{Name: "no", Action: "deny", Domains: []string{"no.example"}},
		},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	id := linkID(1, "10.0.0.4:1")
	for host, want := range map[string]string{"special.example": "http://[2001:db8::1]:8080", "other.example": "http://tenant-parent.example:3128", "no.example": ""} {
		d := p.Decide(id, Credentials{}, target(t, "CONNECT", "https", host, 443, ""))
		got := ""
		if d.Upstream != nil {
			got = d.Upstream.URL
		}
		if got != want {
			t.Errorf("%s: upstream %q, want %q", host, got, want)
		}
	}
	d := p.Decide(id, Credentials{}, target(t, "CONNECT", "https", "other.example", 443, ""))
	if d.Upstream.Authorization != "Basic dTpwIHc=" || d.Upstream.Target.Host != "tenant-parent.example" || d.Upstream.Target.Port != 3128 {
		t.Errorf("compiled parent %+v", d.Upstream)
	}
}

// explain says whether the tenant can reach its parent at all, the
// mistake that would otherwise fail every request at dial time.
func TestExplainNamesTheParentAndWhetherItIsReachable(t *testing.T) {
	for _, tc := range []struct {
		name, rules, want string
	}{
		{"no rule for the parent", "", "upstream:    via parent proxy http://10.20.0.5:3128: refused (rule default); allow the parent's address with a rule"},
		{"parent allowed", "\n      - {name: parent, cidrs: [10.20.0.0/24], ports: [\"3128\"]}", "upstream:    via parent proxy http://10.20.0.5:3128: reachable (rule parent)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := compileYAML(t, `
tenants:
  - name: a
    link_ids: [1]
    upstream_proxy: {url: "http://10.20.0.5:3128"}
    rules:
      - {name: gh, domains: [.github.com]}`+tc.rules+"\n")
			out := Explain(p, linkID(1, "10.0.0.4:1"), Credentials{}, target(t, "CONNECT", "https", "api.github.com", 443, ""))
			if !strings.Contains(out, tc.want) {
				t.Fatalf("explain lacks %q:\n%s", tc.want, out)
			}
		})
	}
}
