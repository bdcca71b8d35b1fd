package proxy_test

// A reload is a kill switch: tunnels and keep-alive connections the new
// policy denies are closed, the rest live on (issue 13, item 3).

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/proxy"
)

// revokePolicy: alpha and beta may reach loopback; alphaRule false drops
// alpha's rule, so its default (deny) applies.
func revokePolicy(t testing.TB, alphaRule bool) *acl.Policy {
	lo := []acl.RuleConfig{{Name: "loopback-origins", CIDRs: []string{"127.0.0.0/8"}}}
	alpha := acl.TenantConfig{Name: "alpha", LinkIDs: []uint32{alphaLinkID}}
	if alphaRule {
		alpha.Rules = lo
	}
	return compilePolicy(t, acl.Config{Tenants: []acl.TenantConfig{alpha, {Name: "beta", LinkIDs: []uint32{betaLinkID}, Rules: lo}}})
}

// tunnelVia opens a CONNECT tunnel with a PROXY header for linkID.
func tunnelVia(t *testing.T, p *testProxy, linkID uint32, target string) (*net.TCPConn, *bufio.Reader) {
	t.Helper()
	c, br := connectAs(t, p, linkID, target)
	// The first bytes decide the tunnel (splice, since they are not TLS);
	// a silent client would be closed at the ClientHello timeout.
	if !echoes(c, br, "first") {
		t.Fatalf("tunnel for link %d does not echo", linkID)
	}
	return c, br
}

// TestReloadClosesTunnelsAndKeepAlivesItNowDenies: alpha holds a CONNECT
// tunnel and an idle keep-alive connection, beta a tunnel. A reload that
// keeps alpha's rule leaves all three working; one that removes it closes
// alpha's two (logged, counted, the tunnel's access line says revoked)
// and leaves beta's tunnel alone.
func TestReloadClosesTunnelsAndKeepAlivesItNowDenies(t *testing.T) {
	reg := prometheus.NewRegistry()
	echo := startEcho(t)
	origin := strings.TrimPrefix(helloOrigin(t), "http://")
	p := startProxy(t, withMetrics(reg), withDeps(func(d *proxy.Deps) { d.Policy = revokePolicy(t, true) }))

	tun, tbr := tunnelVia(t, p, alphaLinkID, echo)
	keep := dialPP(t, p.addr, alphaLinkID)
	kbr := bufio.NewReader(keep)
	if resp, body := exchange(t, keep, kbr, keepAliveGet(origin, ""), "GET"); resp.StatusCode != 200 || string(body) != "hello" {
		t.Fatalf("keep-alive request: %d %q", resp.StatusCode, body)
	}
	beta, bbr := tunnelVia(t, p, betaLinkID, echo)

	p.srv.SetPolicy(revokePolicy(t, true))
	if !echoes(tun, tbr, "same rule") || !echoes(beta, bbr, "same rule") {
		t.Fatal("a reload that kept the rule closed a tunnel")
	}
	keep.SetDeadline(time.Now().Add(ioTimeout))
	if resp, body := exchange(t, keep, kbr, keepAliveGet(origin, ""), "GET"); resp.StatusCode != 200 || string(body) != "hello" {
		t.Fatalf("keep-alive after a reload that kept the rule: %d %q", resp.StatusCode, body)
	}
	wantMetric(t, reg, "egressd_revoked_connections_total", map[string]string{"tenant": "alpha"}, 0)

	p.srv.SetPolicy(revokePolicy(t, false))
	expectEOF(t, tun, tbr)
	expectEOF(t, keep, kbr)
	if !echoes(beta, bbr, "beta is untouched") {
		t.Fatal("beta's tunnel closed when only alpha's rule was removed")
	}
	wantMetric(t, reg, "egressd_revoked_connections_total", map[string]string{"tenant": "alpha"}, 2)
	wantMetric(t, reg, "egressd_revoked_connections_total", map[string]string{"tenant": "beta"}, 0)
	if got := len(p.events.FilterMessage("connection revoked by policy reload").All()); got != 2 {
		t.Errorf("%d revocation log lines, want 2", got)
	}
	e := p.waitAccess(t, "the revoked tunnel", func(e map[string]any) bool {
		return e["kind"] == "connect" && e["tenant"] == "alpha" && e["error"] != nil
	})
	if e["error"] != "revoked" {
		t.Errorf("revoked tunnel logged with error %v, want revoked", e["error"])
	}
	if status, _ := getVia(t, p, "http://"+origin+"/", alphaLinkID); status != 403 {
		t.Errorf("new alpha request after the reload: %d, want 403", status)
	}
}
