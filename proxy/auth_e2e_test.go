package proxy_test

import (
	"bufio"
	"encoding/base64"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/egressd/egressd/acl"
)

// TestAccessLogNamesOnlyVerifiedUsers: the access log's user is someone
// whose password verified. Credentials that a tenant without users
// ignores, or that fail, are not an identity and are not logged as one.
func TestAccessLogNamesOnlyVerifiedUsers(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	lo := []acl.RuleConfig{{Name: "lo", CIDRs: []string{"127.0.0.0/8"}}}
	p := startProxy(t, withPolicy(acl.Config{Tenants: []acl.TenantConfig{
		{Name: "open", LinkIDs: []uint32{1001}, Rules: lo},
		{Name: "closed", LinkIDs: []uint32{1002}, RequireAuth: true,
			Users: []acl.UserConfig{{Name: "bob", BCrypt: string(hash)}}, Rules: lo},
	}}))
	origin := strings.TrimPrefix(helloOrigin(t), "http://")
	for _, tc := range []struct {
		name       string
		linkID     uint32
		user, pass string
		wantStatus int
		wantUser   string
	}{
		{"ignored by a tenant without users", 1001, "mallory", "x", 200, ""},
		{"wrong password", 1002, "bob", "guess", 407, ""},
		{"unknown user", 1002, "mallory", "x", 407, ""},
		{"verified", 1002, "bob", "s3cret", 200, "bob"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialPP(t, p.addr, tc.linkID)
			defer c.Close()
			auth := base64.StdEncoding.EncodeToString([]byte(tc.user + ":" + tc.pass))
			path := "/" + strings.ReplaceAll(tc.name, " ", "-")
			resp, _ := exchange(t, c, bufio.NewReader(c), "GET http://"+origin+path+" HTTP/1.1\r\nHost: "+origin+
				"\r\nProxy-Authorization: Basic "+auth+"\r\nConnection: close\r\n\r\n", "GET")
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			e := p.waitAccess(t, tc.name, func(e map[string]any) bool { return e["path"] == path })
			if got, _ := e["user"].(string); got != tc.wantUser {
				t.Fatalf("access log user %q, want %q", got, tc.wantUser)
			}
		})
	}
}
