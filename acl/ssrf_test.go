package acl

import (
	"net/netip"
	"testing"
)

func TestCheckIP(t *testing.T) {
	tests := []struct {
		name string
		ip   string
		want Reason
	}{
		{name: "loopback", ip: "127.0.0.1", want: ReasonSSRF},
		{name: "loopback high", ip: "127.255.255.254", want: ReasonSSRF},
		{name: "rfc1918 10", ip: "10.1.2.3", want: ReasonSSRF},
		{name: "rfc1918 172.16", ip: "172.16.0.1", want: ReasonSSRF},
		{name: "rfc1918 172.31", ip: "172.31.255.255", want: ReasonSSRF},
		{name: "just past 172.16/12", ip: "172.32.0.1", want: ReasonNone},
		{name: "rfc1918 192.168", ip: "192.168.1.1", want: ReasonSSRF},
		{name: "cgnat", ip: "100.64.0.1", want: ReasonSSRF},
		{name: "cgnat top", ip: "100.127.255.255", want: ReasonSSRF},
		{name: "past cgnat", ip: "100.128.0.1", want: ReasonNone},
		{name: "link-local", ip: "169.254.1.1", want: ReasonSSRF},
		{name: "metadata", ip: "169.254.169.254", want: ReasonSSRF},
		{name: "azure wireserver", ip: "168.63.129.16", want: ReasonSSRF},
		{name: "azure neighbour is public", ip: "168.63.129.17", want: ReasonNone},
		{name: "this network", ip: "0.0.0.0", want: ReasonSSRF},
		{name: "this network high", ip: "0.255.255.255", want: ReasonSSRF},
		{name: "multicast", ip: "224.0.0.1", want: ReasonSSRF},
		{name: "multicast top", ip: "239.255.255.250", want: ReasonSSRF},
		{name: "reserved", ip: "240.0.0.1", want: ReasonSSRF},
		{name: "broadcast", ip: "255.255.255.255", want: ReasonSSRF},
		{name: "public v4", ip: "93.184.216.34", want: ReasonNone},
		{name: "v6 loopback", ip: "::1", want: ReasonSSRF},
		{name: "v6 unspecified", ip: "::", want: ReasonSSRF},
		{name: "ula fc", ip: "fc00::1", want: ReasonSSRF},
		{name: "ula fd", ip: "fd12:3456::1", want: ReasonSSRF},
		{name: "v6 link-local", ip: "fe80::1", want: ReasonSSRF},
		{name: "v6 link-local with zone", ip: "fe80::1%eth0", want: ReasonSSRF},
		{name: "v6 multicast", ip: "ff02::1", want: ReasonSSRF},
		{name: "public v6", ip: "2606:4700:4700::1111", want: ReasonNone},
		{name: "mapped loopback", ip: "::ffff:127.0.0.1", want: ReasonSSRF},
		{name: "mapped metadata", ip: "::ffff:169.254.169.254", want: ReasonSSRF},
		{name: "mapped public", ip: "::ffff:93.184.216.34", want: ReasonNone},
		{name: "compatible private", ip: "::10.0.0.1", want: ReasonSSRF},
		{name: "compatible public", ip: "::93.184.216.34", want: ReasonNone},
		{name: "nat64 metadata", ip: "64:ff9b::a9fe:a9fe", want: ReasonSSRF},
		{name: "nat64 azure", ip: "64:ff9b::a83f:8110", want: ReasonSSRF},
		{name: "nat64 public", ip: "64:ff9b::5db8:d822", want: ReasonNone},
		{name: "local-use nat64", ip: "64:ff9b:1::1", want: ReasonSSRF},
		{name: "6to4 private", ip: "2002:0a00:0001::1", want: ReasonSSRF},
		{name: "6to4 loopback", ip: "2002:7f00:0001::", want: ReasonSSRF},
		{name: "6to4 public", ip: "2002:5db8:d822::1", want: ReasonNone},
		{name: "teredo", ip: "2001:0:4136:e378:8000:63bf:3fff:fdd2", want: ReasonSSRF},
		{name: "invalid address", ip: "", want: ReasonSSRF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ip netip.Addr
			if tc.ip != "" {
				ip = netip.MustParseAddr(tc.ip)
			}
			if got := CheckIP(ip); got != tc.want {
				t.Fatalf("CheckIP(%s) = %v, want %v", tc.ip, got, tc.want)
			}
		})
	}
}

const dialConfig = `
tenants:
  - name: a
    link_ids: [1]
    rules:
      - {name: deny-bad, action: deny, cidrs: [93.184.216.0/24]}
      - {name: internet, cidrs: ["0.0.0.0/0", "::/0"]}
      - {name: app-subnet, cidrs: [10.1.0.0/16], ports: ["8080"]}
      - {name: metadata, cidrs: [169.254.169.254/32]}
      - {name: ula, cidrs: ["fd00:1::/32"]}
      - {name: deny-post, action: deny, cidrs: [203.0.113.0/24, 198.51.100.7], methods: [POST]}
      - {name: get-only-internal, cidrs: [192.168.5.0/24], methods: [GET]}
  - name: b
    link_ids: [2]
    report_only: true
    rules:
      - {name: deny-bad, action: deny, cidrs: [93.184.216.0/24]}
`

func TestCheckDial(t *testing.T) {
	p := compileYAML(t, dialConfig)
	tests := []struct {
		name      string
		tenant    string
		ip        string
		port      uint16
		method    string // default GET
		wantAct   Action
		wantRule  string
		wantWould bool
	}{
		{name: "public via broad allow", tenant: "a", ip: "1.1.1.1", port: 443, wantAct: Allow, wantRule: "internet"},
		{name: "deny rule applies at dial", tenant: "a", ip: "93.184.216.34", port: 443, wantAct: Deny, wantRule: "deny-bad"},
		{name: "broad allow does not open loopback", tenant: "a", ip: "127.0.0.1", port: 443, wantAct: Deny, wantRule: "ssrf"},
		{name: "broad allow does not open metadata", tenant: "a", ip: "169.254.169.254", port: 80, wantAct: Allow, wantRule: "metadata"},
		{name: "link-local neighbour still blocked", tenant: "a", ip: "169.254.169.253", port: 80, wantAct: Deny, wantRule: "ssrf"},
		{name: "explicit private cidr and port", tenant: "a", ip: "10.1.2.3", port: 8080, wantAct: Allow, wantRule: "app-subnet"},
		{name: "explicit private cidr wrong port", tenant: "a", ip: "10.1.2.3", port: 22, wantAct: Deny, wantRule: "ssrf"},
		{name: "private outside explicit", tenant: "a", ip: "10.2.0.1", port: 8080, wantAct: Deny, wantRule: "ssrf"},
		{name: "mapped form of explicit", tenant: "a", ip: "::ffff:10.1.2.3", port: 8080, wantAct: Allow, wantRule: "app-subnet"},
		{name: "mapped loopback blocked", tenant: "a", ip: "::ffff:127.0.0.1", port: 443, wantAct: Deny, wantRule: "ssrf"},
		{name: "nat64 metadata blocked despite ::/0", tenant: "a", ip: "64:ff9b::a9fe:a9fe", port: 80, wantAct: Deny, wantRule: "ssrf"},
		{name: "explicit ula", tenant: "a", ip: "fd00:1::5", port: 443, wantAct: Allow, wantRule: "ula"},
		{name: "other ula blocked", tenant: "a", ip: "fd00:2::5", port: 443, wantAct: Deny, wantRule: "ssrf"},
		{name: "method-scoped deny skips other methods", tenant: "a", ip: "198.51.100.7", port: 443, wantAct: Deny, wantRule: "ssrf"},
		{name: "method-scoped deny applies to its method at dial", tenant: "a", ip: "198.51.100.7", port: 443, method: "POST", wantAct: Deny, wantRule: "deny-post"},
		{name: "method-scoped deny matches any case", tenant: "a", ip: "198.51.100.7", port: 443, method: "post", wantAct: Deny, wantRule: "deny-post"},
		{name: "method-scoped allow exempts its method", tenant: "a", ip: "192.168.5.9", port: 80, wantAct: Allow, wantRule: "get-only-internal"},
		{name: "method-scoped allow does not exempt another method", tenant: "a", ip: "192.168.5.9", port: 80, method: "DELETE", wantAct: Deny, wantRule: "ssrf"},
		{name: "method-scoped allow does not exempt a CONNECT", tenant: "a", ip: "192.168.5.9", port: 80, method: "CONNECT", wantAct: Deny, wantRule: "ssrf"},
		{name: "public with no rules passes guard", tenant: "b", ip: "1.1.1.1", port: 443, wantAct: Allow, wantRule: "ssrf"},
		{name: "report-only deny rule", tenant: "b", ip: "93.184.216.34", port: 443, wantAct: Allow, wantRule: "deny-bad", wantWould: true},
		{name: "report-only never opens internal", tenant: "b", ip: "169.254.169.254", port: 80, wantAct: Deny, wantRule: "ssrf"},
		{name: "unknown tenant", tenant: "zzz", ip: "1.1.1.1", port: 443, wantAct: Deny, wantRule: "no-tenant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := Target{Scheme: "http", Method: "GET", Path: "/", Port: tc.port}
			if tc.method == "CONNECT" {
				req = Target{Scheme: "https", Method: "CONNECT", Port: tc.port}
			} else if tc.method != "" {
				req.Method = tc.method
			}
			d := p.CheckDial(tc.tenant, netip.MustParseAddr(tc.ip), req)
			if d.Action != tc.wantAct || d.Rule != tc.wantRule || d.WouldDeny != tc.wantWould {
				t.Fatalf("got %+v, want action %v rule %q wouldDeny %v", d, tc.wantAct, tc.wantRule, tc.wantWould)
			}
		})
	}
}
