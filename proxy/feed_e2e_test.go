package proxy_test

import (
	"bufio"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egressd/egressd/acl"
)

func feedFile(t testing.TB, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "feed.txt")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Through the real proxy: a name in a deny feed is refused before the
// tenant's allow rule, for CONNECT and plain HTTP; a name resolving into
// a listed address is refused at dial time although the tenant's cidrs
// rule allows loopback; a report-only feed lets traffic pass as
// would_deny; every line names the feed.
func TestDenyFeedRefusesListedNamesAndAddressesBeforeTenantRules(t *testing.T) {
	origin := helloOrigin(t)
	_, port, err := net.SplitHostPort(strings.TrimPrefix(origin, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	lo := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	res := staticResolver(map[string][]netip.Addr{
		"ok.origin.test": lo, "blocked.origin.test": lo, "trial.origin.test": lo,
		"rebind.origin.test": {netip.MustParseAddr("127.0.0.2")},
	})
	p := startProxy(t, withResolver(res), withACL(func(c *acl.Config) {
		c.DenyFeeds = []acl.DenyFeedConfig{
			{Name: "ti", File: feedFile(t, "# test feed\n0.0.0.0 blocked.origin.test\n127.0.0.2/32\n")},
			{Name: "trial", File: feedFile(t, "||trial.origin.test^\n"), ReportOnly: true},
		}
	}))
	for _, tc := range []struct {
		name, host, decision, rule string
		status                     int
	}{
		{"listed name", "blocked.origin.test", "deny", "feed/ti", http.StatusForbidden},
		{"resolves into listed range", "rebind.origin.test", "deny", "feed/ti", http.StatusForbidden},
		{"report-only feed", "trial.origin.test", "would_deny", "feed/trial", http.StatusOK},
		{"clean name", "ok.origin.test", "allow", "test-names", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _ := getVia(t, p, "http://"+tc.host+":"+port+"/", 0)
			if status != tc.status {
				t.Fatalf("GET: status %d, want %d", status, tc.status)
			}
			e := p.waitAccess(t, tc.host+" GET", func(e map[string]any) bool { return e["host"] == tc.host && e["method"] == "GET" })
			if e["decision"] != tc.decision || e["rule"] != tc.rule {
				t.Fatalf("GET access line: decision %v rule %v, want %s %s", e["decision"], e["rule"], tc.decision, tc.rule)
			}
			target := tc.host + ":" + port
			if tc.status == http.StatusOK {
				c, _ := connectVia(t, p, target)
				c.Close()
				return
			}
			c := dial(t, p.addr)
			defer c.Close()
			resp, _ := exchange(t, c, bufio.NewReader(c), "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n", "CONNECT")
			if resp.StatusCode != tc.status {
				t.Fatalf("CONNECT: status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
}
