package proxy_test

// Tenant isolation through the upstream pool: tenants behind one Private
// Link Service share every origin, and nothing an origin attached to one
// tenant's upstream connection may reach another (issue 13).

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/egressd/egressd/acl"
)

const (
	alphaLinkID = 1001
	betaLinkID  = 1002
)

// sharedOrigins: tenants alpha and beta may both reach every loopback origin.
func sharedOrigins() proxyOption {
	lo := []acl.RuleConfig{{Name: "loopback-origins", CIDRs: []string{"127.0.0.0/8"}}}
	return withPolicy(acl.Config{Tenants: []acl.TenantConfig{
		{Name: "alpha", LinkIDs: []uint32{alphaLinkID}, Rules: lo},
		{Name: "beta", LinkIDs: []uint32{betaLinkID}, Rules: lo},
	}})
}

// connIDs numbers an origin's connections in accept order.
type connIDs struct {
	mu   sync.Mutex
	ids  map[net.Conn]int
	next int
}

func (c *connIDs) of(conn net.Conn) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ids == nil {
		c.ids = map[net.Conn]int{}
	}
	id, ok := c.ids[conn]
	if !ok {
		c.next++
		id = c.next
		c.ids[conn] = id
	}
	return id
}

func keepAliveGet(origin, extra string) string {
	return "GET http://" + origin + "/ HTTP/1.1\r\nHost: " + origin + "\r\n" + extra + "\r\n"
}

// TestPooledUpstreamNeverCrossesTenants: an upstream connection alpha used
// is reused by alpha's next request, never by beta's, however soon beta asks.
func TestPooledUpstreamNeverCrossesTenants(t *testing.T) {
	var ids connIDs
	o := startRawOrigin(t, func(c net.Conn, _ *bufio.Reader, _ string) bool {
		body := fmt.Sprintf("conn-%d", ids.of(c))
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		return true
	})
	p := startProxy(t, sharedOrigins())
	ask := func(linkID uint32) string {
		c := dialPP(t, p.addr, linkID)
		defer c.Close()
		resp, body := exchange(t, c, bufio.NewReader(c), keepAliveGet(o.addr, ""), "GET")
		if resp.StatusCode != 200 {
			t.Fatalf("link %d: status %d", linkID, resp.StatusCode)
		}
		// The proxy parks the upstream connection just after the client
		// has its last byte; give it that moment so reuse is observable.
		time.Sleep(200 * time.Millisecond)
		return string(body)
	}
	a1 := ask(alphaLinkID)
	b1 := ask(betaLinkID)
	a2 := ask(alphaLinkID)
	b2 := ask(betaLinkID)
	if a1 == b1 || a1 == b2 || a2 == b1 || a2 == b2 {
		t.Fatalf("an upstream connection served both tenants: alpha %s, %s; beta %s, %s", a1, a2, b1, b2)
	}
	if a1 != a2 || b1 != b2 {
		// The pool still pools within a tenant; without that every request
		// pays a handshake.
		t.Fatalf("a tenant's second request did not reuse its idle connection: alpha %s, %s; beta %s, %s", a1, a2, b1, b2)
	}
}

// ntlmOrigin treats a connection as authenticated once a request on it
// carried Authorization: NTLM, as IIS does, and then serves the private
// answer to any request on that connection, credentials or not.
func ntlmOrigin(t *testing.T) *rawOrigin {
	var mu sync.Mutex
	authed := map[net.Conn]bool{}
	return startRawOrigin(t, func(c net.Conn, _ *bufio.Reader, head string) bool {
		mu.Lock()
		if len(fieldValues(head, "Authorization")) > 0 && strings.HasPrefix(fieldValues(head, "Authorization")[0], "NTLM ") {
			authed[c] = true
		}
		ok := authed[c]
		mu.Unlock()
		if !ok {
			c.Write([]byte("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM\r\nContent-Length: 0\r\n\r\n"))
			return true
		}
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nalpha-secret"))
		return true
	})
}

// TestConnectionAuthenticatedUpstreamIsPinnedToItsClient: after an NTLM
// exchange the upstream connection answers as the authenticated user, so
// it serves the client connection that authenticated it and nobody else:
// not another tenant, and not another connection of the same tenant.
func TestConnectionAuthenticatedUpstreamIsPinnedToItsClient(t *testing.T) {
	o := ntlmOrigin(t)
	p := startProxy(t, sharedOrigins())

	owner := dialPP(t, p.addr, alphaLinkID)
	defer owner.Close()
	obr := bufio.NewReader(owner)
	if resp, body := exchange(t, owner, obr, keepAliveGet(o.addr, "Authorization: NTLM TlRMTVNTUAADAAAA\r\n"), "GET"); resp.StatusCode != 200 || string(body) != "alpha-secret" {
		t.Fatalf("authenticating request: %d %q", resp.StatusCode, body)
	}

	for _, tc := range []struct {
		name   string
		linkID uint32
	}{
		{"another tenant", betaLinkID},
		{"another connection of the same tenant", alphaLinkID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialPP(t, p.addr, tc.linkID)
			defer c.Close()
			resp, body := exchange(t, c, bufio.NewReader(c), keepAliveGet(o.addr, ""), "GET")
			if resp.StatusCode != 401 || strings.Contains(string(body), "secret") {
				t.Fatalf("got %d %q through a connection authenticated by someone else", resp.StatusCode, body)
			}
		})
	}

	// The owner keeps its authenticated connection, which NTLM needs.
	if resp, body := exchange(t, owner, obr, keepAliveGet(o.addr, ""), "GET"); resp.StatusCode != 200 || string(body) != "alpha-secret" {
		t.Fatalf("the authenticating client lost its pinned connection: %d %q", resp.StatusCode, body)
	}
}

// TestUpstreamBytesAfterAResponseReachNobody: an origin that writes a
// second, unrequested response after the first (at once, or a moment
// later) has that connection dropped; the next request, of either tenant,
// gets its own answer.
func TestUpstreamBytesAfterAResponseReachNobody(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay time.Duration
	}{
		{"in the same write", 0},
		{"after the connection was parked", 150 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var first atomic.Bool
			o := startRawOrigin(t, func(c net.Conn, _ *bufio.Reader, _ string) bool {
				const forged = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged"
				if first.CompareAndSwap(false, true) {
					if tc.delay == 0 {
						c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + forged))
					} else {
						c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
						time.Sleep(tc.delay)
						c.Write([]byte(forged))
					}
					return true
				}
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
				return true
			})
			p := startProxy(t, sharedOrigins())
			for i, linkID := range []uint32{alphaLinkID, alphaLinkID, betaLinkID} {
				c := dialPP(t, p.addr, linkID)
				resp, body := exchange(t, c, bufio.NewReader(c), keepAliveGet(o.addr, ""), "GET")
				c.Close()
				if resp.StatusCode != 200 || string(body) != "ok" {
					t.Fatalf("request %d (link %d): %d %q, want the origin's own answer", i, linkID, resp.StatusCode, body)
				}
				if i == 0 {
					time.Sleep(2 * tc.delay) // let the late bytes land on the parked connection
				}
			}
		})
	}
}

// internalResolver fails the way a cluster resolver does: its error names
// the resolver's own address. No query is sent anywhere; 10.0.0.10 only
// appears in the error text.
type internalResolver struct{}

func (internalResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if host == "refused.origin.test" {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, Server: "10.0.0.10:53", IsNotFound: true}
}

// TestErrorBodiesNameNoInternalDetail: a failed dial or lookup answers
// with its reason code, a fixed sentence and the request id; the resolver
// address, the resolved IP and the dial error go to the event log only.
func TestErrorBodiesNameNoInternalDetail(t *testing.T) {
	refused := freePort(t)
	_, port, _ := net.SplitHostPort(refused)
	p := startProxy(t, withResolver(internalResolver{}))
	for _, tc := range []struct {
		target, reason string
		leaks          []string
	}{
		{"internal.origin.test:80", "dns", []string{"10.0.0.10", "lookup", ":53"}},
		{"refused.origin.test:" + port, "dial", []string{"127.0.0.1", "dial tcp", "refused"}},
	} {
		for _, method := range []string{"GET", "CONNECT"} {
			t.Run(tc.reason+"/"+method, func(t *testing.T) {
				raw := "CONNECT " + tc.target + " HTTP/1.1\r\nHost: " + tc.target + "\r\n\r\n"
				if method == "GET" {
					raw = "GET http://" + tc.target + "/ HTTP/1.1\r\nHost: " + tc.target + "\r\n\r\n"
				}
				c := dial(t, p.addr)
				defer c.Close()
				resp, body := exchange(t, c, bufio.NewReader(c), raw, method)
				if resp.StatusCode != 502 || resp.Header.Get("X-Proxy-Error") != tc.reason {
					t.Fatalf("got %d %q, want 502 %s", resp.StatusCode, resp.Header.Get("X-Proxy-Error"), tc.reason)
				}
				id := resp.Header.Get("X-Request-Id")
				if id == "" || !strings.Contains(string(body), "request_id="+id) {
					t.Errorf("body %q lacks the request id %q", body, id)
				}
				for _, leak := range tc.leaks {
					if strings.Contains(string(body), leak) || strings.Contains(fmt.Sprint(resp.Header), leak) {
						t.Errorf("response reveals %q: %q", leak, body)
					}
				}
				logged := p.events.FilterMessage("request failed").FilterField(zap.String("request_id", id)).All()
				if len(logged) != 1 || !strings.Contains(fmt.Sprint(logged[0].ContextMap()["detail"]), tc.leaks[0]) {
					t.Errorf("event log lost the detail for %s: %+v", id, logged)
				}
			})
		}
	}
}
