package proxy_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/proxy"
)

// twoTenants: alpha (LinkID 1001) may reach loopback origins; beta (LinkID
// 1002) may reach only api.partner.test. Both arrive from the same source
// address, as consumers behind different private endpoints do.
func twoTenants() proxyOption {
	return withPolicy(acl.Config{Tenants: []acl.TenantConfig{
		{Name: "alpha", LinkIDs: []uint32{1001}, Rules: []acl.RuleConfig{
			{Name: "loopback-origins", CIDRs: []string{"127.0.0.0/8"}},
		}},
		{Name: "beta", LinkIDs: []uint32{1002}, Rules: []acl.RuleConfig{
			{Name: "partner-api", Domains: []string{"api.partner.test"}},
		}},
	}})
}

func TestSameSourceDifferentLinkIDsGetDifferentAnswers(t *testing.T) {
	p := startProxy(t, twoTenants())
	origin := strings.TrimPrefix(helloOrigin(t), "http://")

	status, body := getVia(t, p, "http://"+origin+"/", 1001)
	if status != 200 || string(body) != "hello" {
		t.Fatalf("alpha: %d %q, want 200 hello", status, body)
	}
	status, body = getVia(t, p, "http://"+origin+"/", 1002)
	if status != 403 {
		t.Fatalf("beta: %d, want 403", status)
	}
	for _, want := range []string{"tenant beta", "rule default", origin} {
		if !strings.Contains(string(body), want) {
			t.Errorf("403 body %q does not name %q", body, want)
		}
	}
	a := p.waitAccess(t, "alpha", func(e map[string]any) bool { return e["tenant"] == "alpha" })
	b := p.waitAccess(t, "beta", func(e map[string]any) bool { return e["tenant"] == "beta" })
	if ipOf(a["client"]) != ipOf(b["client"]) {
		t.Fatalf("test premise: both requests should come from one source address, got %v and %v", a["client"], b["client"])
	}
	if a["decision"] != "allow" || a["rule"] != "loopback-origins" || b["decision"] != "deny" || b["rule"] != "default" {
		t.Fatalf("alpha %v/%v, beta %v/%v", a["decision"], a["rule"], b["decision"], b["rule"])
	}
}

// A name the tenant may reach that resolves to an internal address is
// refused at dial time, and no connection is attempted.
func TestNameResolvingToInternalAddressIsRefused(t *testing.T) {
	dialed := make(chan string, 4)
	p := startProxy(t, twoTenants(),
		withResolver(staticResolver(map[string][]netip.Addr{"api.partner.test": {netip.MustParseAddr("169.254.169.254")}})),
		withDeps(func(d *proxy.Deps) {
			inner := d.Dial
			d.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				dialed <- addr
				return inner(ctx, network, addr)
			}
		}))
	status, body := getVia(t, p, "http://api.partner.test/latest/meta-data/", 1002)
	if status != http.StatusForbidden || !strings.Contains(string(body), "ssrf") {
		t.Fatalf("status %d body %q, want 403 naming ssrf", status, body)
	}
	select {
	case addr := <-dialed:
		t.Fatalf("the proxy dialed %s for a refused name", addr)
	default:
	}
	e := p.waitAccess(t, "ssrf", func(e map[string]any) bool { return e["host"] == "api.partner.test" })
	if e["decision"] != "deny" || e["reason"] != "ssrf" || e["error"] != "ssrf" {
		t.Fatalf("access log %v", e)
	}
}

// With revoke_on_reload off, an open tunnel keeps working after the
// policy that allowed it is replaced by one that denies its destination;
// new requests get the new answer.
func TestPolicySwapKeepsOpenTunnelWhenRevocationIsOff(t *testing.T) {
	off := false
	p := startProxy(t, twoTenants(), withConfig(func(c *proxy.Config) { c.RevokeOnReload = &off }))
	echo := startEcho(t)
	c, br := connectAs(t, p, 1001, echo)
	p.srv.SetPolicy(compilePolicy(t, acl.Config{Tenants: []acl.TenantConfig{
		{Name: "alpha", LinkIDs: []uint32{1001}}, // default deny
	}}))
	io.WriteString(c, "still here")
	buf := make([]byte, len("still here"))
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "still here" {
		t.Fatalf("tunnel after policy swap: %q %v", buf, err)
	}
	c.Close()
	if status, _ := getVia(t, p, "http://"+echo+"/", 1001); status != 403 {
		t.Fatalf("new request under the new policy: %d, want 403", status)
	}
}

func ipOf(v any) string {
	s, _ := v.(string)
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return s
	}
	return ap.Addr().String()
}
