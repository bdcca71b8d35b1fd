package proxy_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/egressd/egressd/acl"
)

// redirectDial sends dials for the given loopback addresses to other
// loopback listeners, so a test can stand in for port 443 without root.
// The proxy still resolves, checks and dials the address it decided on.
func redirectDial(to map[string]string) proxyOption {
	return withDial(func(ctx context.Context, network, address string) (net.Conn, error) {
		if alt, ok := to[address]; ok {
			address = alt
		}
		return loopbackOnlyDial(ctx, network, address)
	})
}

// A tenant that references builtin/aks-required reaches MCR through the
// real proxy, the access line names the built-in and its rule, and names
// the set does not list (another region's API server) are denied.
func TestBuiltinRulesetAllowsAKSDestinationsAndLogsItsName(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t,
		withResolver(loopbackResolver("mcr.microsoft.com", "abc.hcp.westeurope.azmk8s.io", "abc.hcp.northeurope.azmk8s.io")),
		redirectDial(map[string]string{"127.0.0.1:443": echo}),
		withACL(func(c *acl.Config) {
			c.Tenants[0].Region = "westeurope"
			c.Tenants[0].Rules = append([]acl.RuleConfig{{Ruleset: "builtin/aks-required"}}, c.Tenants[0].Rules...)
		}))
	for _, host := range []string{"mcr.microsoft.com", "abc.hcp.westeurope.azmk8s.io"} {
		c, br := connectVia(t, p, host+":443")
		io.WriteString(c, "ping")
		buf := make([]byte, 4)
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("%s: tunnel echo %q %v", host, buf, err)
		}
		c.Close()
	}
	mcr := p.waitAccess(t, "mcr tunnel", func(e map[string]any) bool { return e["host"] == "mcr.microsoft.com" })
	api := p.waitAccess(t, "apiserver tunnel", func(e map[string]any) bool { return e["host"] == "abc.hcp.westeurope.azmk8s.io" })
	if mcr["rule"] != "builtin/aks-required[mcr]" || mcr["decision"] != "allow" {
		t.Errorf("mcr access line: rule %v decision %v", mcr["rule"], mcr["decision"])
	}
	if api["rule"] != "builtin/aks-required[apiserver]" {
		t.Errorf("apiserver access line: rule %v", api["rule"])
	}

	c := dial(t, p.addr)
	defer c.Close()
	resp, _ := exchange(t, c, bufio.NewReader(c), "CONNECT abc.hcp.northeurope.azmk8s.io:443 HTTP/1.1\r\nHost: abc.hcp.northeurope.azmk8s.io:443\r\n\r\n", "CONNECT")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("another region's API server: %d, want 403", resp.StatusCode)
	}
}

// In mode bump with no bump list the AKS API server tunnel is spliced
// (the client sees the origin's own certificate), and a tenant that names
// it in bump gets it inspected.
func TestNeverInspectListSplicesAPIServerTunnelInModeBump(t *testing.T) {
	const host = "abc.hcp.westeurope.azmk8s.io"
	pki := newTrustSet(t)
	originCert := pki.leaf(t, leafSpec{names: []string{host}}, nil)
	o := startTLSOrigin(t, originCert, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "api") }))
	for _, tc := range []struct {
		name     string
		bump     []string
		wantCorp bool
	}{
		{"spliced-by-default", nil, false},
		{"bumped-when-named", []string{host}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, withInspection(pki, acl.TLSInspectionConfig{Mode: "bump", Bump: tc.bump}),
				withResolver(loopbackResolver(host)),
				withACL(func(c *acl.Config) {
					c.Tenants[0].Region = "westeurope"
					c.Tenants[0].Rules = append(c.Tenants[0].Rules, acl.RuleConfig{Name: "aks", Domains: []string{".azmk8s.io"}})
				}))
			roots := pki.originPool
			if tc.wantCorp {
				roots = pki.corpPool
			}
			tconn, err := tlsVia(p.addr, host+":"+o.port, host, roots)
			if err != nil {
				t.Fatal(err)
			}
			defer tconn.Close()
			issuer := tconn.ConnectionState().PeerCertificates[0].Issuer.String()
			if gotCorp := issuer == pki.corpCA.Subject.String(); gotCorp != tc.wantCorp {
				t.Fatalf("certificate issued by %q; corporate CA %v, want %v", issuer, gotCorp, tc.wantCorp)
			}
		})
	}
}
