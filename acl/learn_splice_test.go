package acl

import (
	"strings"
	"testing"
	"time"
)

func TestLearnSpliceAppliesOnlyToCatchAllBumps(t *testing.T) {
	p := compileYAML(t, `
tenants:
  - name: learner
    link_ids: [1]
    tls_inspection: {mode: bump, learn_splice: {after: 5, ttl: 2h}}
  - name: defaults
    link_ids: [2]
    tls_inspection: {mode: bump, bump: ["*", named.test], learn_splice: {}}
  - name: strict
    link_ids: [3]
    tls_inspection: {mode: bump}
  - name: ruled
    link_ids: [4]
    tls_inspection: {mode: bump, learn_splice: {}}
    rules:
      - {name: no-admin, action: deny, domains: [.paths.test], paths: [/admin]}
      - {name: get-only, domains: [methods.test], methods: [GET, CONNECT]}
      - {name: plain, domains: [plain.test, sub.paths.test]}
`)
	tests := []struct {
		name   string
		tenant string
		host   string
		want   Inspection
	}{
		{name: "configured", tenant: "learner", host: "api.example.com", want: Inspection{Bump: true, Learn: LearnSplice{After: 5, TTL: 2 * time.Hour}}},
		{name: "defaults", tenant: "defaults", host: "other.test", want: Inspection{Bump: true, Learn: LearnSplice{After: 3, TTL: 24 * time.Hour}}},
		{name: "a host named in bump is never learned", tenant: "defaults", host: "named.test", want: Inspection{Bump: true}},
		{name: "off by default", tenant: "strict", host: "api.example.com", want: Inspection{Bump: true}},
		{name: "IP literals are not learned", tenant: "learner", host: "192.0.2.1", want: Inspection{Bump: true}},
		{name: "a host with path rules is never learned", tenant: "ruled", host: "sub.paths.test", want: Inspection{Bump: true}},
		{name: "a host with method rules is never learned", tenant: "ruled", host: "methods.test", want: Inspection{Bump: true}},
		{name: "a host with host-only rules is learned", tenant: "ruled", host: "plain.test", want: Inspection{Bump: true, Learn: LearnSplice{After: 3, TTL: 24 * time.Hour}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.Inspection(tc.tenant, tc.host); got != tc.want {
				t.Fatalf("Inspection(%q, %q) = %+v, want %+v", tc.tenant, tc.host, got, tc.want)
			}
		})
	}
}

func TestLearnSpliceValidation(t *testing.T) {
	tests := []struct {
		name string
		ti   TLSInspectionConfig
		want string
	}{
		{name: "needs bump", ti: TLSInspectionConfig{LearnSplice: &LearnSpliceConfig{}},
			want: `tenants[0].tls_inspection.learn_splice: has no effect unless mode is "bump"`},
		{name: "negative after", ti: TLSInspectionConfig{Mode: "bump", LearnSplice: &LearnSpliceConfig{After: -1}},
			want: "tenants[0].tls_inspection.learn_splice.after: -1: must be from 1 to 1000 (0 means the default, 3)"},
		{name: "short ttl", ti: TLSInspectionConfig{Mode: "bump", LearnSplice: &LearnSpliceConfig{TTL: 10 * time.Second}},
			want: "tenants[0].tls_inspection.learn_splice.ttl: 10s: must be from 1m0s to 720h0m0s (0 means the default, 24h0m0s)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Tenants: []TenantConfig{{Name: "a", LinkIDs: []uint32{1}, TLSInspection: tc.ti}}}
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}
