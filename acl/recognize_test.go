package acl

import (
	"net/netip"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func hashOf(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestRecognition(t *testing.T) {
	p := compileYAML(t, `
tenants:
  - name: pls1
    link_ids: [7]
    nat_cidrs: [10.0.1.0/24]
    default: allow
  - name: pls2
    link_ids: [7]
    nat_cidrs: [10.0.2.0/24]
    default: allow
  - name: unscoped
    link_ids: [1001]
    source_cidrs: [10.2.0.0/16]
    default: allow
  - name: wide
    source_cidrs: [10.0.0.0/8]
    default: allow
  - name: narrow
    source_cidrs: [10.9.9.0/24]
    default: allow
  - name: userland
    users: [{name: alice, bcrypt: "`+hashOf(t, "pw")+`"}]
    default: allow
`)
	tests := []struct {
		name       string
		id         Identity
		cred       Credentials
		wantTenant string
		wantRule   string
		wantAct    Action
	}{
		{name: "link id scoped to first PLS", id: linkID(7, "10.0.1.5:1"), wantTenant: "pls1", wantRule: "default", wantAct: Allow},
		{name: "same link id through second PLS", id: linkID(7, "10.0.2.5:1"), wantTenant: "pls2", wantRule: "default", wantAct: Allow},
		{name: "link id through unknown PLS", id: linkID(7, "10.0.3.5:1"), wantRule: "no-tenant", wantAct: Deny},
		{name: "mapped LB address still scoped", id: Identity{LinkID: 7, HasLinkID: true, LB: netip.MustParseAddrPort("[::ffff:10.0.2.5]:1")}, wantTenant: "pls2", wantRule: "default", wantAct: Allow},
		{name: "unscoped link id", id: linkID(1001, "192.0.2.1:1"), wantTenant: "unscoped", wantRule: "default", wantAct: Allow},
		{name: "link id beats source range", id: Identity{LinkID: 1001, HasLinkID: true, Client: netip.MustParseAddrPort("10.9.9.9:1"), LB: netip.MustParseAddrPort("10.0.0.4:1")}, wantTenant: "unscoped", wantRule: "default", wantAct: Allow},
		{name: "unknown link id never falls back to source", id: Identity{LinkID: 4242, HasLinkID: true, Client: netip.MustParseAddrPort("10.9.9.9:1"), LB: netip.MustParseAddrPort("10.0.0.4:1")}, wantRule: "no-tenant", wantAct: Deny},
		{name: "source longest prefix wins", id: source("10.9.9.9:1"), wantTenant: "narrow", wantRule: "default", wantAct: Allow},
		{name: "source wider range", id: source("10.9.8.9:1"), wantTenant: "wide", wantRule: "default", wantAct: Allow},
		{name: "source of another tenant", id: source("10.2.3.4:1"), wantTenant: "unscoped", wantRule: "default", wantAct: Allow},
		{name: "unknown source", id: source("192.0.2.9:1"), wantRule: "no-tenant", wantAct: Deny},
		{name: "credentials recognise without network identity", id: source("192.0.2.9:1"), cred: Credentials{User: "alice", Password: "pw", Present: true}, wantTenant: "userland", wantRule: "default", wantAct: Allow},
		{name: "credentials beat source range", id: source("10.9.9.9:1"), cred: Credentials{User: "alice", Password: "pw", Present: true}, wantTenant: "userland", wantRule: "default", wantAct: Allow},
		{name: "credentials with unknown link id", id: linkID(4242, "10.0.0.4:1"), cred: Credentials{User: "alice", Password: "pw", Present: true}, wantTenant: "userland", wantRule: "default", wantAct: Allow},
		// Another tenant's user is answered as an unknown name: a tenant
		// without users ignores it (the caller stays the LinkID's tenant),
		// so the answer does not reveal that the name exists elsewhere.
		{name: "link id tenant with other tenant's user is not switched and learns nothing", id: linkID(1001, "10.0.0.4:1"), cred: Credentials{User: "alice", Password: "pw", Present: true}, wantTenant: "unscoped", wantRule: "default", wantAct: Allow},
		{name: "link id tenant with an unknown user gets the same answer", id: linkID(1001, "10.0.0.4:1"), cred: Credentials{User: "nobody", Password: "pw", Present: true}, wantTenant: "unscoped", wantRule: "default", wantAct: Allow},
		{name: "unknown user without tenant", id: source("192.0.2.9:1"), cred: Credentials{User: "mallory", Password: "x", Present: true}, wantRule: "auth", wantAct: AuthRequired},
		{name: "unknown user ignored by tenant without users", id: source("10.9.9.9:1"), cred: Credentials{User: "mallory", Password: "x", Present: true}, wantTenant: "narrow", wantRule: "default", wantAct: Allow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide(tc.id, tc.cred, target(t, "CONNECT", "https", "example.org", 443, ""))
			if d.Tenant != tc.wantTenant || d.Rule != tc.wantRule || d.Action != tc.wantAct {
				t.Fatalf("got %+v, want tenant %q rule %q action %v", d, tc.wantTenant, tc.wantRule, tc.wantAct)
			}
			// Without credentials, the tenant a connection is counted
			// against before its first request is the one Decide names.
			if got := p.NetworkTenant(tc.id); !tc.cred.Present && got != tc.wantTenant {
				t.Errorf("NetworkTenant = %q, want %q", got, tc.wantTenant)
			}
		})
	}
}

func TestDefaultTenant(t *testing.T) {
	p := compileYAML(t, `
default_tenant: guests
report_only: true
tenants:
  - name: guests
    rules: [{name: g, domains: [ok.test]}]
  - name: known
    link_ids: [1]
`)
	tests := []struct {
		name       string
		id         Identity
		host       string
		wantTenant string
		wantRule   string
		wantWould  bool
	}{
		{name: "unknown link id lands in default", id: linkID(99, "10.0.0.4:1"), host: "ok.test", wantTenant: "guests", wantRule: "g"},
		{name: "default tenant under report-only", id: source("192.0.2.1:1"), host: "no.test", wantTenant: "guests", wantRule: "default", wantWould: true},
		{name: "known link id", id: linkID(1, "10.0.0.4:1"), host: "ok.test", wantTenant: "known", wantRule: "default", wantWould: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide(tc.id, Credentials{}, target(t, "CONNECT", "https", tc.host, 443, ""))
			if d.Tenant != tc.wantTenant || d.Rule != tc.wantRule || d.WouldDeny != tc.wantWould || d.Action != Allow {
				t.Fatalf("got %+v, want tenant %q rule %q wouldDeny %v action allow", d, tc.wantTenant, tc.wantRule, tc.wantWould)
			}
		})
	}
}

// TestSameSourceDifferentLinkIDs is the end-to-end property at the
// policy level: overlapping consumer addresses never share rights.
func TestSameSourceDifferentLinkIDs(t *testing.T) {
	p := compileYAML(t, `
tenants:
  - name: a
    link_ids: [1001]
    rules: [{name: a-allow, domains: [shared.test]}]
  - name: b
    link_ids: [1002]
    source_cidrs: [10.2.0.0/16]
    rules: [{name: b-deny, action: deny, domains: [shared.test]}]
`)
	client := netip.MustParseAddrPort("10.2.0.5:40000")
	lb := netip.MustParseAddrPort("10.0.0.4:5000")
	tg := target(t, "CONNECT", "https", "shared.test", 443, "")
	a := p.Decide(Identity{LinkID: 1001, HasLinkID: true, Client: client, LB: lb}, Credentials{}, tg)
	b := p.Decide(Identity{LinkID: 1002, HasLinkID: true, Client: client, LB: lb}, Credentials{}, tg)
	if a.Action != Allow || a.Tenant != "a" || a.Rule != "a-allow" {
		t.Fatalf("tenant a: %+v", a)
	}
	if b.Action != Deny || b.Tenant != "b" || b.Rule != "b-deny" {
		t.Fatalf("tenant b: %+v", b)
	}
}

func TestReportOnly(t *testing.T) {
	p := compileYAML(t, `
tenants:
  - name: ro
    link_ids: [1]
    report_only: true
    require_auth: true
    users: [{name: u, bcrypt: "`+hashOf(t, "pw")+`"}]
    rules:
      - {name: deny-x, action: deny, domains: [x.test]}
      - {name: allow-y, domains: [y.test]}
  - name: enforced
    link_ids: [2]
    rules: [{name: deny-x, action: deny, domains: [x.test]}]
`)
	good := Credentials{User: "u", Password: "pw", Present: true}
	tests := []struct {
		name      string
		link      uint32
		cred      Credentials
		host      string
		wantAct   Action
		wantRule  string
		wantWould bool
	}{
		{name: "rule deny becomes would_deny", link: 1, cred: good, host: "x.test", wantAct: Allow, wantRule: "deny-x", wantWould: true},
		{name: "default deny becomes would_deny", link: 1, cred: good, host: "z.test", wantAct: Allow, wantRule: "default", wantWould: true},
		{name: "allow stays plain allow", link: 1, cred: good, host: "y.test", wantAct: Allow, wantRule: "allow-y"},
		{name: "auth still enforced", link: 1, host: "y.test", wantAct: AuthRequired, wantRule: "auth"},
		{name: "other tenant enforced", link: 2, host: "x.test", wantAct: Deny, wantRule: "deny-x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide(linkID(tc.link, "10.0.0.4:1"), tc.cred, target(t, "CONNECT", "https", tc.host, 443, ""))
			if d.Action != tc.wantAct || d.Rule != tc.wantRule || d.WouldDeny != tc.wantWould {
				t.Fatalf("got %+v, want action %v rule %q wouldDeny %v", d, tc.wantAct, tc.wantRule, tc.wantWould)
			}
		})
	}
}

func TestGlobalReportOnlyKeepsNoTenantDenied(t *testing.T) {
	p := compileYAML(t, `
report_only: true
tenants: [{name: a, link_ids: [1]}]
`)
	d := p.Decide(linkID(2, "10.0.0.4:1"), Credentials{}, target(t, "CONNECT", "https", "x.test", 443, ""))
	want := Decision{Action: Deny, Reason: ReasonNoTenant, Rule: "no-tenant"}
	if d != want {
		t.Fatalf("got %+v, want %+v", d, want)
	}
}
