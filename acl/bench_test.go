package acl

import (
	"fmt"
	"net/netip"
	"testing"
)

// bigPolicy builds one tenant with n rules: a quarter each exact domains,
// "*." wildcards, Squid dots and CIDRs of varied lengths, every fifth with
// ports, plus a final catch-all so misses walk the whole index.
func bigPolicy(tb testing.TB, n int) *Policy {
	tb.Helper()
	rules := make([]RuleConfig, 0, n)
	for i := range n - 1 {
		r := RuleConfig{Name: fmt.Sprintf("r%d", i)}
		switch i % 4 {
		case 0:
			r.Domains = []string{fmt.Sprintf("api%d.example%d.com", i, i%97)}
		case 1:
			r.Domains = []string{fmt.Sprintf("*.svc%d.example.net", i)}
		case 2:
			r.Domains = []string{fmt.Sprintf(".corp%d.example.org", i)}
		case 3:
			if i%8 == 3 {
				r.CIDRs = []string{netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(11 + i%50), byte(i >> 8), byte(i), 0}), 24).String()}
			} else {
				r.CIDRs = []string{fmt.Sprintf("2001:db8:%x::/48", i)}
			}
		}
		if i%5 == 0 {
			r.Ports = []string{"443", "8000-8100"}
		}
		if i%7 == 0 {
			r.Action = "deny"
		}
		rules = append(rules, r)
	}
	rules = append(rules, RuleConfig{Name: "last", Domains: []string{"*"}, Ports: []string{"1"}})
	p, err := Compile(Config{Tenants: []TenantConfig{{Name: "big", LinkIDs: []uint32{1}, Rules: rules}}})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

type benchCase struct {
	name     string
	tg       Target
	wantRule string
}

func benchCases() []benchCase {
	return []benchCase{
		{name: "exact-early", tg: Target{Method: "CONNECT", Scheme: "https", Host: "api4.example4.com", Port: 443}, wantRule: "r4"},
		{name: "exact-late", tg: Target{Method: "CONNECT", Scheme: "https", Host: "api9996.example5.com", Port: 443}, wantRule: "r9996"},
		{name: "wildcard-deep", tg: Target{Method: "CONNECT", Scheme: "https", Host: "a.b.c.svc9993.example.net", Port: 443}, wantRule: "r9993"},
		{name: "squid-apex", tg: Target{Method: "GET", Scheme: "http", Host: "corp5002.example.org", Port: 80}, wantRule: "r5002"},
		{name: "miss-default", tg: Target{Method: "CONNECT", Scheme: "https", Host: "nothing.example.io", Port: 443}, wantRule: "default"},
		{name: "ipv4-literal", tg: Target{Method: "CONNECT", Scheme: "https", Host: "12.35.91.7", Addr: netip.MustParseAddr("12.35.91.7"), Port: 443}, wantRule: "r9051"},
		{name: "ipv6-literal", tg: Target{Method: "CONNECT", Scheme: "https", Host: "2001:db8:26ff::1", Addr: netip.MustParseAddr("2001:db8:26ff::1"), Port: 443}, wantRule: "r9983"},
	}
}

// TestDecideBigPolicyNoAllocs keeps the hot path allocation-free in the
// ordinary test run, not only when someone runs the benchmark.
func TestDecideBigPolicyNoAllocs(t *testing.T) {
	p := bigPolicy(t, 10000)
	id := linkID(1, "10.0.0.4:1")
	for _, bc := range benchCases() {
		t.Run(bc.name, func(t *testing.T) {
			d := p.Decide(id, Credentials{}, bc.tg)
			if d.Rule != bc.wantRule {
				t.Fatalf("rule %q, want %q", d.Rule, bc.wantRule)
			}
			if n := testing.AllocsPerRun(100, func() { p.Decide(id, Credentials{}, bc.tg) }); n != 0 {
				t.Fatalf("Decide allocates %v times per call", n)
			}
		})
	}
	t.Run("cached credentials", func(t *testing.T) {
		pa := compileYAML(t, `
tenants:
  - {name: a, link_ids: [1], require_auth: true, default: allow, users: [{name: u, bcrypt: "`+hashOf(t, "pw")+`"}]}
`)
		cred := Credentials{User: "u", Password: "pw", Present: true}
		tg := benchCases()[0].tg
		if d := pa.Decide(id, cred, tg); d.Action != Allow {
			t.Fatalf("got %+v", d)
		}
		if n := testing.AllocsPerRun(100, func() { pa.Decide(id, cred, tg) }); n != 0 {
			t.Fatalf("cached auth allocates %v times per call", n)
		}
	})
}

func BenchmarkDecide10kRules(b *testing.B) {
	p := bigPolicy(b, 10000)
	id := linkID(1, "10.0.0.4:1")
	for _, bc := range benchCases() {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Decide(id, Credentials{}, bc.tg)
			}
		})
	}
}

func BenchmarkCheckDial10kRules(b *testing.B) {
	p := bigPolicy(b, 10000)
	ip := netip.MustParseAddr("12.35.91.7")
	b.ReportAllocs()
	for b.Loop() {
		p.CheckDial("big", ip, Target{Scheme: "https", Method: "CONNECT", Port: 443})
	}
}
