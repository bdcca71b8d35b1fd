package acl

import (
	"net/netip"
	"strings"
	"testing"
)

const explainConfig = `
tenants:
  - name: team-a
    link_ids: [1001]
    nat_cidrs: [10.0.1.0/24]
    rules:
      - {name: github, domains: [.github.com], ports: ["443"]}
      - {name: cloudflare, cidrs: ["2606:4700::/32"]}
  - name: lab
    source_cidrs: [10.9.0.0/16]
    report_only: true
    rules:
      - {name: metadata, cidrs: [169.254.169.254/32], methods: [GET]}
`

func TestExplain(t *testing.T) {
	p := compileYAML(t, explainConfig)
	tests := []struct {
		name string
		id   Identity
		cred Credentials
		tg   Target
		want string
	}{
		{
			name: "link id domain rule",
			id:   linkID(1001, "10.0.1.4:5000"),
			tg:   target(t, "CONNECT", "https", "API.github.com", 443, ""),
			want: `identity:    link_id=1001 client=10.2.0.5:40000 lb=10.0.1.4:5000 credentials=none
target:      CONNECT https://api.github.com:443
tenant:      team-a (link_id 1001 via nat_cidrs, load balancer 10.0.1.4)
rule:        github (action allow)
decision:    allow (reason rule)
report-only: off
ssrf:        checked at dial time on each resolved address
`,
		},
		{
			name: "default deny",
			id:   linkID(1001, "10.0.1.4:5000"),
			tg:   target(t, "CONNECT", "https", "github.com", 8443, ""),
			want: `identity:    link_id=1001 client=10.2.0.5:40000 lb=10.0.1.4:5000 credentials=none
target:      CONNECT https://github.com:8443
tenant:      team-a (link_id 1001 via nat_cidrs, load balancer 10.0.1.4)
rule:        default (no rule matched; tenant default is deny)
decision:    deny (reason default)
report-only: off
ssrf:        not reached (request already refused)
`,
		},
		{
			name: "source range, report-only, explicit internal allow",
			id:   source("10.9.0.7:1234"),
			tg:   target(t, "GET", "http", "169.254.169.254", 80, "/latest/meta-data"),
			want: `identity:    link_id=none client=10.9.0.7:1234 lb=10.0.0.4:1234 credentials=none
target:      GET http://169.254.169.254:80/latest/meta-data
tenant:      lab (source 10.9.0.7 in source_cidrs 10.9.0.0/16)
rule:        metadata (action allow)
decision:    allow (reason rule)
report-only: on (tenant)
ssrf:        169.254.169.254 is internal (link-local, incl. 169.254.169.254 metadata); rule metadata decides at dial time: allow
`,
		},
		{
			name: "report-only would deny, ssrf on obfuscated literal",
			id:   source("10.9.0.7:1234"),
			tg:   target(t, "POST", "http", "0x7f.1", 80, "/"),
			want: `identity:    link_id=none client=10.9.0.7:1234 lb=10.0.0.4:1234 credentials=none
target:      POST http://127.0.0.1:80/
tenant:      lab (source 10.9.0.7 in source_cidrs 10.9.0.0/16)
rule:        default (no rule matched; tenant default is deny)
decision:    would_deny (allowed: report-only) (reason default)
report-only: on (tenant)
ssrf:        127.0.0.1 is internal (loopback): deny; allow it with a rule whose cidrs name this range
`,
		},
		{
			name: "no tenant, password not printed",
			id:   Identity{LinkID: 5, HasLinkID: true, Client: netip.MustParseAddrPort("10.2.0.5:1")},
			cred: Credentials{User: "x", Password: "hunter2", Present: true},
			tg:   target(t, "CONNECT", "https", "x.test", 443, ""),
			want: `identity:    link_id=5 client=10.2.0.5:1 lb=none user="x" (password given)
target:      CONNECT https://x.test:443
tenant:      none (link_id 5 is not configured; source_cidrs ignored because a link_id is present; user "x" is not configured; no default_tenant)
rule:        auth
decision:    auth_required (reason auth)
report-only: off
ssrf:        not reached (request already refused)
`,
		},
		{
			name: "link id through the wrong PLS",
			id:   linkID(1001, "10.0.9.4:5000"),
			tg:   target(t, "CONNECT", "https", "[2606:4700::1]", 443, ""),
			want: `identity:    link_id=1001 client=10.2.0.5:40000 lb=10.0.9.4:5000 credentials=none
target:      CONNECT https://[2606:4700::1]:443
tenant:      none (link_id 1001 is configured but load balancer 10.0.9.4 is outside its tenants' nat_cidrs; source_cidrs ignored because a link_id is present; no default_tenant)
rule:        no-tenant
decision:    deny (reason no-tenant)
report-only: off
ssrf:        not reached (request already refused)
`,
		},
		{
			name: "public IPv6 literal by cidr rule",
			id:   linkID(1001, "10.0.1.4:5000"),
			tg:   target(t, "CONNECT", "https", "[2606:4700::1]", 443, ""),
			want: `identity:    link_id=1001 client=10.2.0.5:40000 lb=10.0.1.4:5000 credentials=none
target:      CONNECT https://[2606:4700::1]:443
tenant:      team-a (link_id 1001 via nat_cidrs, load balancer 10.0.1.4)
rule:        cloudflare (action allow)
decision:    allow (reason rule)
report-only: off
ssrf:        2606:4700::1 is public; rule cloudflare decides at dial time: allow
`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Explain(p, tc.id, tc.cred, tc.tg)
			if got != tc.want {
				t.Fatalf("Explain:\n%s\nwant:\n%s", got, tc.want)
			}
			// Explain must agree with what the proxy does.
			d := p.Decide(tc.id, tc.cred, tc.tg)
			if want := "decision:    " + decisionWord(d) + " (reason " + d.Reason.String() + ")\n"; !strings.Contains(got, want) {
				t.Fatalf("Explain disagrees with Decide %+v", d)
			}
		})
	}
}
