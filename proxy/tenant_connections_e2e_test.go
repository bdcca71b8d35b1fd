package proxy_test

// A tenant's connections are capped as connections, from the PROXY header
// on, so one tenant parking idle sockets cannot take the proxy from its
// neighbours or from the load balancer's probes (issue 13, item 2).

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/proxy"
)

// openIdle opens n connections that send a PROXY header with linkID and
// then nothing: what a tenant holding idle sockets does.
func openIdle(t *testing.T, addr string, linkID uint32, n int) []*net.TCPConn {
	t.Helper()
	out := make([]*net.TCPConn, n)
	for i := range out {
		out[i] = dialPP(t, addr, linkID)
	}
	return out
}

// refusedOf reads what each connection got within a short wait: a
// refused one has a 503 and is closed, an admitted one has nothing yet.
func refusedOf(t *testing.T, conns []*net.TCPConn) (refused int) {
	t.Helper()
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("connection %d: %v, want a 503 or nothing at all", i, err)
			}
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Proxy-Error") != "tenant_connection_limit" || !resp.Close {
			t.Fatalf("connection %d: %d %q (%q), want 503 tenant_connection_limit and close", i, resp.StatusCode, resp.Header.Get("X-Proxy-Error"), body)
		}
		refused++
	}
	return refused
}

// probe sends what an Azure load balancer probe sends on the proxy port
// once proxy protocol is on: a LOCAL header and an HTTP GET.
func probe(t *testing.T, addr string) int {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	h := &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	c.Write(append(headerBytes(t, h), "GET /healthz HTTP/1.1\r\nHost: probe\r\n\r\n"...))
	resp, _ := readResponse(t, bufio.NewReader(c), "GET")
	return resp.StatusCode
}

// TestTenantHoldingIdleSocketsCannotStarveItsNeighbours: with
// max_connections 10 and the default share of one half, alpha gets five
// connections however long it holds them idle; its sixth and later are
// answered 503 and closed, counted and logged, while beta and a load
// balancer probe are still served. A lower limits.max_connections lowers
// alpha's cap further, and a freed slot is alpha's again.
func TestTenantHoldingIdleSocketsCannotStarveItsNeighbours(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limit   int // alpha's limits.max_connections
		wantCap int
	}{
		{name: "share of the global cap", limit: 0, wantCap: 5},
		{name: "tenant limit below its share", limit: 3, wantCap: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const global = 10
			reg := prometheus.NewRegistry()
			origin := helloOrigin(t)
			lo := []acl.RuleConfig{{Name: "loopback-origins", CIDRs: []string{"127.0.0.0/8"}}}
			p := startProxy(t, withMetrics(reg), withConfig(func(c *proxy.Config) {
				requiredPP(c)
				c.ProxyHeaderTimeout = 5 * time.Second
				c.MaxConnections = global
			}), withPolicy(acl.Config{Tenants: []acl.TenantConfig{
				{Name: "alpha", LinkIDs: []uint32{alphaLinkID}, Rules: lo, Limits: acl.LimitsConfig{MaxConnections: tc.limit}},
				{Name: "beta", LinkIDs: []uint32{betaLinkID}, Rules: lo},
			}}))

			// alpha tries to take every slot the proxy has.
			held := openIdle(t, p.addr, alphaLinkID, global)
			if got := refusedOf(t, held); got != global-tc.wantCap {
				t.Fatalf("alpha was refused %d of %d idle connections, want %d (cap %d)", got, global, global-tc.wantCap, tc.wantCap)
			}
			waitFor(t, 5*time.Second, "the refused connections to close", func() bool {
				return p.srv.OpenConnections() == int64(tc.wantCap)
			})

			// Its neighbours and the load balancer do not notice.
			for i := range 2 {
				if status, body := getVia(t, p, origin+"/beta", betaLinkID); status != 200 || string(body) != "hello" {
					t.Fatalf("beta request %d while alpha is at its cap: %d %q, want 200 hello", i, status, body)
				}
				if got := probe(t, p.addr); got != 200 {
					t.Fatalf("load balancer probe %d while alpha is at its cap: %d, want 200", i, got)
				}
			}
			// alpha's admitted connections still work.
			c := held[0]
			c.SetDeadline(time.Now().Add(ioTimeout))
			if resp, body := exchange(t, c, bufio.NewReader(c), keepAliveGet(strings.TrimPrefix(origin, "http://"), ""), "GET"); resp.StatusCode != 200 || string(body) != "hello" {
				t.Fatalf("alpha's admitted connection: %d %q", resp.StatusCode, body)
			}

			wantMetric(t, reg, "egressd_limit_rejections_total", map[string]string{"scope": "tenant_connections", "tenant": "alpha"}, float64(global-tc.wantCap))
			wantMetric(t, reg, "egressd_limit_rejections_total", map[string]string{"scope": "tenant_connections", "tenant": "beta"}, 0)
			wantMetric(t, reg, "egressd_limit_rejections_total", map[string]string{"scope": "global", "tenant": "unknown"}, 0)
			logged := p.events.FilterMessage("connection refused: tenant over its connection limit").All()
			if len(logged) == 0 || logged[0].ContextMap()["tenant"] != "alpha" || logged[0].ContextMap()["error"] != "tenant_connection_limit" {
				t.Fatalf("refusal log lines %v, want them to name alpha and the reason", logged)
			}

			// A slot alpha frees is alpha's again.
			held[1].Close()
			waitFor(t, 5*time.Second, "alpha's slot to free up", func() bool { return p.srv.TenantConnections("alpha") == tc.wantCap-1 })
			if status, body := getVia(t, p, origin+"/alpha-again", alphaLinkID); status != 200 || string(body) != "hello" {
				t.Fatalf("alpha after freeing a slot: %d %q", status, body)
			}
		})
	}
}
