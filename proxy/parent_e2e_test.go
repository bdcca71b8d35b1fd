package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/egressd/egressd/acl"
)

// parentProxy is a second egressd on loopback acting as the corporate
// parent: it requires Basic auth from user "child" and resolves the test
// names itself.
func parentProxy(t *testing.T) *testProxy {
	t.Helper()
	return startProxy(t, withResolver(loopbackResolver("ok.origin.test")), withACL(func(c *acl.Config) {
		c.Tenants[0].RequireAuth = true
		c.Tenants[0].Users = []acl.UserConfig{{Name: "child", PasswordFile: feedFile(t, "parent-secret\n")}}
	}))
}

// childProxy is egressd chained to parent. Its resolver knows no names at
// all: destinations are decided by name here and resolved by the parent.
func childProxy(t *testing.T, parent *testProxy, creds string, allowParent bool) *testProxy {
	t.Helper()
	host, port, _ := net.SplitHostPort(parent.addr)
	return startProxy(t, withResolver(loopbackResolver()), withACL(func(c *acl.Config) {
		tc := &c.Tenants[0]
		tc.Rules = []acl.RuleConfig{{Name: "names", Domains: []string{"ok.origin.test", "other.origin.test"}}}
		if allowParent {
			tc.Rules = append(tc.Rules, acl.RuleConfig{Name: "parent", CIDRs: []string{host + "/32"}, Ports: []string{port}})
		}
		tc.UpstreamProxy = &acl.UpstreamProxyConfig{URL: "http://" + parent.addr, CredentialsFile: feedFile(t, creds)}
	}))
}

func rawExchange(t *testing.T, addr, raw, method string) (*http.Response, []byte, net.Conn, *bufio.Reader) {
	t.Helper()
	c := dial(t, addr)
	t.Cleanup(func() { c.Close() })
	br := bufio.NewReader(c)
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, body := readResponse(t, br, method)
	return resp, body, c, br
}

// egressd chained to a second egressd: plain HTTP goes to the parent in
// absolute form and CONNECT becomes a CONNECT through it, both with the
// parent's credentials; the child decides by name and never resolves;
// names the child's rules refuse never reach the parent.
func TestParentProxyChainsHTTPAndConnectToSecondEgressd(t *testing.T) {
	origin := strings.TrimPrefix(helloOrigin(t), "http://")
	_, oport, _ := net.SplitHostPort(origin)
	echo := startEcho(t)
	_, eport, _ := net.SplitHostPort(echo)
	parent := parentProxy(t)
	child := childProxy(t, parent, "child:parent-secret\n", true)

	status, body := getVia(t, child, "http://ok.origin.test:"+oport+"/path?q=1", 0)
	if status != 200 || string(body) != "hello" {
		t.Fatalf("GET through the chain: %d %q", status, body)
	}
	pe := parent.waitAccess(t, "GET at the parent", func(e map[string]any) bool { return e["method"] == "GET" })
	if pe["host"] != "ok.origin.test" || pe["user"] != "child" || pe["path"] != "/path" {
		t.Errorf("parent saw %v", pe)
	}
	ce := child.waitAccess(t, "GET at the child", func(e map[string]any) bool { return e["method"] == "GET" })
	if ce["rule"] != "names" || ce["upstream"] != parent.addr {
		t.Errorf("child logged rule %v upstream %v, want names and the parent %s", ce["rule"], ce["upstream"], parent.addr)
	}

	c, br := connectVia(t, child, "ok.origin.test:"+eport)
	fmt.Fprint(c, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("tunnel through the chain: %q %v", buf, err)
	}
	c.Close()
	parent.waitAccess(t, "CONNECT at the parent", func(e map[string]any) bool {
		return e["method"] == "CONNECT" && e["host"] == "ok.origin.test" && e["user"] == "child"
	})

	before := len(parent.accessEntries())
	resp, _, _, _ := rawExchange(t, child.addr, "GET http://refused.test:"+oport+"/ HTTP/1.1\r\nHost: refused.test\r\nConnection: close\r\n\r\n", "GET")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("name the child's rules refuse: %d", resp.StatusCode)
	}
	if after := len(parent.accessEntries()); after != before {
		t.Fatalf("the parent saw a request the child refused (%d lines, was %d)", after, before)
	}
}

// Wrong credentials for the parent: its 407 becomes a 502 with a fixed
// sentence for both request kinds, never a 407 that would make the
// client offer its own credentials to a proxy it does not know.
func TestParentProxy407IsAGatewayErrorNotPassedOn(t *testing.T) {
	origin := strings.TrimPrefix(helloOrigin(t), "http://")
	_, oport, _ := net.SplitHostPort(origin)
	parent := parentProxy(t)
	child := childProxy(t, parent, "child:wrong\n", true)
	for _, tc := range []struct{ method, raw string }{
		{"GET", "GET http://ok.origin.test:" + oport + "/ HTTP/1.1\r\nHost: ok.origin.test\r\nConnection: close\r\n\r\n"},
		{"CONNECT", "CONNECT ok.origin.test:" + oport + " HTTP/1.1\r\nHost: ok.origin.test:" + oport + "\r\n\r\n"},
	} {
		resp, body, _, _ := rawExchange(t, child.addr, tc.raw, tc.method)
		if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("X-Proxy-Error") != "parent_auth" || resp.Header.Get("Proxy-Authenticate") != "" {
			t.Errorf("%s: %d %v %q", tc.method, resp.StatusCode, resp.Header, body)
		}
		if !strings.Contains(string(body), "the parent proxy rejected egressd's credentials") || strings.Contains(string(body), "127.0.0.1") {
			t.Errorf("%s body: %q", tc.method, body)
		}
	}
}

// The parent is dialed only if the tenant's rules allow its address: a
// loopback parent without a rule naming it is refused by the SSRF guard.
func TestParentProxyAddressMustBeAllowedByARule(t *testing.T) {
	parent := parentProxy(t)
	child := childProxy(t, parent, "child:parent-secret\n", false)
	before := len(parent.accessEntries())
	resp, _, _, _ := rawExchange(t, child.addr, "CONNECT ok.origin.test:443 HTTP/1.1\r\nHost: ok.origin.test:443\r\n\r\n", "CONNECT")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("CONNECT with an unlisted parent: %d, want 403", resp.StatusCode)
	}
	e := child.waitAccess(t, "refused CONNECT", func(e map[string]any) bool { return e["method"] == "CONNECT" })
	if e["decision"] != "deny" {
		t.Errorf("access line: %v", e)
	}
	if after := len(parent.accessEntries()); after != before {
		t.Fatalf("the parent was reached")
	}
}

// With every proxy variable of the environment pointing at a trap, a
// request and a tunnel to a name (names are what Go's and curl's
// environment proxy logic would send to the proxy; loopback addresses
// they exempt) still go straight to the destination, and the trap sees
// no connection: egressd's only parents are upstream_proxy entries.
func TestProxyEnvironmentVariablesAreNeverHonoured(t *testing.T) {
	trap, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer trap.Close()
	trapped := make(chan struct{}, 16)
	go func() {
		for {
			c, err := trap.Accept()
			if err != nil {
				return
			}
			trapped <- struct{}{}
			c.Close()
		}
	}()
	for _, v := range []string{"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"} {
		t.Setenv(v, "http://"+trap.Addr().String())
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	origin := strings.TrimPrefix(helloOrigin(t), "http://")
	_, oport, _ := net.SplitHostPort(origin)
	_, eport, _ := net.SplitHostPort(startEcho(t))
	p := startProxy(t, withResolver(loopbackResolver("ok.origin.test")))

	if status, body := getVia(t, p, "http://ok.origin.test:"+oport+"/", 0); status != 200 || string(body) != "hello" {
		t.Fatalf("GET: %d %q", status, body)
	}
	c, br := connectVia(t, p, "ok.origin.test:"+eport)
	fmt.Fprint(c, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("tunnel: %q %v", buf, err)
	}
	c.Close()
	select {
	case <-trapped:
		t.Fatal("the proxy named by the environment got a connection")
	default:
	}
}
