package acl

import (
	"slices"
	"testing"
)

const settingsConfig = `
tenants:
  - name: bumped
    link_ids: [1]
    limits: {max_connections: 100, rate: 2.5}
    tls_inspection:
      mode: bump
      splice: [.bank.test, pinned.example.com]
      sni_check: report
  - name: selective
    link_ids: [2]
    limits: {max_connections: 5, rate: 10, burst: 40}
    tls_inspection:
      mode: bump
      bump: ["*.inspect.test"]
      splice: [no.inspect.test]
  - name: plain
    link_ids: [3]
    tls_inspection: {bump: [ignored.test], sni_check: "off"}
`

func TestInspection(t *testing.T) {
	p := compileYAML(t, settingsConfig)
	tests := []struct {
		name   string
		tenant string
		host   string
		want   Inspection
	}{
		{name: "bump everything not spliced", tenant: "bumped", host: "api.example.com", want: Inspection{Bump: true, SNICheck: SNIReport}},
		{name: "squid splice apex", tenant: "bumped", host: "bank.test", want: Inspection{SNICheck: SNIReport}},
		{name: "squid splice subdomain", tenant: "bumped", host: "www.bank.test", want: Inspection{SNICheck: SNIReport}},
		{name: "exact splice", tenant: "bumped", host: "pinned.example.com", want: Inspection{SNICheck: SNIReport}},
		{name: "IP literal bumped when bumping all", tenant: "bumped", host: "192.0.2.1", want: Inspection{Bump: true, SNICheck: SNIReport}},
		{name: "bump list hit", tenant: "selective", host: "a.inspect.test", want: Inspection{Bump: true}},
		{name: "splice wins over bump", tenant: "selective", host: "no.inspect.test", want: Inspection{}},
		{name: "outside bump list", tenant: "selective", host: "other.test", want: Inspection{}},
		{name: "IP literal not in bump list", tenant: "selective", host: "192.0.2.1", want: Inspection{}},
		{name: "mode off ignores bump list", tenant: "plain", host: "ignored.test", want: Inspection{SNICheck: SNIOff}},
		{name: "unknown tenant", tenant: "nope", host: "a.inspect.test", want: Inspection{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.Inspection(tc.tenant, tc.host); got != tc.want {
				t.Fatalf("Inspection(%q, %q) = %+v, want %+v", tc.tenant, tc.host, got, tc.want)
			}
		})
	}
}

func TestLimitsAndTenants(t *testing.T) {
	p := compileYAML(t, settingsConfig)
	tests := []struct {
		name   string
		tenant string
		want   Limits
	}{
		{name: "burst defaults to rate rounded up", tenant: "bumped", want: Limits{MaxConnections: 100, Rate: 2.5, Burst: 3}},
		{name: "explicit burst", tenant: "selective", want: Limits{MaxConnections: 5, Rate: 10, Burst: 40}},
		{name: "unlimited", tenant: "plain", want: Limits{}},
		{name: "unknown tenant", tenant: "nope", want: Limits{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.Limits(tc.tenant); got != tc.want {
				t.Fatalf("Limits(%q) = %+v, want %+v", tc.tenant, got, tc.want)
			}
		})
	}
	names := p.Tenants()
	if want := []string{"bumped", "selective", "plain"}; !slices.Equal(names, want) {
		t.Fatalf("Tenants() = %v, want %v", names, want)
	}
	names[0] = "mutated"
	if p.Tenants()[0] != "bumped" {
		t.Fatal("Tenants() exposes internal state")
	}
}

func TestEnumStrings(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{name: "enforce is the zero mode", got: SNIMode(0).String(), want: "enforce"},
		{name: "report", got: SNIReport.String(), want: "report"},
		{name: "off", got: SNIOff.String(), want: "off"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Fatalf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}
