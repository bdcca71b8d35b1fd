package main

import (
	"strings"
	"testing"
)

// aksConfig is the production config shape: LinkIDs scoped by nat_cidrs,
// a password_file and a CA that only exist inside the pod.
const aksConfig = "../../deploy/corporate/overlays/aks/config.yaml"

// TestExplainTenantOnAKSConfig: --tenant builds the identity the tenant's
// traffic really arrives with (its LinkID through an address inside its
// nat_cidrs), on the committed AKS config as a laptop sees it (no mounted
// Secrets), and says whether the tunnel is bumped or spliced and why.
func TestExplainTenantOnAKSConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{
			name: "spliced tenant",
			args: []string{"--tenant", "team-a", "https://github.com/org/repo"},
			want: []string{
				"tenant:      team-a (link_id 1001 via nat_cidrs, load balancer 10.240.8.1)",
				"rule:        github (action allow)",
				"decision:    allow",
				"inspection:  splice: tenant team-a has tls_inspection.mode off",
				"note:        tenants[1].users[0].password_file is not readable here: --user team-b-ci cannot be verified",
			},
		},
		{
			name: "bumped tenant",
			args: []string{"--tenant", "team-b", "https://api.partner.example/v1"},
			want: []string{
				"tenant:      team-b (link_id 1002 via nat_cidrs",
				"rule:        partner-api (action allow)",
				"inspection:  bump: tenant mode bump with no bump list inspects every host not spliced (sni_check enforce)",
			},
		},
		{
			name: "method inside a bumped tunnel",
			args: []string{"--tenant", "team-b", "-method", "POST", "https://api.partner.example/v1"},
			want: []string{
				"target:      POST https://api.partner.example:443/v1",
				"this request is decided inside the bumped tunnel",
			},
		},
		{
			name: "method inside a spliced tunnel is never decided",
			args: []string{"--tenant", "team-a", "-method", "POST", "https://github.com/org/repo"},
			want: []string{"inspection:  splice:", "the proxy sees only the CONNECT, so this method and path are never decided"},
		},
		{
			name: "link id with an explicit lb outside nat_cidrs",
			args: []string{"--link-id", "1001", "--lb", "10.9.9.9", "https://github.com/"},
			want: []string{"tenant:      none (link_id 1001 is configured but load balancer 10.9.9.9 is outside its tenants' nat_cidrs", "inspection:  none: the tunnel is refused"},
		},
		{
			name: "link id with an lb inside nat_cidrs",
			args: []string{"--link-id", "1001", "--lb", "10.240.8.5", "https://github.com/"},
			want: []string{"identity:    link_id=1001 client=none lb=10.240.8.5 credentials=none", "tenant:      team-a"},
		},
		{
			name: "no identity at all",
			args: []string{"https://github.com/"},
			want: []string{"identity:    link_id=none client=none lb=none", "tenant:      none (no link_id and no source address given"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"explain", "-config", aksConfig}, tc.args...)
			stdout, stderr, code := egressd(t, args...)
			if code != 0 {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			if strings.Contains(stdout, "invalid IP") || strings.Contains(stdout, ":0 ") {
				t.Errorf("stdout shows a zero address or port:\n%s", stdout)
			}
		})
	}
}

// TestExplainTenantWithoutNetworkIdentity: a tenant recognised only by its
// users cannot be picked by --tenant; the message says what to pass.
func TestExplainTenantWithoutNetworkIdentity(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, `proxy: {proxy_protocol: "off"}
tenants:
  - name: build
    users: [{name: ci, bcrypt: "$2a$04$0123456789012345678901uN6Xb0W1S8rQyNvqI6w1V4hEa1dHcZS"}]
    rules: [{name: any, domains: ["*"]}]
`)
	_, stderr, code := egressd(t, "explain", "-config", cfg, "--tenant", "build", "https://example.com/")
	want := `--tenant "build" has no link_ids or source_cidrs: it is recognised by its users only; pass --user NAME:PASSWORD instead`
	if code != 1 || !strings.Contains(stderr, want) {
		t.Fatalf("exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}
}
