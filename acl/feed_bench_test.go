package acl

import (
	"net/netip"
	"runtime"
	"strings"
	"testing"
)

// feedBenchCases are decisions against a policy behind a 1,000,000-name
// (or, under -race, 100,000-name; every case is in both)
// feed (plus 100,000 /24s): hits at several depths, and misses that walk
// every label of the host.
func feedBenchCases() []benchCase {
	return []benchCase{
		{name: "feed-hit-exact", tg: Target{Method: "CONNECT", Scheme: "https", Host: "host77777.bad777.example", Port: 443}, wantRule: "feed/big"},
		{name: "feed-hit-below", tg: Target{Method: "CONNECT", Scheme: "https", Host: "a.b.c.host99999.bad999.example", Port: 443}, wantRule: "feed/big"},
		{name: "feed-miss-deep", tg: Target{Method: "CONNECT", Scheme: "https", Host: "a.b.c.d.e.clean.example.com", Port: 443}, wantRule: "any"},
		{name: "feed-hit-ipv4", tg: Target{Method: "CONNECT", Scheme: "https", Host: "2.17.112.9", Addr: netip.MustParseAddr("2.17.112.9"), Port: 443}, wantRule: "feed/big"},
		{name: "feed-miss-ipv4", tg: Target{Method: "CONNECT", Scheme: "https", Host: "200.1.1.1", Addr: netip.MustParseAddr("200.1.1.1"), Port: 443}, wantRule: "nets"},
	}
}

// compileMillionFeed compiles feedPolicy with genFeed(n) and returns
// the heap the compiled policy holds, in MiB.
func compileMillionFeed(tb testing.TB, n int) (*Policy, float64) {
	tb.Helper()
	file := genFeed(tb, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	p := feedPolicy(tb, DenyFeedConfig{Name: "big", File: file})
	runtime.GC()
	runtime.ReadMemStats(&after)
	return p, float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20)
}

// TestDenyFeedMillionEntriesNoAllocs proves in the ordinary test run that
// a 1,000,000-entry feed compiles, matches and costs no allocation per
// decision; the benchmark reports the time.
func TestDenyFeedMillionEntriesNoAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a 1,000,000-entry feed")
	}
	n := 1_000_000
	if raceEnabled {
		n = 100_000 // the same shape; -race makes the full size take ~15 s
	}
	p, mib := compileMillionFeed(t, n)
	if info := p.Feeds()[0]; info.Domains != n || info.Skipped != 0 {
		t.Fatalf("feed info %+v", info)
	}
	t.Logf("%d names + %d /24s: %.1f MiB of heap", n, n/10, mib)
	id := linkID(1, "10.0.0.4:1")
	for _, bc := range feedBenchCases() {
		d := p.Decide(id, Credentials{}, bc.tg)
		if d.Rule != bc.wantRule {
			t.Fatalf("%s: rule %q, want %q", bc.name, d.Rule, bc.wantRule)
		}
		if n := testing.AllocsPerRun(100, func() { p.Decide(id, Credentials{}, bc.tg) }); n != 0 {
			t.Fatalf("%s: Decide allocates %v times per call", bc.name, n)
		}
	}
}

func BenchmarkDecideDenyFeed1M(b *testing.B) {
	p, mib := compileMillionFeed(b, 1_000_000)
	id := linkID(1, "10.0.0.4:1")
	for _, bc := range feedBenchCases() {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Decide(id, Credentials{}, bc.tg)
			}
			b.ReportMetric(mib, "feed-MiB")
		})
	}
	b.Run("checkdial-feed-ipv4", func(b *testing.B) {
		ip := netip.MustParseAddr("2.17.112.9")
		tg := Target{Method: "CONNECT", Scheme: "https", Host: "x.example", Port: 443}
		b.ReportAllocs()
		for b.Loop() {
			p.CheckDial("a", ip, tg)
		}
	})
}

// allBuiltinsPolicy attaches every built-in ruleset to one tenant, for the
// public cloud with a region.
func allBuiltinsPolicy(tb testing.TB) *Policy {
	tb.Helper()
	var rules []RuleConfig
	for _, bi := range Builtins() {
		if _, ok := bi.Clouds[CloudPublic]; ok {
			rules = append(rules, RuleConfig{Ruleset: BuiltinPrefix + bi.Name})
		}
	}
	p, err := Compile(Config{Tenants: []TenantConfig{{Name: "aks", LinkIDs: []uint32{1}, Region: "westeurope", Rules: rules}}})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func BenchmarkDecideAllBuiltins(b *testing.B) {
	p := allBuiltinsPolicy(b)
	id := linkID(1, "10.0.0.4:1")
	for _, bc := range []benchCase{
		{name: "mcr", tg: Target{Method: "CONNECT", Scheme: "https", Host: "mcr.microsoft.com", Port: 443}},
		{name: "apiserver", tg: Target{Method: "CONNECT", Scheme: "https", Host: "abc.hcp.westeurope.azmk8s.io", Port: 443}},
		{name: "miss", tg: Target{Method: "CONNECT", Scheme: "https", Host: "a.b.unlisted.example.com", Port: 443}},
	} {
		if d := p.Decide(id, Credentials{}, bc.tg); (bc.name == "miss") != (d.Rule == RuleDefault) || !strings.HasPrefix(d.Rule, BuiltinPrefix) && bc.name != "miss" {
			b.Fatalf("%s: rule %q", bc.name, d.Rule)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Decide(id, Credentials{}, bc.tg)
			}
		})
	}
}
