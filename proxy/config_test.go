package proxy

import (
	"net/netip"
	"reflect"
	"testing"
)

// TestValidateLeavesTheSectionUnchanged: Validate only reports, so the
// loader, check and reload can call it on any copy; typed values come from
// provision, once, in New.
func TestValidateLeavesTheSectionUnchanged(t *testing.T) {
	c := Config{ProxyProtocol: PPRequired, TrustedProxies: []string{"10.240.0.0/28", "168.63.129.16"}}
	c.SetDefaults()
	before := c
	before.TrustedProxies = append([]string(nil), c.TrustedProxies...)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, before) {
		t.Fatalf("Validate changed the section:\n got %+v\nwant %+v", c, before)
	}
	pv, err := c.provision()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"10.240.0.15", true},
		{"10.240.0.16", false},
		{"168.63.129.16", true},
		{"::ffff:10.240.0.1", true}, // a v4-mapped socket peer is the v4 address
	} {
		if got := pv.isTrusted(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("isTrusted(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

// TestProvisionRefusesWhatValidateRefuses: New, given a section that
// skipped validation, fails instead of trusting a masked range.
func TestProvisionRefusesWhatValidateRefuses(t *testing.T) {
	c := Config{TrustedProxies: []string{"10.0.0.5/24"}}
	if _, err := c.provision(); err == nil {
		t.Fatal("provision accepted a range with host bits set")
	}
}

// TestTenantConnectionShareDefaultsAndBounds: unset means one half, and
// a share is a fraction: above 0, at most 1 (1 turns it off).
func TestTenantConnectionShareDefaultsAndBounds(t *testing.T) {
	c := Config{ProxyProtocol: PPOff}
	c.SetDefaults()
	if c.TenantConnectionShare != 0.5 || c.RevokeOnReload == nil || !*c.RevokeOnReload {
		t.Fatalf("defaults: share %v revoke %v, want 0.5 and true", c.TenantConnectionShare, c.RevokeOnReload)
	}
	for _, tc := range []struct {
		share float64
		want  string
	}{
		{1, ""},
		{0.01, ""},
		{-0.5, "proxy.tenant_connection_share: -0.5: must be a fraction above 0 and at most 1"},
		{1.5, "proxy.tenant_connection_share: 1.5: must be a fraction above 0 and at most 1"},
	} {
		c.TenantConnectionShare = tc.share
		got := ""
		if err := c.Validate(); err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("share %v: %q, want %q", tc.share, got, tc.want)
		}
	}
}
