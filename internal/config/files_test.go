package config

import (
	"slices"
	"testing"

	"github.com/egressd/egressd/acl"
)

// Parent proxy credentials are followed like password files, in a stable
// order (the reloader hashes the list in order), and deny feeds are left
// to the reloader's size-and-time stamp.
func TestFilesListsParentCredentialsInStableOrder(t *testing.T) {
	up := func(f string) *acl.UpstreamProxyConfig {
		return &acl.UpstreamProxyConfig{URL: "http://p:3128", CredentialsFile: f}
	}
	c := Config{ACL: acl.Config{
		DenyFeeds: []acl.DenyFeedConfig{{Name: "f", File: "/feeds/f"}},
		Rulesets: map[string][]acl.RuleConfig{
			"b": {{UpstreamProxy: up("/creds/set-b")}}, "a": {{UpstreamProxy: up("/creds/set-a")}},
			"c": {{}}, "d": {{UpstreamProxy: up("/creds/set-d")}},
		},
		Tenants: []acl.TenantConfig{{
			Name: "t", UpstreamProxy: up("/creds/tenant"),
			Rules: []acl.RuleConfig{{}, {UpstreamProxy: up("/creds/rule")}},
		}},
	}}
	want := []string{"/creds/tenant", "/creds/rule", "/creds/set-a", "/creds/set-b", "/creds/set-d"}
	for range 20 {
		if got := c.Files(); !slices.Equal(got, want) {
			t.Fatalf("Files() = %v, want %v", got, want)
		}
	}
}
