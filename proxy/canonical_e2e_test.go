package proxy_test

// What egressd checks is exactly what it sends (issue 12): the decision,
// the log and the upstream request line and Host come from one canonical
// request, so no spelling of a method, host or path reaches the origin in
// a form the policy did not decide.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egressd/egressd/acl"
)

// denyAdminAndPost puts two deny rules before the test tenant's allows.
func denyAdminAndPost(c *acl.Config) {
	c.Tenants[0].Rules = append([]acl.RuleConfig{
		{Name: "no-admin", Action: "deny", Domains: []string{".origin.test"}, Paths: []string{"/admin"}},
		{Name: "no-post", Action: "deny", Domains: []string{".origin.test"}, Methods: []string{"POST"}},
	}, c.Tenants[0].Rules...)
}

// TestOtherSpellingsOfADeniedRequestAreDenied: percent-encoding, dot and
// empty segments, and method case are normalised before the rules match
// (bypass 4), and refused with 400 where no single reading exists.
func TestOtherSpellingsOfADeniedRequestAreDenied(t *testing.T) {
	o := okOrigin(t)
	_, port, _ := net.SplitHostPort(o.addr)
	p := startProxy(t, withResolver(loopbackResolver("api.origin.test")), withACL(denyAdminAndPost))
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/admin", 403},
		{"GET", "/%61dmin", 403},
		{"GET", "/%41dmin", 200}, // "/Admin": paths are case-sensitive, as on the origin
		{"GET", "/x/../admin", 403},
		{"GET", "/x/%2e%2e/admin", 403},
		{"GET", "//admin", 403},
		{"GET", "/./admin/", 403},
		{"GET", "/a%2Fdmin", 400},
		{"GET", "/admin%00", 400},
		{"GET", "/x\\..\\admin", 400},
		{"POST", "/x", 403},
		{"post", "/x", 403},
		{"PoSt", "/x", 403},
		{"get", "/fine", 200},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			c := dial(t, p.addr)
			defer c.Close()
			url := "http://api.origin.test:" + port + tc.path
			resp, _ := exchange(t, c, bufio.NewReader(c), tc.method+" "+url+" HTTP/1.1\r\nHost: api.origin.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", "GET")
			if resp.StatusCode != tc.want {
				t.Fatalf("%s %s: status %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
			}
		})
	}
}

// TestUpstreamRequestIsTheCanonicalOne: the origin receives the method,
// path and Host the policy decided and the log shows, not the client's
// spelling of them (bypasses 4 and 6).
func TestUpstreamRequestIsTheCanonicalOne(t *testing.T) {
	o := okOrigin(t)
	port := portOf(t, o.addr)
	p := startProxy(t, withResolver(loopbackResolver("ok.origin.test")))
	for _, tc := range []struct {
		name, raw          string
		wantLine, wantHost string
	}{
		{"upper-case name with trailing dot and padded port",
			"get http://OK.Origin.TEST.:0" + port + "/a/./b/../%63?q=%2F HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
			"GET /a/c?q=%2F HTTP/1.1", "ok.origin.test:" + port},
		{"empty path", "GET http://ok.origin.test:" + port + "?x HTTP/1.1\r\nHost: ok.origin.test\r\nConnection: close\r\n\r\n",
			"GET /?x HTTP/1.1", "ok.origin.test:" + port},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, p.addr)
			defer c.Close()
			resp, _ := exchange(t, c, bufio.NewReader(c), tc.raw, "GET")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			head := o.nextHead(t)
			line, _, _ := strings.Cut(head, "\r\n")
			if line != tc.wantLine || fmt.Sprint(fieldValues(head, "Host")) != "["+tc.wantHost+"]" {
				t.Fatalf("origin got %q with Host %v, want %q with Host %s", line, fieldValues(head, "Host"), tc.wantLine, tc.wantHost)
			}
			e := p.waitAccess(t, tc.name, func(e map[string]any) bool {
				return e["kind"] == "http" && e["path"] != nil && strings.HasPrefix(tc.wantLine, "GET "+e["path"].(string))
			})
			if e["method"] != "GET" || e["host"] != "ok.origin.test" {
				t.Fatalf("log says %v %v, origin got %q", e["method"], e["host"], line)
			}
		})
	}
}

// TestBumpedRequestsCarryTheTunnelsHost: inside an inspected tunnel every
// request goes upstream with the tunnel's checked host, whether the client
// sent Host or not, and nothing of an earlier request's bytes leaks into
// a later one (bypass 1: a large first request, then Host-less HTTP/1.0).
func TestBumpedRequestsCarryTheTunnelsHost(t *testing.T) {
	pki := newTrustSet(t)
	var mu sync.Mutex
	var hosts, paths []string
	o := startTLSOrigin(t, pki.leaf(t, leafSpec{names: []string{"api.origin.test"}}, nil),
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hosts, paths = append(hosts, r.Host), append(paths, r.URL.RequestURI())
			mu.Unlock()
			w.Write([]byte("ok"))
		}))
	s := startProxy(t, withInspection(pki, acl.TLSInspectionConfig{Mode: "bump"}))
	target := "api.origin.test:" + o.port
	tconn, err := tlsVia(s.addr, target, "api.origin.test", pki.corpPool)
	if err != nil {
		t.Fatal(err)
	}
	defer tconn.Close()
	br := bufio.NewReader(tconn)
	big := "/first?" + strings.Repeat("a", 3000) + "Host:other.example"
	reqs := []string{
		"GET " + big + " HTTP/1.1\r\nHost: " + target + "\r\nX-Pad: " + strings.Repeat("b", 2000) + "\r\n\r\n",
		"GET /second HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET /third HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	}
	for i, raw := range reqs {
		resp, body := exchange(t, tconn, br, raw, "GET")
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{big, "/second", "/third"}
	if len(hosts) != len(want) {
		t.Fatalf("origin saw %d requests (%v), want %d", len(hosts), paths, len(want))
	}
	for i := range want {
		if hosts[i] != target || paths[i] != want[i] {
			t.Errorf("request %d reached the origin as %q with Host %q, want %q with Host %q", i, paths[i], hosts[i], want[i], target)
		}
	}
}

// TestInternalRangeIsOpenOnlyForTheRequestsItsRuleNames: a cidrs rule with
// methods and paths exempts an internal address from the SSRF guard only
// for those requests, also when the request names a host that resolves
// there, and a CONNECT by that name is not such a request (bypass 3).
func TestInternalRangeIsOpenOnlyForTheRequestsItsRuleNames(t *testing.T) {
	o := okOrigin(t)
	port := portOf(t, o.addr)
	p := startProxy(t, withResolver(loopbackResolver("svc.origin.test")), withACL(func(c *acl.Config) {
		c.Tenants[0].Rules = []acl.RuleConfig{
			{Name: "health-only", CIDRs: []string{"127.0.0.1/32"}, Methods: []string{"GET"}, Paths: []string{"/health"}},
			{Name: "test-names", Domains: []string{".origin.test"}},
		}
	}))
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/health", 200},
		{"GET", "/admin", 403},
		{"POST", "/health", 403},
		{"CONNECT", "", 403},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			c := dial(t, p.addr)
			defer c.Close()
			authority := "svc.origin.test:" + port
			raw := tc.method + " http://" + authority + tc.path + " HTTP/1.1\r\nHost: " + authority + "\r\nContent-Length: 0\r\n\r\n"
			if tc.method == "CONNECT" {
				raw = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n"
			}
			resp, _ := exchange(t, c, bufio.NewReader(c), raw, tc.method)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == 403 && resp.Header.Get("X-Proxy-Deny-Reason") != "ssrf" {
				t.Fatalf("refused with %q, want the SSRF guard", resp.Header.Get("X-Proxy-Deny-Reason"))
			}
		})
	}
}

// TestH2StreamsAreTheCanonicalRequest: a stream inside an inspected
// tunnel is normalised by the same functions as an HTTP/1.1 request, so
// another spelling of a denied :path or :method is denied, and the origin
// receives exactly the path and method that were decided and logged.
func TestH2StreamsAreTheCanonicalRequest(t *testing.T) {
	pki := newTrustSet(t)
	got := make(chan string, 16)
	o := startH2Origin(t, pki.leaf(t, leafSpec{names: []string{"api.origin.test"}}, nil),
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got <- r.Method + " " + r.RequestURI
			io.WriteString(w, "ok")
		}))
	s := startProxy(t, withInspection(pki, acl.TLSInspectionConfig{Mode: "bump"}), withACL(denyAdminAndPost))
	client := h2Client(t, s)
	base := "https://api.origin.test:" + o.port
	for _, tc := range []struct {
		method, path string
		want         int
		origin       string // what the origin must receive when allowed
	}{
		{"GET", "/%61dmin", 403, ""},
		{"GET", "/x/../admin", 403, ""},
		{"GET", "/.//admin", 403, ""},
		{"GET", "/a%2Fdmin", 400, ""},
		{"post", "/x", 403, ""},
		{"GET", "/a/./b/../%63?q=%2F", 200, "GET /a/c?q=%2F"},
		{"get", "/%7Efine", 200, "GET /~fine"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+"/", nil)
			req.URL.Opaque = tc.path // sent as the :path, byte for byte
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.method, tc.path, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 || resp.StatusCode != tc.want {
				t.Fatalf("%s %s: %s %d, want HTTP/2 %d", tc.method, tc.path, resp.Proto, resp.StatusCode, tc.want)
			}
			if tc.want != 200 {
				return
			}
			select {
			case line := <-got:
				if line != tc.origin {
					t.Fatalf("origin got %q, want %q", line, tc.origin)
				}
			case <-time.After(ioTimeout):
				t.Fatal("the origin got nothing")
			}
		})
	}
	select {
	case line := <-got:
		t.Fatalf("a refused stream reached the origin: %q", line)
	default:
	}
}
