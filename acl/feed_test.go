package acl

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFeed(t testing.TB, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "feed.txt")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// feedPolicy compiles one allow-everything tenant (any domain, public and
// documentation ranges) behind the given feeds.
func feedPolicy(t testing.TB, feeds ...DenyFeedConfig) *Policy {
	t.Helper()
	p, err := Compile(Config{
		DenyFeeds: feeds,
		Tenants: []TenantConfig{{Name: "a", LinkIDs: []uint32{1}, Rules: []RuleConfig{
			{Name: "any", Domains: []string{"*"}},
			{Name: "nets", CIDRs: []string{"0.0.0.0/0", "::/0", "10.0.0.0/8"}},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const mixedFeed = `# threat intel, several formats in one file
[Adblock Plus 2.0]
! adblock comment
plain.example
.squid.example
*.below.example
0.0.0.0 hosts1.example hosts2.example # trailing comment
127.0.0.1 localhost
::1 ip6-localhost
0.0.0.0 0.0.0.0
||adblock.example^
||withopts.example^$third-party
@@||exception.example^
cosmetic.example##.banner
203.0.113.0/24 ; SBL123
198.51.100.7
2001:db8:bad::/48
10.9.9.9
UPPER.Example.
garbage line here
`

// Every supported format lands in the index with its documented meaning,
// and unsupported adblock forms are skipped and counted, never guessed.
func TestDenyFeedFormatsAndMatching(t *testing.T) {
	p := feedPolicy(t, DenyFeedConfig{Name: "ti", File: writeFeed(t, mixedFeed)})
	info := p.Feeds()[0]
	if info.Skipped != 4 || info.FirstSkipped != 12 {
		t.Fatalf("skipped %d (first line %d), want 4 (first line 12)", info.Skipped, info.FirstSkipped)
	}
	for _, tc := range []struct {
		host string
		want string
	}{
		{"plain.example", "feed/ti"},
		{"x.plain.example", "feed/ti"},
		{"squid.example", "feed/ti"},
		{"a.b.squid.example", "feed/ti"},
		{"below.example", "any"},
		{"x.below.example", "feed/ti"},
		{"hosts1.example", "feed/ti"},
		{"sub.hosts2.example", "feed/ti"},
		{"localhost", "any"},
		{"adblock.example", "feed/ti"},
		{"www.adblock.example", "feed/ti"},
		{"withopts.example", "any"},
		{"exception.example", "any"},
		{"cosmetic.example", "any"},
		{"upper.example", "feed/ti"},
		{"notplain.example", "any"},
		{"example", "any"},
		{"203.0.113.0", "feed/ti"},
		{"203.0.113.255", "feed/ti"},
		{"203.0.114.0", "nets"},
		{"203.0.112.255", "nets"},
		{"198.51.100.7", "feed/ti"},
		{"198.51.100.8", "nets"},
		{"[2001:db8:bad:ffff::1]", "feed/ti"},
		{"[2001:db8:bae::]", "nets"},
	} {
		d := p.Decide(linkID(1, "10.0.0.4:1"), Credentials{}, target(t, "CONNECT", "https", tc.host, 443, ""))
		if d.Rule != tc.want {
			t.Errorf("%s: rule %q, want %q", tc.host, d.Rule, tc.want)
		}
		if (tc.want == "feed/ti") != (d.Action == Deny) {
			t.Errorf("%s: action %s", tc.host, d.Action)
		}
	}
}

// A name that resolves into a listed range is refused at dial time even
// though the tenant's cidrs rule would allow the address.
func TestDenyFeedCIDRAppliesToDialedAddress(t *testing.T) {
	p := feedPolicy(t, DenyFeedConfig{Name: "ti", File: writeFeed(t, "10.9.9.9\n203.0.113.0/24\n")})
	tg := target(t, "CONNECT", "https", "innocent.example", 443, "")
	if d := p.Decide(linkID(1, "10.0.0.4:1"), Credentials{}, tg); d.Action != Allow {
		t.Fatalf("by name: %+v", d)
	}
	for ip, want := range map[string]Action{"203.0.113.9": Deny, "10.9.9.9": Deny, "10.9.9.10": Allow, "8.8.8.8": Allow} {
		d := p.CheckDial("a", netip.MustParseAddr(ip), tg)
		if d.Action != want {
			t.Errorf("%s: %+v, want %s", ip, d, want)
		}
		if want == Deny && d.Rule != "feed/ti" {
			t.Errorf("%s: rule %q", ip, d.Rule)
		}
	}
}

// A report-only feed lets traffic pass as would_deny naming the feed, an
// enforcing feed listed after it still denies, and a tenant's own deny
// is not turned into an allow by a report-only feed.
func TestDenyFeedReportOnlyPrecedence(t *testing.T) {
	ro := DenyFeedConfig{Name: "trial", File: writeFeed(t, "both.example\nonly-trial.example\nown-deny.example\n"), ReportOnly: true}
	enf := DenyFeedConfig{Name: "ti", File: writeFeed(t, "both.example\n")}
	p, err := Compile(Config{DenyFeeds: []DenyFeedConfig{ro, enf}, Tenants: []TenantConfig{{Name: "a", LinkIDs: []uint32{1}, Rules: []RuleConfig{
		{Name: "no", Action: "deny", Domains: []string{"own-deny.example"}},
		{Name: "any", Domains: []string{"*"}},
	}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host      string
		action    Action
		wouldDeny bool
		rule      string
	}{
		{"both.example", Deny, false, "feed/ti"},
		{"only-trial.example", Allow, true, "feed/trial"},
		{"own-deny.example", Deny, false, "no"},
		{"clean.example", Allow, false, "any"},
	} {
		d := p.Decide(linkID(1, "10.0.0.4:1"), Credentials{}, target(t, "CONNECT", "https", tc.host, 443, ""))
		if d.Action != tc.action || d.WouldDeny != tc.wouldDeny || d.Rule != tc.rule {
			t.Errorf("%s: %s would_deny=%v rule %q; want %s %v %q", tc.host, d.Action, d.WouldDeny, d.Rule, tc.action, tc.wouldDeny, tc.rule)
		}
	}
}

func TestDenyFeedConfigErrors(t *testing.T) {
	empty := writeFeed(t, "# nothing but comments\n||x.example^$third-party\n")
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing file", Config{DenyFeeds: []DenyFeedConfig{{Name: "x", File: "/nonexistent/feed"}}},
			"deny_feeds[0].file: read: open /nonexistent/feed"},
		{"no entries", Config{DenyFeeds: []DenyFeedConfig{{Name: "x", File: empty}}},
			"deny_feeds[0].file: " + empty + ": no domain or CIDR entries (1 lines skipped)"},
		{"no file", Config{DenyFeeds: []DenyFeedConfig{{Name: "x"}}}, "deny_feeds[0].file: required"},
		{"duplicate", Config{DenyFeeds: []DenyFeedConfig{{Name: "x", File: empty}, {Name: "x", File: empty}}},
			`deny_feeds[1].name: "x": duplicate of deny_feeds[0].name`},
		{"reserved rule name", Config{Tenants: []TenantConfig{{Name: "a", Rules: []RuleConfig{{Name: "feed/x", Domains: []string{"a.example"}}}}}},
			`tenants[0].rules[0].name: "feed/x": the "feed/" prefix is reserved for deny feed matches`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// Overlapping and adjacent ranges merge, so binary search sees at most
// one candidate; the edges of every range still match exactly.
func TestDenyFeedRangesMerge(t *testing.T) {
	p := feedPolicy(t, DenyFeedConfig{Name: "n", File: writeFeed(t,
		"192.0.2.0/25\n192.0.2.128/25\n192.0.2.64/26\n198.18.0.0/15\n198.19.0.0/16\n255.255.255.255\n::/128\nffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127\n")})
	if got := p.Feeds()[0].Ranges; got != 5 {
		t.Fatalf("%d ranges after merging, want 5", got)
	}
	for ip, want := range map[string]bool{
		"192.0.1.255": false, "192.0.2.0": true, "192.0.2.255": true, "192.0.3.0": false,
		"198.17.255.255": false, "198.18.0.0": true, "198.19.255.255": true, "198.20.0.0": false,
		"255.255.255.255": true, "255.255.255.254": false,
		"::": true, "::1": false, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": true, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd": false,
	} {
		if got := p.feeds[0].matchAddr(netip.MustParseAddr(ip)); got != want {
			t.Errorf("%s: %v, want %v", ip, got, want)
		}
	}
}

// genFeed writes n domains and n/10 IPv4 /24s, the shape of a large
// threat-intelligence list.
func genFeed(tb testing.TB, n int) string {
	tb.Helper()
	var b strings.Builder
	b.Grow(n * 28)
	for i := range n {
		fmt.Fprintf(&b, "host%d.bad%d.example\n", i, i%1000)
		if i%10 == 0 {
			fmt.Fprintf(&b, "%d.%d.%d.0/24\n", 1+i>>16&0x7f, i>>8&0xff, i&0xff)
		}
	}
	return writeFeed(tb, b.String())
}

// A byte order mark and CRLF line ends (a list saved on Windows) do not
// cost the first entry or any other. The first entry is a CIDR: a name
// would survive anyway, since IDNA mapping drops U+FEFF.
func TestDenyFeedByteOrderMarkAndCRLF(t *testing.T) {
	p := feedPolicy(t, DenyFeedConfig{Name: "w", File: writeFeed(t, "\xef\xbb\xbf203.0.113.0/24\r\nsecond.example\r\n")})
	if info := p.Feeds()[0]; info.Domains != 1 || info.Ranges != 1 || info.Skipped != 0 {
		t.Fatalf("feed info %+v", info)
	}
	d := p.Decide(linkID(1, "10.0.0.4:1"), Credentials{}, target(t, "CONNECT", "https", "203.0.113.7", 443, ""))
	if d.Rule != "feed/w" {
		t.Fatalf("first entry: rule %q", d.Rule)
	}
}
