package acl

import (
	"strings"
	"testing"
)

// Every built-in, in every cloud it claims, expands to patterns Validate
// would accept: the data is code, so a typo must fail here, not at a
// customer's reload.
func TestBuiltinsExpandToValidRules(t *testing.T) {
	for _, b := range Builtins() {
		if b.Source == "" || len(b.Revised) != len("2006-01-02") || len(b.Clouds) == 0 {
			t.Errorf("%s: source %q revised %q clouds %d: every built-in needs its source and revision date", b.Name, b.Source, b.Revised, len(b.Clouds))
		}
		for cloud := range b.Clouds {
			rules := builtinRules(BuiltinPrefix+b.Name, cloud, "westeurope")
			if len(rules) == 0 {
				t.Errorf("%s/%s: no rules", b.Name, cloud)
			}
			v := &validator{}
			for i, r := range rules {
				if !strings.HasPrefix(r.Name, BuiltinPrefix+b.Name+"[") {
					t.Errorf("%s/%s rule %d named %q", b.Name, cloud, i, r.Name)
				}
				v.rule(r.Name, r)
			}
			for _, err := range v.errs {
				t.Errorf("%s/%s: %v", b.Name, cloud, err)
			}
		}
	}
	for _, d := range append(neverInspectFor("westeurope"), neverInspectFor("")...) {
		if _, _, err := parseDomainPattern(d); err != nil {
			t.Errorf("never-inspect %q: %v", d, err)
		}
	}
}

func TestBuiltinRulesetDecidesAndNamesItself(t *testing.T) {
	p := compileYAML(t, `
tenants:
  - name: aks
    link_ids: [1]
    region: westeurope
    rules:
      - ruleset: builtin/aks-required
      - ruleset: builtin/aks-ubuntu-updates
  - name: gov
    link_ids: [2]
    region: usgovvirginia
    cloud: usgov
    rules:
      - ruleset: builtin/aks-required
`)
	cases := []struct {
		name, host string
		link       uint32
		port       uint16
		want       string
		allow      bool
	}{
		{"mcr", "mcr.microsoft.com", 1, 443, "builtin/aks-required[mcr]", true},
		{"mcr-data", "westeurope.data.mcr.microsoft.com", 1, 443, "builtin/aks-required[mcr]", true},
		{"new-binaries-cdn", "packages.aks.azure.com", 1, 443, "builtin/aks-required[binaries]", true},
		{"old-binaries-cdn", "acs-mirror.azureedge.net", 1, 443, "builtin/aks-required[binaries]", true},
		{"own-region-apiserver", "abc-123.hcp.westeurope.azmk8s.io", 1, 443, "builtin/aks-required[apiserver]", true},
		{"other-region-apiserver", "abc-123.hcp.northeurope.azmk8s.io", 1, 443, RuleDefault, false},
		{"wrong-port", "mcr.microsoft.com", 1, 8443, RuleDefault, false},
		{"ubuntu-http", "security.ubuntu.com", 1, 80, "builtin/aks-ubuntu-updates[archive]", true},
		{"ubuntu-not-443", "security.ubuntu.com", 1, 443, RuleDefault, false},
		{"gov-arm", "management.usgovcloudapi.net", 2, 443, "builtin/aks-required[arm]", true},
		{"gov-not-public-arm", "management.azure.com", 2, 443, RuleDefault, false},
		{"gov-apiserver", "x.hcp.usgovvirginia.cx.aks.containerservice.azure.us", 2, 443, "builtin/aks-required[apiserver]", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide(linkID(tc.link, "10.0.0.4:1"), Credentials{}, target(t, "CONNECT", "https", tc.host, tc.port, ""))
			if d.Rule != tc.want || (d.Action == Allow) != tc.allow {
				t.Fatalf("%s:%d: %v rule %q, want rule %q allow=%v", tc.host, tc.port, d.Action, d.Rule, tc.want, tc.allow)
			}
		})
	}
}

func TestBuiltinRulesetReferenceErrors(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"unknown", "tenants: [{name: a, rules: [{ruleset: builtin/nope}]}]",
			`tenants[0].rules[0].ruleset: "builtin/nope": no such built-in ruleset; egressd ships builtin/aks-gpu,`},
		{"regional-without-region", "tenants: [{name: a, rules: [{ruleset: builtin/aks-required}]}]",
			`tenants[0].rules[0].ruleset: "builtin/aks-required" names regional endpoints; set the tenant's region:`},
		{"cloud-without-variant", "tenants: [{name: a, cloud: china, rules: [{ruleset: builtin/keyvault-csi}]}]",
			`tenants[0].rules[0].ruleset: "builtin/keyvault-csi" has no list for cloud "china"`},
		{"bad-cloud", "tenants: [{name: a, cloud: mars}]", `tenants[0].cloud: "mars": must be "public" (default), "china" or "usgov"`},
		{"bad-region", "tenants: [{name: a, region: West Europe}]", `tenants[0].region: "West Europe": use the lower-case Azure region name`},
		{"reserved-prefix", "rulesets: {builtin/mine: [{domains: [a.example]}]}", `rulesets.builtin/mine: "builtin/mine": the "builtin/" prefix is reserved`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := decodeYAML(t, tc.src)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// The AKS API server tunnel and pinned clients are spliced in mode bump
// with no list; only a bump entry that names them brings them back.
func TestNeverInspectListSplicesUnlessNamed(t *testing.T) {
	p := compileYAML(t, `
tenants:
  - name: all
    region: westeurope
    tls_inspection: {mode: bump}
  - name: star
    tls_inspection: {mode: bump, bump: ["*"]}
  - name: named
    region: westeurope
    tls_inspection: {mode: bump, bump: [".azmk8s.io", "*.example.com"]}
`)
	cases := []struct {
		tenant, host string
		bump         bool
	}{
		{"all", "abc.hcp.westeurope.azmk8s.io", false},
		{"all", "api.push.apple.com", false},
		{"all", "fe2.update.microsoft.com", false},
		{"all", "api.example.com", true},
		// Without a region the whole zone is spliced; "*" is not an override.
		{"star", "abc.hcp.anywhere.azmk8s.io", false},
		{"star", "api.example.com", true},
		{"named", "abc.hcp.westeurope.azmk8s.io", true},
		{"star", "api.push.apple.com", false},
	}
	for _, tc := range cases {
		if got := p.Inspection(tc.tenant, tc.host).Bump; got != tc.bump {
			t.Errorf("%s %s: bump %v, want %v", tc.tenant, tc.host, got, tc.bump)
		}
	}
}
