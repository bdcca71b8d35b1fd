package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egressd/egressd/acl"
)

// received is what a recording origin saw of one request.
type received struct{ method, uri, host string }

// recorder keeps what reached the origins, keyed by the X-Probe field the
// client sent, so a probe that never arrived is told apart from one that did.
type recorder struct {
	mu   sync.Mutex
	seen map[string]received
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.seen[r.Header.Get("X-Probe")] = received{r.Method, r.RequestURI, r.Host}
	rec.mu.Unlock()
	io.WriteString(w, "ok")
}

func (rec *recorder) get(probe string) (received, bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	r, ok := rec.seen[probe]
	return r, ok
}

// FuzzWhatIsCheckedIsWhatIsSent is the differential property of issue 12:
// for any method, authority and path, plain (absolute-form) or inside an
// inspected tunnel, a request that reaches the origin is, field by field,
// the canonical request the access log says was allowed (method, Host,
// request target), and nothing a deny rule names gets through in another
// spelling. Seeds run in `make test`; `make fuzz` explores further.
func FuzzWhatIsCheckedIsWhatIsSent(f *testing.F) {
	for _, s := range []struct {
		method, authority, path string
		bumped                  bool
	}{
		{"GET", "api.origin.test:{port}", "/fine", false},
		{"get", "API.Origin.TEST.:0{port}", "/a/./b/../%63?q=%2F", false},
		{"GET", "api.origin.test:{port}", "/%61dmin", false},
		{"GET", "api.origin.test:{port}", "/x/%2e%2e/admin", false},
		{"GET", "api.origin.test:{port}", "//admin//", false},
		{"GET", "127.0.0.1:{port}", "/admin", false},
		{"PoSt", "api.origin.test:{port}", "/x", false},
		{"GET", "[::ffff:127.0.0.1]:{port}", "/fine", false},
		{"GET", "api.origin.test:{port}", "/%7Efine/%3b;p=1", false},
		{"GET", "api.origin.test:{port}", "/a%2Fdmin", false},
		{"GET", "api.origin.test:{port}", "/fine#frag", false},
		{"GET", "api.origin.test:{port}", "/fine", true},
		{"GET", "API.ORIGIN.TEST:{port}", "/%61dmin", true},
		{"GET", "", "/x/../admin", true},
		{"delete", "api.origin.test.:{port}", "/a/b/../../c?x", true},
		{"POST", "api.origin.test:{port}", "/x", true},
		{"GET", "other.origin.test:{port}", "/fine", true},
	} {
		f.Add(s.method, s.authority, s.path, s.bumped)
	}
	pki := newTrustSet(f)
	rec := &recorder{seen: map[string]received{}}
	tlsOrigin := startTLSOrigin(f, pki.leaf(f, leafSpec{names: []string{"api.origin.test"}}, nil), rec)
	plain := httptest.NewServer(rec)
	f.Cleanup(plain.Close)
	_, plainPort, _ := net.SplitHostPort(plain.Listener.Addr().String())
	s := startProxy(f, withInspection(pki, acl.TLSInspectionConfig{Mode: "bump"}), withACL(func(c *acl.Config) {
		denyAdminAndPost(c)
		c.Tenants[0].Rules = append([]acl.RuleConfig{
			{Name: "no-admin-by-address", Action: "deny", CIDRs: []string{"127.0.0.0/8"}, Paths: []string{"/admin"}},
		}, c.Tenants[0].Rules...)
	}))
	var probes atomic.Int64

	f.Fuzz(func(t *testing.T, method, authority, path string, bumped bool) {
		if len(method)+len(authority)+len(path) > 512 || strings.ContainsAny(method+authority+path, " \t\r\n") {
			t.Skip("not one request line")
		}
		if strings.EqualFold(method, "CONNECT") {
			// A tunnel carries no request to compare; its dial check is
			// TestInternalRangeIsOpenOnlyForTheRequestsItsRuleNames's and
			// the SNI tests'.
			t.Skip("CONNECT")
		}
		port := plainPort
		if bumped {
			port = tlsOrigin.port
		}
		authority = strings.ReplaceAll(authority, "{port}", port)
		probe := fmt.Sprint(probes.Add(1))
		var c net.Conn
		if bumped {
			tc, err := tlsVia(s.addr, "api.origin.test:"+port, "api.origin.test", pki.corpPool)
			if err != nil {
				t.Fatalf("open the inspected tunnel: %v", err)
			}
			c = tc
			fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nX-Probe: %s\r\nConnection: close\r\n\r\n", method, path, authority, probe)
		} else {
			var err error
			c, err = net.DialTimeout("tcp", s.addr, ioTimeout)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(c, "%s http://%s%s HTTP/1.1\r\nHost: %s\r\nX-Probe: %s\r\nConnection: close\r\n\r\n", method, authority, path, authority, probe)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(ioTimeout))
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
		if err != nil {
			t.Fatalf("no response: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		reqID := resp.Header.Get("X-Request-Id")
		e := s.waitAccess(t, "probe "+probe, func(e map[string]any) bool { return e["request_id"] == reqID })
		got, ok := rec.get(probe)
		if !ok {
			if resp.StatusCode < 300 {
				t.Fatalf("%d for a request the origin never received (log %v)", resp.StatusCode, e)
			}
			return
		}
		scheme := "http"
		if bumped {
			scheme = "https"
		}
		if e["decision"] != "allow" {
			t.Fatalf("the origin received %+v but the log says %v", got, e)
		}
		if got.method != e["method"] {
			t.Errorf("origin got method %q, the log decided %v", got.method, e["method"])
		}
		if url := scheme + "://" + got.host + got.uri; url != e["url"] {
			t.Errorf("origin got %s, the log decided %v", url, e["url"])
		}
		p, _, _ := strings.Cut(got.uri, "?")
		if p != e["path"] {
			t.Errorf("origin got path %q, the log decided path %v", p, e["path"])
		}
		if h, _, _ := strings.Cut(got.host, ":"); h != e["host"] && "["+fmt.Sprint(e["host"])+"]" != h {
			t.Errorf("origin got Host %q, the log decided host %v", got.host, e["host"])
		}
		if p == "/admin" || strings.HasPrefix(p, "/admin/") || got.method == "POST" {
			t.Errorf("a request a deny rule names reached the origin: %+v", got)
		}
	})
}
